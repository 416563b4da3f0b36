"""Benchmark tasks: which dataset, target, baseline inputs, grouping and NestedAE preset.

Each task is validated on identical folds for every model (see
:mod:`.accuracy`). The NestedAE entry of a task comes from the stage named in
the task of the preset named in the task; a task whose preset, stage or dataset
does not exist in this installation is skipped with a note, never guessed.

* ``bandgap-paper``: PBE band gap (eV) on ``mhp-pbe-paper`` from the paper's 15
  site descriptors; NestedAE = stage 1 of the ``paper`` preset.
* ``bandgap-pbe``: PBE band gap (eV) on ``mhp-pbe`` from the 15 descriptors, the
  14 site fractions and the phase; NestedAE = the ``pbe-extended`` preset. Grouped
  splits group by formula (one formula is computed in several phases).
* ``bandgap-measured``: measured band gap (eV) on ``psc-gaps`` (one row per
  composition, the median over its devices) from the 15 descriptors and the 14
  site fractions, grouped by composition; NestedAE = the film stage of the
  ``measured`` preset.
* ``pce-devices``: PCE (%) on ``psc-devices`` from the 15 descriptors + ETL + HTL
  (baselines) or from the stage-1 latents + ETL + HTL (NestedAE, the ``paper``
  chain). Grouped splits keep recipes (composition + ETL + HTL) apart.
* ``pce-measured``, ``voc-devices``, ``jsc-devices``, ``ff-devices``: PCE (%),
  Voc (V), Jsc (mA/cm2) and FF (fraction) on ``psc-devices``, same baseline inputs
  and grouping; NestedAE = the device stage of the ``measured`` preset.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..vocabulary import (
    BANDGAP_PBE,
    COMPOSITION_KEY,
    DEVICE_GROUP_COLUMNS,
    ETL,
    FF,
    FORMULA,
    HTL,
    JSC,
    MEASURED_BANDGAP,
    PAPER_DESCRIPTORS,
    PCE,
    PHASE,
    SITE_FRACTION_COLUMNS,
    VOC,
    unit,
)

__all__ = ["BenchmarkTask", "TASKS", "task_names"]


@dataclass(frozen=True)
class BenchmarkTask:
    """One benchmark task.

    ``numeric``/``categorical``: the baselines' inputs (categorical ones one-hot
    encoded); ``groups``: the columns whose equal values form a group in grouped
    splits; ``preset``/``stage``: where the NestedAE entry comes from.
    """

    name: str
    dataset: str
    target: str
    unit: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    groups: tuple[str, ...]
    preset: str
    stage: str
    description: str
    tags: tuple[str, ...] = field(default=())

    def as_json(self) -> dict[str, object]:
        """The fields a report carries for this task."""
        return {"dataset": self.dataset, "target": self.target, "unit": self.unit, "description": self.description,
                "groups": list(self.groups), "preset": self.preset, "stage": self.stage,
                "inputs": list(self.numeric) + list(self.categorical)}


_DESCRIPTORS = tuple(PAPER_DESCRIPTORS)
_FRACTIONS = tuple(SITE_FRACTION_COLUMNS)
_STACKS = (ETL, HTL)
_RECIPE = tuple(DEVICE_GROUP_COLUMNS)


def _device_task(name: str, target: str, what: str, preset: str, stage: str, description: str) -> BenchmarkTask:
    return BenchmarkTask(name, "psc-devices", target, unit(target), _DESCRIPTORS, _STACKS, _RECIPE, preset, stage,
                         f"device {what} from the absorber's 15 descriptors + ETL + HTL ({description})")


#: Task name -> task, in report order.
TASKS: dict[str, BenchmarkTask] = {t.name: t for t in (
    BenchmarkTask("bandgap-paper", "mhp-pbe-paper", BANDGAP_PBE, "eV", _DESCRIPTORS, (), (FORMULA,), "paper", "materials",
                  "band gap (PBE) from the paper's 15 site descriptors (NestedAE paper's stage-1 file)"),
    BenchmarkTask("bandgap-pbe", "mhp-pbe", BANDGAP_PBE, "eV", _DESCRIPTORS + _FRACTIONS, (PHASE,), (FORMULA,), "pbe-extended", "materials",
                  "band gap (PBE) from 15 descriptors + 14 site fractions + phase (newer PBE release)"),
    BenchmarkTask("bandgap-measured", "psc-gaps", MEASURED_BANDGAP, "eV", _DESCRIPTORS + _FRACTIONS, (), (COMPOSITION_KEY,), "measured", "film",
                  "band gap (measured, median over a composition's devices) from 15 descriptors + 14 site fractions"),
    _device_task("pce-devices", PCE, "PCE", "paper", "devices", "NestedAE: the paper chain, stage-1 latents + ETL + HTL"),
    _device_task("pce-measured", PCE, "PCE", "measured", "device", "NestedAE: the measured chain, film latents + the descriptors + ETL + HTL"),
    _device_task("voc-devices", VOC, "Voc", "measured", "device", "NestedAE: the measured chain"),
    _device_task("jsc-devices", JSC, "Jsc", "measured", "device", "NestedAE: the measured chain"),
    _device_task("ff-devices", FF, "FF", "measured", "device", "NestedAE: the measured chain"),
)}


def task_names() -> list[str]:
    """Names of the benchmark tasks, in report order."""
    return list(TASKS)
