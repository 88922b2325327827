"""LAMOST low-resolution spectra, primary-image layout (DR1-DR7).

The primary HDU is a (rows x pixels) image: flux, ivar, wavelength, andmask, ormask. DR1 files
have no wavelength row (rows: flux, ivar, subcontinuum, andmask, ormask); their wavelength is
10**(CRVAL1 + CD1_1*i) (COEFF0/COEFF1 as fallback), which is also used whenever row 2 does not
look like an increasing optical wavelength array.
"""
from __future__ import annotations

import numpy as np
from astropy.io import fits

from ..errors import InputError
from ..spectrum import Spectrum
from ._fits import header_value, native

NAME = "lamost-image"
__all__ = ["NAME", "identify", "read"]

_IDS = {"obsid": ("OBSID",), "desig": ("DESIG",), "class": ("CLASS",), "subclass": ("SUBCLASS",),
        "z": ("Z",), "mjd": ("MJD",), "fiberid": ("FIBERID",), "planid": ("PLANID",),
        "telescope": ("TELESCOP",)}


def identify(path: str, hdul: fits.HDUList | None) -> bool:
    try:
        data = hdul[0].data if hdul is not None else None
        return data is not None and data.ndim == 2 and data.shape[0] >= 2 and data.shape[1] > 100
    except Exception:
        return False


def _looks_like_wavelength(row: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(row)) and np.all(np.diff(row) > 0)
                and 3000 < row[0] < 11000 and 3000 < row[-1] < 11000)


def read(path: str, hdul: fits.HDUList) -> list[Spectrum]:
    header = hdul[0].header
    data = native(hdul[0].data, np.float64)
    n_rows, n_pix = data.shape
    if n_rows > 2 and _looks_like_wavelength(data[2]):
        wave = data[2]
        mask_row = 3 if n_rows > 3 else None
    else:
        crval = header_value(header, keys=("CRVAL1", "COEFF0"))
        cdelt = header_value(header, keys=("CD1_1", "CDELT1", "COEFF1"))
        if crval is None or cdelt is None:
            raise InputError(f"{path}[HDU 0]: no wavelength row and no CRVAL1/CD1_1 in the header")
        wave = 10.0 ** (float(crval) + float(cdelt) * np.arange(n_pix))
        mask_row = 3 if n_rows > 3 else None
    mask = data[mask_row] != 0 if mask_row is not None else None
    ids = {}
    for key, cards in _IDS.items():
        value = header_value(header, keys=cards)
        if value is not None:
            ids[key] = value.strip() if isinstance(value, str) else value
    return [Spectrum(wave, data[0].astype(np.float32), data[1].astype(np.float32), source=path,
                     format=NAME, hdu=0, row=-1, mask=mask, identifiers=ids)]
