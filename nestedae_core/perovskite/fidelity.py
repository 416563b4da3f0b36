"""Band-gap fidelity: which kind of band gap (measured, DFT-PBE, DFT-HSE06+SOC) a target predicts, and its name.

The model layer only carries :attr:`~nestedae_core.model.config.TargetSpec.fidelity`
(the presets of :mod:`.presets` set it); reading it, and filling it in for bundles
saved before targets named it, is perovskite knowledge and lives here.

How a band gap is written everywhere (Predict, Explain, Compare, the CLI, CSV and JSON
labels) is :func:`gap_name`: ``band gap, measured``, ``band gap, DFT PBE (no SOC, cubic)``,
``band gap, DFT HSE06+SOC (cubic)``. A DFT gap is for one crystal phase (cubic by default,
:data:`~nestedae_core.vocabulary.DEFAULT_PHASE`), named with it whenever it is known.
The words come from :mod:`nestedae_core.vocabulary` (``FIDELITY_LABELS``, ``PHASE_NAMES``).
"""
from __future__ import annotations

from ..model.config import StageSpec, TargetSpec
from ..vocabulary import BANDGAP_PBE, DFT_FIDELITIES, FIDELITY_LABELS, MEASURED_BANDGAP, PHASE_NAMES

__all__ = ["legacy_fidelity", "target_fidelity", "fidelity_label", "phase_name", "gap_name", "is_dft"]

#: The base name of every band gap.
_GAP = "band gap"


def is_dft(fidelity: str | None) -> bool:
    """True for a computed (DFT-PBE or DFT-HSE06+SOC) band gap, whose value is for one crystal phase."""
    return fidelity in DFT_FIDELITIES


def fidelity_label(fidelity: str) -> str:
    """How a fidelity is written: ``measured``, ``DFT PBE (no SOC)``, ``DFT HSE06+SOC`` (an unknown one as it is)."""
    return FIDELITY_LABELS.get(fidelity, fidelity)


def phase_name(phase: str | None) -> str | None:
    """Readable name of a phase value (``Cubic`` -> ``cubic``, ``Tetra`` -> ``tetragonal``); None stays None."""
    if phase is None or not str(phase).strip():
        return None
    return PHASE_NAMES.get(str(phase), str(phase).lower())


def gap_name(fidelity: str, phase: str | None = None) -> str:
    """The name of a band gap of ``fidelity`` (``"measured"``, ``"PBE"``, ``"HSE"``), with the crystal phase of a DFT gap.

    ``gap_name("HSE", "Cubic") == "band gap, DFT HSE06+SOC (cubic)"``,
    ``gap_name("PBE", "Cubic") == "band gap, DFT PBE (no SOC, cubic)"``, ``gap_name("measured") == "band gap, measured"``.
    ``phase`` (a value of the ``phase`` column) is ignored for a measured gap and left out when None
    (a model whose DFT data has no phase, or a metric over every phase).
    """
    text = f"{_GAP}, {fidelity_label(fidelity)}"
    name = phase_name(phase) if is_dft(fidelity) else None
    if name is None:
        return text
    return f"{text[:-1]}, {name})" if text.endswith(")") else f"{text} ({name})"


def legacy_fidelity(stage: StageSpec, target: TargetSpec) -> str | None:
    """The fidelity of a target that does not name one (bundles written before targets did), from names.

    Column ``Gap`` of a stage whose dataset starts with ``mhp-hse`` is HSE, of any
    other ``mhp-*`` dataset PBE; column ``Perovskite_band_gap`` (measured on films
    and devices) is measured; anything else is not a band gap (None).
    """
    if target.column == BANDGAP_PBE and stage.dataset.startswith("mhp-"):
        return "HSE" if stage.dataset.startswith("mhp-hse") else "PBE"
    if target.column == MEASURED_BANDGAP:
        return "measured"
    return None


def target_fidelity(stage: StageSpec, target: TargetSpec) -> str | None:
    """The kind of band gap a target predicts: ``"measured"``, ``"PBE"``, ``"HSE"`` or None (not a band gap).

    The target's explicit ``fidelity`` when set; otherwise :func:`legacy_fidelity`.
    """
    if target.fidelity is not None:
        return target.fidelity
    return legacy_fidelity(stage, target)
