"""The Shockley-Queisser limits as ceilings of a device stage: differentiable functions of the band gap.

Importing this module registers two ceiling functions
(:func:`nestedae_core.model.ceilings.register_ceiling`) that a device stage's
targets can name in their :class:`~nestedae_core.model.config.Ceiling`:

* ``shockley_queisser_jsc`` (:data:`SQ_JSC`): the short-circuit current density of
  the detailed-balance limit under AM1.5G, mA/cm^2, at a band gap in eV;
* ``radiative_voc`` (:data:`RADIATIVE_VOC`): the radiative-limit open-circuit
  voltage, V, at a band gap in eV;
* ``shockley_queisser_ff`` (:data:`SQ_FF`): the fill factor of the detailed-balance
  limit (about 0.90 at 1.6 eV), the highest a cell of that gap with ideality 1 can reach
  (a lower Voc only lowers it). With all three, Voc x Jsc x FF stays below the
  Shockley-Queisser efficiency at the gap.

Both are :func:`~.shockley_queisser.sq_limit` tabulated on a grid of band gaps
(:data:`CEILINGS_FILE`, 0.05 to 4.5 eV in 2 meV steps; made by
:func:`tabulate_ceilings`, shipped so that a prediction needs neither pvlib nor
scipy) and interpolated linearly in torch, so gradients flow through the gap.
The table is conservative: each node holds the smallest exact value within one
step on either side (sampled at 20 points per step) less a margin of 1e-4 (mA/cm^2, V or FF),
rounded down to 1e-6, so the interpolated ceiling stays below the exact limit
between nodes: between 1.1 and 3.2 eV at most 0.1 mA/cm^2 and 2 mV below it. Outside the grid: below 0.05 eV
Jsc holds its value at 0.05 eV (Jsc falls with the gap) and Voc is 0; above
4.5 eV both hold their last values (Jsc is 0 there: the spectrum ends at 280 nm).
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

import numpy as np

from ..model.ceilings import register_ceiling
from .shockley_queisser import sq_limit

if TYPE_CHECKING:  # torch loads with the first ceiling computed: registering them needs none
    import torch

__all__ = [
    "CEILINGS_FILE", "RADIATIVE_VOC", "SQ_FF", "SQ_JSC", "radiative_voc", "shockley_queisser_ff", "shockley_queisser_jsc", "tabulate_ceilings",
]

#: Registered name of the SQ short-circuit current ceiling (mA/cm^2 of a gap in eV).
SQ_JSC = "shockley_queisser_jsc"
#: Registered name of the radiative-limit open-circuit voltage ceiling (V of a gap in eV).
RADIATIVE_VOC = "radiative_voc"
#: Registered name of the SQ fill-factor ceiling (dimensionless, of a gap in eV).
SQ_FF = "shockley_queisser_ff"
#: The shipped table of the ceilings.
CEILINGS_FILE = Path(__file__).with_name("sq_ceilings.json")


def tabulate_ceilings(start_eV: float = 0.05, stop_eV: float = 4.5, step_eV: float = 0.002, subsamples: int = 20, margin: float = 1e-4) -> dict[str, Any]:
    """The conservative table of :data:`CEILINGS_FILE` (see the module docstring), as JSON-ready data.

    Returns ``{"start_eV", "step_eV", "jsc_mA_per_cm2": [...], "voc_V": [...], "ff": [...]}``.
    """
    n = int(round((stop_eV - start_eV) / step_eV)) + 1
    nodes = start_eV + step_eV * np.arange(n)
    fine = np.linspace(start_eV - step_eV, stop_eV + step_eV, (n + 1) * subsamples + 1)
    limits = sq_limit(np.maximum(fine, 1e-3))
    out: dict[str, Any] = {"start_eV": start_eV, "step_eV": step_eV}
    for key in ("jsc_mA_per_cm2", "voc_V", "ff"):
        v = np.asarray(limits[key], dtype=np.float64)
        lows = [v[(fine >= a - step_eV - 1e-12) & (fine <= a + step_eV + 1e-12)].min() for a in nodes]
        out[key] = (np.floor(np.maximum(np.asarray(lows) - margin, 0.0) * 1e6) / 1e6).tolist()
    return out


@functools.lru_cache(maxsize=1)
def _table() -> tuple[float, float, dict[str, torch.Tensor]]:
    import torch

    data = json.loads(CEILINGS_FILE.read_text(encoding="utf-8"))
    values = {k: torch.tensor(data[k], dtype=torch.float64) for k in ("jsc_mA_per_cm2", "voc_V", "ff")}
    return float(data["start_eV"]), float(data["step_eV"]), values


def _interpolate(gap: torch.Tensor, values: torch.Tensor, start: float, step: float) -> torch.Tensor:
    """Piecewise-linear interpolation of ``values`` (nodes ``start + step * k``) at ``gap``, held constant outside."""
    import torch

    v = values.to(device=gap.device, dtype=gap.dtype if gap.is_floating_point() else torch.float64)
    pos = ((gap - start) / step).clamp(0.0, len(v) - 1.0)
    k = pos.detach().floor().long().clamp(max=len(v) - 2)
    t = pos - k.to(pos.dtype)
    return v[k] * (1.0 - t) + v[k + 1] * t


def shockley_queisser_jsc(gap_eV: torch.Tensor) -> torch.Tensor:
    """SQ short-circuit current density (mA/cm^2, AM1.5G, 100 mW/cm^2) at band gaps in eV (conservative table)."""
    start, step, values = _table()
    return _interpolate(gap_eV, values["jsc_mA_per_cm2"], start, step)


def radiative_voc(gap_eV: torch.Tensor) -> torch.Tensor:
    """Radiative-limit open-circuit voltage (V, 300 K, AM1.5G) at band gaps in eV (conservative table); 0 below 0.05 eV."""
    import torch

    start, step, values = _table()
    value = _interpolate(gap_eV, values["voc_V"], start, step)
    return torch.where(gap_eV < start, torch.zeros_like(value), value)


def shockley_queisser_ff(gap_eV: torch.Tensor) -> torch.Tensor:
    """Fill factor of the SQ limit (dimensionless, in (0, 1)) at band gaps in eV (conservative table); 0 below 0.05 eV."""
    import torch

    start, step, values = _table()
    value = _interpolate(gap_eV, values["ff"], start, step)
    return torch.where(gap_eV < start, torch.zeros_like(value), value)


register_ceiling(SQ_JSC, shockley_queisser_jsc)
register_ceiling(RADIATIVE_VOC, radiative_voc)
register_ceiling(SQ_FF, shockley_queisser_ff)
