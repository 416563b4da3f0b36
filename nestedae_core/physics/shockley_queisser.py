"""The Shockley–Queisser detailed-balance limit of a single-junction cell.

:func:`sq_limit` gives the radiative (detailed-balance) limit of a single
band-gap absorber, following W. Shockley and H. J. Queisser, "Detailed Balance
Limit of Efficiency of p-n Junction Solar Cells", J. Appl. Phys. 32, 510 (1961):

* every photon above the band gap is absorbed and gives one electron (step
  absorptance, no reflection, no parasitic absorption);
* the only recombination is radiative: the cell (temperature ``T_c``) emits
  blackbody radiation above the gap through its front face into a hemisphere,
  enhanced by ``exp(qV / k T_c)`` under bias ``V``.

The sun is the ASTM G-173-03 AM1.5G ("global tilt") reference spectrum, the
spectrum of standard test conditions, as shipped by pvlib
(:func:`pvlib.spectrum.get_reference_spectra`; 280-4000 nm, W/(m^2 nm)). As in
the literature it is taken as the nominal 1000 W/m^2 (the tabulated values
integrate to 1000.37 W/m^2) and scaled by ``irradiance_W_m2 / 1000``. With
``Phi(lambda)`` its photon flux, photons / (m^2 s nm), ``lambda_g = h c / Eg``
and ``phi(E, T) = 2 pi E^2 / (h^3 c^2) / (exp(E / kT) - 1)`` the hemispherical
blackbody photon flux (photons per m^2, s and J)::

    Jsc  = q * s * integral_280nm^lambda_g Phi(lambda) d lambda     s = irradiance / 1000 W/m^2
    J0   = q * integral_Eg^inf phi(E, T_cell) dE                    (detailed balance at T_cell)
    J(V) = Jsc - J0 (exp(qV / k T_c) - 1)
    Voc  = (k T_c / q) ln(Jsc / J0 + 1)
    maximum power point: with w = W(e (Jsc/J0 + 1)) (Lambert W),
        Vmp = (k T_c / q)(w - 1),  Jmp = (Jsc + J0)(1 - 1/w)
    PCE  = Vmp Jmp / irradiance,  FF = Vmp Jmp / (Voc Jsc)

The photon flux of the spectrum is integrated with the trapezoidal rule on its
own wavelength grid (0.5 nm below 400 nm, 1 nm to 1700 nm, 5 nm above) and
interpolated linearly at ``lambda_g``; the blackbody integral uses the exact
series ``integral_x^inf t^2 / (e^t - 1) dt = sum_k e^(-kx) (x^2/k + 2x/k^2 + 2/k^3)``.
The result has the wiggles of the atmospheric absorption bands; its maximum is
33.7 % at 1.34 eV (S. Rühle, "Tabulated values of the Shockley-Queisser limit
for single junction solar cells", Sol. Energy 130, 139 (2016)), with a second,
lower maximum of 33.5 % near 1.15 eV.

Passing ``sun_temperature_K`` replaces the reference spectrum by a blackbody
sun at that temperature scaled to ``irradiance_W_m2`` (the textbook
approximation of the original paper; 5778 K gives 30.2 % at best near 1.27 eV,
about 3 points below the AM1.5G limit, mostly through a Jsc about 10 % lower).

Units: band gaps in eV, temperatures in K, irradiance in W/m^2; results in
% (PCE), V (Voc), mA/cm^2 (Jsc) and a fraction (FF).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InputError
from .spectrum import (
    _K,
    _Q,
    _SIGMA,
    IRRADIANCE_W_M2,
    REFERENCE_SPECTRUM,
    _log_photon_flux,
    _reference_photon_flux_above,
)

__all__ = [
    "REFERENCE_SPECTRUM",
    "SUN_TEMPERATURE_K",
    "CELL_TEMPERATURE_K",
    "IRRADIANCE_W_M2",
    "sq_limit",
]

#: Blackbody temperature (K) of the textbook approximate sun, used when ``sun_temperature_K`` is passed.
SUN_TEMPERATURE_K: float = 5778.0
#: Cell temperature of the detailed-balance limit (K).
CELL_TEMPERATURE_K: float = 300.0


def _check_positive(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} is {value!r}, expected a positive number") from None
    if not math.isfinite(number) or number <= 0:
        raise InputError(f"{name} is {value!r}, expected a positive number")
    return number


def sq_limit(
    bandgap_eV: float | np.ndarray | Any,
    *,
    sun_temperature_K: float | None = None,
    cell_temperature_K: float = CELL_TEMPERATURE_K,
    irradiance_W_m2: float = IRRADIANCE_W_M2,
) -> dict[str, Any]:
    """Shockley–Queisser detailed-balance limit of a single-junction cell under AM1.5G.

    Args:
        bandgap_eV: band gap(s) in eV, a number or an array-like of numbers > 0.
        sun_temperature_K: ``None`` (default) for the ASTM G-173 AM1.5G reference
            spectrum; a temperature in K for a blackbody sun instead (the textbook
            approximation, e.g. 5778 K).
        cell_temperature_K: cell temperature in K (default 300 K); sets the
            blackbody emission of the cell (J0) and the thermal voltage.
        irradiance_W_m2: incident power in W/m^2 (default 1000, one sun); the
            spectrum is scaled to it.

    Returns:
        ``{"pce_percent": ..., "voc_V": ..., "jsc_mA_per_cm2": ..., "ff": ...}`` (the keys of :mod:`nestedae_core.schema`):
        power conversion efficiency (%), open-circuit voltage (V), short-circuit
        current density (mA/cm^2) and fill factor (dimensionless, 0..1). Floats
        for a scalar input, arrays of the input's shape otherwise. The maximum
        is 33.7 % at 1.34 eV (see the module docstring for the model). Band gaps
        above 4.43 eV (280 nm, the short end of the spectrum) absorb nothing: 0.

    Raises:
        InputError: a band gap that is not a finite number > 0, or a
            non-positive temperature or irradiance.
    """
    t_sun = None if sun_temperature_K is None else _check_positive("sun_temperature_K", sun_temperature_K)
    t_cell = _check_positive("cell_temperature_K", cell_temperature_K)
    power = _check_positive("irradiance_W_m2", irradiance_W_m2)
    try:
        gaps = np.asarray(bandgap_eV, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"band gap {bandgap_eV!r} is not a number: give it in eV, e.g. 1.55") from None
    scalar = gaps.ndim == 0
    flat = np.atleast_1d(gaps).astype(float).ravel()
    bad = ~np.isfinite(flat) | (flat <= 0)
    if bad.any():
        raise InputError(
            f"band gap {flat[bad][0]!r} eV is not a finite number > 0: give band gaps in eV, e.g. 1.55"
        )
    eg = flat * _Q  # J
    with np.errstate(divide="ignore"):
        if t_sun is None:
            log_jsc = math.log(_Q * power / IRRADIANCE_W_M2) + np.log(_reference_photon_flux_above(eg))  # A/m^2
        else:
            scale = power / (_SIGMA * t_sun**4)  # dilution of the blackbody sun to `power`
            log_jsc = math.log(_Q * scale) + _log_photon_flux(eg, t_sun)  # A/m^2
    log_j0 = math.log(_Q) + _log_photon_flux(eg, t_cell)  # A/m^2
    vt = _K * t_cell / _Q  # thermal voltage, V
    log_ratio = log_jsc - log_j0
    ln_a = np.logaddexp(log_ratio, 0.0)  # ln(Jsc/J0 + 1)
    voc = vt * ln_a
    w = _lambert_w_of_exp(ln_a + 1.0)  # W(e * (Jsc/J0 + 1))
    jsc = np.exp(log_jsc)
    j0 = np.exp(log_j0)
    vmp = vt * (w - 1.0)
    jmp = (jsc + j0) * (1.0 - 1.0 / w)
    pmax = np.clip(vmp * jmp, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        ff = np.where(voc * jsc > 0, pmax / (voc * jsc), 0.0)
    result = {
        "pce_percent": 100.0 * pmax / power,
        "voc_V": voc,
        "jsc_mA_per_cm2": jsc * 0.1,  # 1 A/m^2 = 0.1 mA/cm^2
        "ff": ff,
    }
    if scalar:
        return {key: float(value[0]) for key, value in result.items()}
    return {key: value.reshape(gaps.shape) for key, value in result.items()}


def _lambert_w_of_exp(log_z: np.ndarray) -> np.ndarray:
    """Principal Lambert W of z = exp(log_z) for z >= e (w >= 1), from log z, by Newton's method.

    Solves w + ln w = log_z, which stays finite where z itself would overflow.
    """
    w = np.where(log_z > 1.0, log_z - np.log(np.maximum(log_z, 1.0)), 1.0)
    w = np.maximum(w, 1.0)
    for _ in range(50):
        step = (w + np.log(w) - log_z) / (1.0 + 1.0 / w)
        w = np.maximum(w - step, 1e-12)
        if np.all(np.abs(step) <= 1e-14 * np.maximum(w, 1.0)):
            break
    return w
