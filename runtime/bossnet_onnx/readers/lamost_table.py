"""LAMOST low-resolution spectra, table layout (DR8 and later): HDU1 COADD with one row of
array columns FLUX, IVAR, WAVELENGTH, ANDMASK, ORMASK; identifiers in the primary header."""
from __future__ import annotations

import numpy as np
from astropy.io import fits

from ..errors import InputError
from ..spectrum import ReadFailure, Spectrum
from ._fits import header_value, native
from .lamost_image import _IDS

NAME = "lamost-table"
__all__ = ["NAME", "identify", "read"]


def _table(hdul: fits.HDUList):
    for hdu in hdul[1:]:
        if isinstance(hdu, fits.BinTableHDU) and hdu.columns is not None:
            names = {n.upper(): n for n in hdu.columns.names}
            if {"FLUX", "IVAR", "WAVELENGTH"} <= set(names) and \
                    hdu.columns[names["FLUX"]].format.repeat > 1:
                # array cells (one spectrum a row); one-pixel-a-row tables are generic ones
                return hdu
    return None


def identify(path: str, hdul: fits.HDUList | None) -> bool:
    try:
        return hdul is not None and _table(hdul) is not None
    except Exception:
        return False


def read(path: str, hdul: fits.HDUList) -> list[Spectrum | ReadFailure]:
    hdu = _table(hdul)
    if hdu is None or hdu.data is None or len(hdu.data) == 0:
        raise InputError(f"{path}: no COADD table with FLUX, IVAR and WAVELENGTH")
    index = hdul.index(hdu)
    names = {n.upper(): n for n in hdu.columns.names}
    ids = {}
    for key, cards in _IDS.items():
        value = header_value(hdul[0].header, keys=cards)
        if value is not None:
            ids[key] = value.strip() if isinstance(value, str) else value
    out: list[Spectrum | ReadFailure] = []
    for row in range(len(hdu.data)):
        rec = hdu.data[row]
        flux = native(rec[names["FLUX"]], np.float32).ravel()
        ivar = native(rec[names["IVAR"]], np.float32).ravel()
        wave = native(rec[names["WAVELENGTH"]], np.float64).ravel()
        if not (flux.shape == ivar.shape == wave.shape):
            out.append(ReadFailure(path, f"{path}[HDU {index}, row {row}]: FLUX, IVAR and "
                                         f"WAVELENGTH differ in length ({flux.size}, {ivar.size}, "
                                         f"{wave.size})", NAME, index, row, ids))
            continue
        mask = native(rec[names["ANDMASK"]], np.int64).ravel() != 0 if "ANDMASK" in names else None
        out.append(Spectrum(wave, flux, ivar, source=path, format=NAME, hdu=index,
                            row=row if len(hdu.data) > 1 else -1, mask=mask, identifiers=ids))
    return out
