"""One-dimensional image spectra (IRAF onedspec, MILES-like libraries, many archives).

The flux is a 1-D image or a 1 x N one (the primary HDU, or the first image extension) and the wavelength of
pixel i (0-based) is CRVAL1 + CDELT1 * (i + 1 - CRPIX1) (CD1_1 when CDELT1 is absent, CRPIX1
1 when absent), in CUNIT1 (Angstrom when absent). DC-FLAG = 1 means log-linear: the formula
gives log10 of the wavelength. An image extension of the same length named IVAR/INVVAR,
ERROR/ERR/SIGMA/STDDEV/UNCERTAINTY or VARIANCE/VAR gives the inverse variance; without one the
spectrum is read with ivar 0 (the no-ivar fallback) and one InputWarning. A header declaring
AIRORVAC = 'air' has its wavelengths converted to vacuum (units.air_to_vacuum), as `--air`
does for files that do not say.
"""
from __future__ import annotations

import warnings

import numpy as np
from astropy.io import fits

from ..errors import InputError, InputWarning
from ..science.units import air_to_vacuum, to_angstrom
from ..spectrum import ReadFailure, Spectrum
from ._checks import Origin, checked, where
from ._fits import header_value, native, opened

NAME = "image-1d"
KINDS = ("boss",)
__all__ = ["NAME", "identify", "read"]

_IVAR = ("IVAR", "INVVAR", "IVARIANCE", "INVERSE_VARIANCE")
_ERROR = ("ERROR", "ERR", "SIGMA", "STDDEV", "UNCERTAINTY", "NOISE", "ERRORS")
_VARIANCE = ("VARIANCE", "VAR")
_IDS = {"object": ("OBJECT", "OBJNAME"), "telescope": ("TELESCOP",), "mjd": ("MJD-OBS", "MJD")}


def _one_row(header: fits.Header) -> bool:
    """A 1-D image, or a 1 x N one (MILES and other libraries store NAXIS2 = 1)."""
    naxis = header.get("NAXIS")
    return naxis == 1 or (naxis == 2 and header.get("NAXIS2") == 1)


def _flux_hdu(hdul: fits.HDUList) -> int | None:
    for index, hdu in enumerate(hdul):
        if isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU)) and _one_row(hdu.header):
            header = hdu.header
            if "CRVAL1" in header and ("CDELT1" in header or "CD1_1" in header):
                return index
        if index == 0 and hdu.header.get("NAXIS", 0) != 0:
            return None  # a primary image of another shape: not this layout
    return None


def identify(path: str, hdul: fits.HDUList | None) -> bool:
    """A 1-D image with CRVAL1 and CDELT1 (or CD1_1) in its header."""
    try:
        return hdul is not None and _flux_hdu(hdul) is not None
    except Exception:  # noqa: BLE001 - identify never raises
        return False


def _wavelength(header: fits.Header, n_pix: int, place: str) -> np.ndarray:
    crval = float(header["CRVAL1"])
    step = float(header_value(header, keys=("CDELT1", "CD1_1")))
    crpix = float(header.get("CRPIX1", 1.0))
    if step == 0:
        raise InputError(f"{place}: CDELT1/CD1_1 is 0; expected the wavelength step per pixel")
    axis = crval + step * (np.arange(n_pix) + 1.0 - crpix)
    if int(header.get("DC-FLAG", 0) or 0) == 1:
        return to_angstrom(10.0 ** axis, header.get("CUNIT1"), where=f"{place} CUNIT1")
    return to_angstrom(axis, header.get("CUNIT1"), where=f"{place} CUNIT1")


def _ivar(hdul: fits.HDUList, flux_index: int, n_pix: int) -> tuple[np.ndarray, str] | None:
    """Inverse variance from a same-length image extension, and that extension's name."""
    for index, hdu in enumerate(hdul):
        if index == flux_index or not isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU)):
            continue
        name = (hdu.name or "").upper()
        if hdu.data is None or not _one_row(hdu.header) or hdu.data.size != n_pix:
            continue
        values = native(hdu.data, np.float64).ravel()
        with np.errstate(divide="ignore", invalid="ignore"):
            good = np.isfinite(values) & (values > 0)
            if name in _IVAR:
                return np.where(np.isfinite(values) & (values >= 0), values, 0.0), name
            if name in _ERROR:
                return np.where(good, 1.0 / values ** 2, 0.0), name
            if name in _VARIANCE:
                return np.where(good, 1.0 / values, 0.0), name
    return None


def _identifiers(header: fits.Header) -> dict:
    ids = {}
    for key, cards in _IDS.items():
        value = header_value(header, keys=cards)
        if value is not None:
            ids[key] = value.strip() if isinstance(value, str) else value
    return ids


def read(path: str, hdul: fits.HDUList | None = None) -> list[Spectrum | ReadFailure]:
    """The one spectrum of the file (its flux HDU, row -1)."""
    with opened(path, hdul) as hdul:
        index = _flux_hdu(hdul)
        if index is None:
            raise InputError(f"{path}: no 1-D image with CRVAL1 and CDELT1/CD1_1; expected a "
                             f"one-dimensional image spectrum")
        header = hdul[index].header
        place = where(path, index)
        flux = native(hdul[index].data, np.float32).ravel()
        wave = _wavelength(header, flux.size, place)
        air = str(header.get("AIRORVAC", "")).strip().lower().startswith("air")
        if air:
            wave = air_to_vacuum(wave)
        found = _ivar(hdul, index, flux.size)
        if found is None:
            warnings.warn(f"{place}: no IVAR/ERROR/VARIANCE extension; sigma falls back to 0.1 x "
                          f"the median flux (quality_flags bit 1 NO_VALID_IVAR), so e_* are not "
                          f"measurement errors", InputWarning, stacklevel=2)
            ivar, ivar_name = np.zeros(flux.size), "ivar (none: zeros)"
        else:
            ivar, ivar_name = found
        record = checked(wave, flux, ivar.astype(np.float32), Origin(path, NAME, index),
                         identifiers=_identifiers(hdul[0].header) | _identifiers(header),
                         names=("flux", ivar_name, "CRVAL1/CDELT1 grid"),
                         flux_unit=str(header.get("BUNIT", "") or "").strip())
        if air and isinstance(record, Spectrum):
            import dataclasses

            record = dataclasses.replace(record, converted_from_air=True)
        return [record]
