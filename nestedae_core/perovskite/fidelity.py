"""Band-gap fidelity: which kind of band gap (measured, DFT-PBE, DFT-HSE06) a target predicts.

The model layer only carries :attr:`~nestedae_core.model.config.TargetSpec.fidelity`
(the presets of :mod:`.presets` set it); reading it, and filling it in for bundles
saved before targets named it, is perovskite knowledge and lives here.
"""
from __future__ import annotations

from ..model.config import StageSpec, TargetSpec
from ..vocabulary import BANDGAP_PBE, MEASURED_BANDGAP

__all__ = ["legacy_fidelity", "target_fidelity"]


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
