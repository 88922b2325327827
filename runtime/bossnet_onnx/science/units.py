"""Wavelength units and media: everything a reader needs to hand over vacuum Angstrom.

BOSS Net's grid is vacuum Angstrom, so every wavelength a file or an in-memory object declares
in other units (nm, um, m, log10 Angstrom, frequency, wavenumber) is converted here, once, and
air wavelengths are converted to vacuum on request (`--air`, `air=True`).

Air to vacuum: lambda_vac = n(lambda_air) * lambda_air with the refractive index of dry air at
15 C and 101325 Pa from the IAU standard (Morton 2000, ApJS 130, 403, eq. 8) in the form
inverted for air wavelengths by N. Piskunov for VALD (Kupka et al. 2011; quoted on the VALD3
"air-to-vacuum conversion" page):

    s = 1e4 / lambda_air   [1/um, lambda in Angstrom]
    n = 1 + 8.336624212083e-5 + 2.408926869968e-2 / (130.1065924522 - s^2)
          + 1.599740894897e-4 / (38.92568793293 - s^2)

It inverts Morton's vacuum-to-air formula to 1e-8 Angstrom over 3000-11000 A (measured in
tests/test_units.py), far below a BOSS pixel (~1 A at 4000 A). SDSS, LAMOST and
Gaia store vacuum wavelengths; IRAF-era and MILES-like libraries usually store air.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["to_angstrom", "air_to_vacuum", "vacuum_to_air", "is_log_unit", "unit_name",
           "SPEED_OF_LIGHT_KMS"]

#: The speed of light in km/s, exact (SI definition); every velocity formula imports it.
SPEED_OF_LIGHT_KMS = 299_792.458

#: How FITS/ECSV files spell Angstrom (astropy reads a bare "A" as ampere).
_ANGSTROM = {"a", "aa", "ang", "angs", "angstrom", "angstroms", "\u00c5", "\u212b", "0.1nm",
             "0.1 nm"}
#: log10(Angstrom) spellings (SDSS loglam, LAMOST DC-FLAG=1 headers, astropy dex).
_LOG_ANGSTROM = {"log(angstrom)", "log10(angstrom)", "dex(angstrom)", "log(a)", "log10(a)",
                 "dex(aa)", "log(aa)", "log10(aa)", "logangstrom", "log angstrom", "loglam"}


def unit_name(unit: Any) -> str:
    """A unit (astropy unit, FITS TUNIT/CUNIT text or None) as lower-case text, '' if none."""
    if unit is None:
        return ""
    return str(unit).strip().lower()


def is_log_unit(unit: Any) -> bool:
    """True for log10(Angstrom) units."""
    return unit_name(unit).replace(" ", "") in {u.replace(" ", "") for u in _LOG_ANGSTROM}


def to_angstrom(values: Any, unit: Any, *, where: str = "wavelength") -> np.ndarray:
    """`values` (declared in `unit`: astropy unit, text or None meaning Angstrom) in Angstrom.

    Spectral equivalencies apply, so frequency and wavenumber axes convert too. An unknown
    or non-spectral unit is an InputError naming `where` and the unit.
    """
    data = np.asarray(values, dtype=np.float64)
    name = unit_name(unit)
    if name in ("", "none") or name in _ANGSTROM:
        return data.copy()
    if is_log_unit(unit):
        with np.errstate(over="ignore"):
            return 10.0 ** data
    from astropy import units as u

    try:
        parsed = unit if isinstance(unit, u.UnitBase) else u.Unit(str(unit).strip(),
                                                                    parse_strict="raise")
        if isinstance(parsed, u.LogUnit) or getattr(parsed, "physical_unit", None) is not None:
            return (10.0 ** data) * parsed.physical_unit.to(u.AA)
        return (data * parsed).to_value(u.AA, equivalencies=u.spectral())
    except (ValueError, TypeError, u.UnitsError):
        raise InputError(f"{where}: wavelength unit {str(unit)!r} is not a length, frequency or "
                         f"log10(Angstrom); expected e.g. Angstrom, nm, um or log(Angstrom)"
                         ) from None


def _n_air_piskunov(wave_air: np.ndarray) -> np.ndarray:
    s2 = (1e4 / wave_air) ** 2
    return (1.0 + 8.336624212083e-5 + 2.408926869968e-2 / (130.1065924522 - s2)
            + 1.599740894897e-4 / (38.92568793293 - s2))


def air_to_vacuum(wave_air: Any) -> np.ndarray:
    """Vacuum wavelengths (Angstrom) of air wavelengths (Angstrom); see the module docstring.

    Wavelengths below 2000 A are returned unchanged (the IAU convention quotes vacuum there).
    """
    wave = np.asarray(wave_air, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        converted = wave * _n_air_piskunov(wave)
    return np.where(wave >= 2000.0, converted, wave)


def vacuum_to_air(wave_vac: Any) -> np.ndarray:
    """Air wavelengths (Angstrom) from vacuum ones, Morton (2000) eq. 8 (for tests and plots)."""
    wave = np.asarray(wave_vac, dtype=np.float64)
    s2 = (1e4 / wave) ** 2
    n = 1.0 + 8.34254e-5 + 2.406147e-2 / (130.0 - s2) + 1.5998e-4 / (38.9 - s2)
    return np.where(wave >= 2000.0, wave / n, wave)
