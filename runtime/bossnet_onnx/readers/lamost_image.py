"""LAMOST low-resolution spectra, primary-image layout (DR1-DR7, also as .fits.gz).

The primary HDU is a (rows x pixels) float32 image: flux, ivar, wavelength, andmask, ormask.
DR1 files have no wavelength row (rows: flux, ivar, subcontinuum, andmask, ormask); their
wavelength is 10**(CRVAL1 + CD1_1*i) (COEFF0/COEFF1 as fallback). Row 2 is taken as the
wavelength when its values lie in 3000-11000 A (a subcontinuum is near 1).
"""
from __future__ import annotations

import numpy as np
from astropy.io import fits

from ..errors import InputError
from ..spectrum import ReadFailure, Spectrum
from ._checks import checked
from ._fits import header_value, native, opened

NAME = "lamost-image"
KINDS = ("boss",)
__all__ = ["NAME", "identify", "read", "header_identifiers"]

_IDS = {"obsid": ("OBSID",), "designation": ("DESIG",), "class": ("CLASS",),
        "subclass": ("SUBCLASS",), "z": ("Z",), "z_err": ("Z_ERR",),
        "objname": ("OBJNAME",), "mjd": ("MJD",), "fiberid": ("FIBERID",),
        "planid": ("PLANID",), "telescope": ("TELESCOP",), "data_v": ("DATA_V",),
        "ra": ("RA",), "dec": ("DEC",), "snr": ("SNRR",)}
_INTEGERS = ("obsid", "mjd", "fiberid")  # DR2 writes FIBERID as a string


def header_identifiers(header: fits.Header) -> dict:
    """LAMOST identifiers from a primary header (shared with the table layout)."""
    ids = {}
    for key, cards in _IDS.items():
        value = header_value(header, keys=cards)
        if value is None:
            continue
        if isinstance(value, str):
            value = value.strip()
            if key in _INTEGERS and value.lstrip("-").isdigit():
                value = int(value)
        ids[key] = value
    if str(ids.get("telescope", "")).upper() == "LAMOST":
        ids["telescope"] = "lamost"
    # LAMOST pipelines correct wavelengths to the heliocentric frame (HELIO = T, HELIO_RV)
    if header.get("HELIO", True) is not False:
        ids["frame"] = "heliocentric"
    return ids


def identify(path: str, hdul: fits.HDUList | None) -> bool:
    """A 2-D primary image of 2-8 rows and more than 100 pixels (not a CCD frame)."""
    try:
        data = hdul[0].data if hdul is not None else None
        return (data is not None and data.ndim == 2 and 2 <= data.shape[0] <= 8
                and data.shape[1] > 100)
    except Exception:  # noqa: BLE001
        return False


def _is_wavelength_row(row: np.ndarray) -> bool:
    """Row 2 holds wavelengths (DR2-DR7) rather than DR1's subcontinuum (values near 1).

    Decided on the values' range only, so that a damaged wavelength row (not increasing) is
    reported by the content checks instead of being silently replaced by the header grid.
    """
    finite = row[np.isfinite(row)]
    return bool(finite.size > row.size // 2 and 3000 < np.median(finite) < 11000)


def _header_wavelength(path: str, header: fits.Header, n_pix: int) -> np.ndarray:
    crval = header_value(header, keys=("CRVAL1", "COEFF0"))
    cdelt = header_value(header, keys=("CD1_1", "CDELT1", "COEFF1"))
    if crval is None or cdelt is None:
        raise InputError(f"{path}[HDU 0]: no wavelength row and no CRVAL1/CD1_1 (or COEFF0/"
                         f"COEFF1) in the header; cannot build the wavelength grid")
    with np.errstate(over="ignore"):  # a damaged header: inf, then reported as such
        return 10.0 ** (float(crval) + float(cdelt) * np.arange(n_pix))


def read(path: str, hdul: fits.HDUList | None = None) -> list[Spectrum | ReadFailure]:
    """The one spectrum of the file (HDU 0, row -1)."""
    with opened(path, hdul) as hdul:
        header = hdul[0].header
        data = native(hdul[0].data, np.float64)
        if data.ndim != 2 or data.shape[0] < 2:
            raise InputError(f"{path}[HDU 0]: expected a LAMOST image with rows flux, ivar, "
                             f"[wavelength], andmask, ormask; got shape {data.shape}")
        n_rows, n_pix = data.shape
        if n_rows > 2 and _is_wavelength_row(data[2]):
            wave = data[2]
        else:  # DR1: row 2 is the subcontinuum
            wave = _header_wavelength(path, header, n_pix)
        mask = data[3] != 0 if n_rows > 3 else None
        return [checked(wave, data[0].astype(np.float32), data[1].astype(np.float32), path=path,
                        fmt=NAME, hdu=0, row=-1, mask=mask,
                        identifiers=header_identifiers(header),
                        flux_unit=str(header_value(header, keys=("BUNIT",)) or "").strip())]
