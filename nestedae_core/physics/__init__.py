"""Device physics: the limits a solar cell's predicted outcomes are checked against.

* :mod:`.spectrum`: the AM1.5G reference sun (ASTM G-173-03, via pvlib) and blackbody photon fluxes.
* :mod:`.shockley_queisser`: the Shockley-Queisser detailed-balance limit of a single-junction cell.
"""
from __future__ import annotations

from .shockley_queisser import CELL_TEMPERATURE_K, SUN_TEMPERATURE_K, sq_limit
from .spectrum import IRRADIANCE_W_M2, REFERENCE_SPECTRUM

__all__ = [
    "REFERENCE_SPECTRUM",
    "SUN_TEMPERATURE_K",
    "CELL_TEMPERATURE_K",
    "IRRADIANCE_W_M2",
    "sq_limit",
]
