"""The light of the Shockley-Queisser limit: the AM1.5G reference sun and blackbody photon fluxes.

* the ASTM G-173-03 AM1.5G ("global tilt") reference spectrum, the spectrum of
  standard test conditions, as shipped by pvlib
  (:func:`pvlib.spectrum.get_reference_spectra`; 280-4000 nm, W/(m^2 nm)),
  as a photon flux above a band gap at the nominal 1000 W/m^2;
* the hemispherical blackbody photon flux above a band gap (a blackbody sun, or
  the cell's own emission).

Used by :func:`nestedae_core.physics.shockley_queisser.sq_limit`; the physical
constants are CODATA 2018 (exact SI values).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..errors import DataError

__all__ = ["REFERENCE_SPECTRUM", "IRRADIANCE_W_M2"]

#: The reference sun spectrum of :func:`~nestedae_core.physics.sq_limit` (the pvlib name of ASTM G-173-03, AM1.5G global tilt).
REFERENCE_SPECTRUM = "ASTM G173-03"
#: Nominal irradiance of the AM1.5G reference spectrum (W/m^2): standard test conditions.
IRRADIANCE_W_M2: float = 1000.0

# CODATA 2018 (exact SI values).
_H = 6.62607015e-34  # Planck constant, J s
_C = 299792458.0  # speed of light, m/s
_K = 1.380649e-23  # Boltzmann constant, J/K
_Q = 1.602176634e-19  # elementary charge, C
_SIGMA = 2.0 * math.pi**5 * _K**4 / (15.0 * _H**3 * _C**2)  # Stefan–Boltzmann, W/(m^2 K^4)


def _log_tail_integral(x: np.ndarray) -> np.ndarray:
    """ln of integral_x^inf t^2 / (e^t - 1) dt for x > 0 (elementwise, no overflow)."""
    out = np.empty_like(x)
    for i, xi in enumerate(x.flat):
        # sum_k e^(-k x) (x^2/k + 2x/k^2 + 2/k^3) = e^(-x) * sum_k e^(-(k-1) x) (...)
        n_terms = int(min(max(60.0, 40.0 / xi), 200_000.0))
        k = np.arange(1, n_terms + 1, dtype=float)
        terms = np.exp(-(k - 1.0) * xi) * (xi * xi / k + 2.0 * xi / k**2 + 2.0 / k**3)
        out.flat[i] = -xi + math.log(float(terms.sum()))
    return out


def _log_photon_flux(bandgap_J: np.ndarray, temperature_K: float) -> np.ndarray:
    """ln of the hemispherical blackbody photon flux above the gap, photons / (m^2 s)."""
    kt = _K * temperature_K
    prefactor = 2.0 * math.pi * kt**3 / (_H**3 * _C**2)
    return math.log(prefactor) + _log_tail_integral(bandgap_J / kt)


#: The file in pvlib's data folder that :func:`pvlib.spectrum.get_reference_spectra` reads for :data:`REFERENCE_SPECTRUM`.
_PVLIB_SPECTRUM_FILE = "ASTMG173.csv"


def _reference_spectrum() -> tuple[np.ndarray, np.ndarray]:
    """The AM1.5G reference spectrum shipped by pvlib: (wavelength nm, global tilt irradiance W / (m^2 nm)).

    Read from the very file pvlib's ``get_reference_spectra`` reads (found without importing pvlib, whose
    import costs about 0.2 s even after scipy and pandas); through pvlib's function where that file is not
    where this pvlib keeps it.
    """
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("pvlib")
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "data" / _PVLIB_SPECTRUM_FILE
        try:
            table = np.loadtxt(path, delimiter=",", skiprows=2, usecols=(0, 2), dtype=float)
            if table.ndim == 2 and len(table) > 100:
                return table[:, 0], table[:, 1]
        except (OSError, ValueError):
            pass
    try:
        from pvlib.spectrum import get_reference_spectra
    except ImportError as exc:  # pragma: no cover - pvlib is a dependency
        raise DataError(
            f"the Shockley-Queisser limit needs the AM1.5G spectrum shipped by pvlib ({exc}); install it: pip install pvlib"
        ) from None
    spectrum = get_reference_spectra(standard=REFERENCE_SPECTRUM)
    return spectrum.index.to_numpy(dtype=float), spectrum["global"].to_numpy(dtype=float)


@functools.lru_cache(maxsize=1)
def _reference_photon_flux() -> tuple[np.ndarray, np.ndarray]:
    """The AM1.5G reference spectrum as (wavelength nm, cumulative photon flux photons/(m^2 s)).

    The cumulative flux at index i is the trapezoidal integral of the photon
    flux from 280 nm to wavelength i, i.e. all photons of higher energy than
    that wavelength's. Read when first needed (:func:`_reference_spectrum`),
    not at module import; cached for the process.
    """
    wavelength_nm, irradiance = _reference_spectrum()  # W / (m^2 nm)
    photons = irradiance * (wavelength_nm * 1e-9) / (_H * _C)  # photons / (m^2 s nm)
    steps = 0.5 * (photons[1:] + photons[:-1]) * np.diff(wavelength_nm)
    return wavelength_nm, np.concatenate(([0.0], np.cumsum(steps)))


def _reference_photon_flux_above(bandgap_J: np.ndarray) -> np.ndarray:
    """AM1.5G photon flux above each band gap, photons / (m^2 s), at the nominal 1000 W/m^2."""
    wavelength_nm, cumulative = _reference_photon_flux()
    cutoff_nm = _H * _C / bandgap_J * 1e9
    return np.interp(cutoff_nm, wavelength_nm, cumulative, left=0.0, right=float(cumulative[-1]))
