"""LAMOST low-resolution spectra, table layout (DR8 and later): HDU1 COADD with one row of
array columns FLUX, IVAR, WAVELENGTH, ANDMASK, ORMASK, NORMALIZATION; identifiers in the
primary header (OBSID, DESIG, CLASS, ...)."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from astropy.io import fits

from ..errors import InputError
from ..spectrum import ReadFailure, Spectrum
from ._checks import Origin, checked
from ._fits import RELEASE_EVERY_ROWS, header_value, native, opened, release_pages
from .lamost_image import header_identifiers

NAME = "lamost-table"
KINDS = ("boss",)
__all__ = ["NAME", "identify", "read", "iter_read"]


def _table(hdul: fits.HDUList) -> fits.BinTableHDU | None:
    for hdu in hdul[1:]:
        if isinstance(hdu, fits.BinTableHDU) and hdu.columns is not None:
            names = {n.upper(): n for n in hdu.columns.names}
            if {"FLUX", "IVAR", "WAVELENGTH"} <= set(names) and all(
                    hdu.columns[names[c]].format.repeat > 1 for c in ("FLUX", "WAVELENGTH")):
                # array cells (one spectrum a row); one-pixel-a-row tables are generic ones
                return hdu
    return None


def identify(path: str, hdul: fits.HDUList | None) -> bool:
    """A table whose FLUX, IVAR and WAVELENGTH columns hold whole spectra (array cells)."""
    try:
        return hdul is not None and _table(hdul) is not None
    except Exception:  # noqa: BLE001
        return False


def read(path: str, hdul: fits.HDUList | None = None) -> list[Spectrum | ReadFailure]:
    """One spectrum per table row (row -1 when the table has the usual single row)."""
    return list(iter_read(path, hdul))


def iter_read(path: str, hdul: fits.HDUList | None = None) -> Iterator[Spectrum | ReadFailure]:
    """The records of `read`, each built only when asked for."""
    with opened(path, hdul) as hdul:
        hdu = _table(hdul)
        if hdu is None:
            raise InputError(f"{path}: no COADD table with FLUX, IVAR and WAVELENGTH array "
                             f"columns; expected a LAMOST DR8+ spectrum")
        index = hdul.index(hdu)
        if hdu.data is None or len(hdu.data) == 0:
            raise InputError(f"{path}[HDU {index}]: COADD table has no rows")
        names = {n.upper(): n for n in hdu.columns.names}
        ids = header_identifiers(hdul[0].header)
        single = len(hdu.data) == 1
        unit = str(header_value(hdu.header, hdul[0].header, keys=("BUNIT",)) or "").strip()
        for row in range(len(hdu.data)):
            if row % RELEASE_EVERY_ROWS == 0:  # row 0: after astropy scanned the table
                release_pages(hdul)
            rec = hdu.data[row]
            mask = None
            if "ANDMASK" in names:
                mask = np.asarray(rec[names["ANDMASK"]]).ravel() != 0
            yield checked(native(rec[names["WAVELENGTH"]], np.float64).ravel(),
                          native(rec[names["FLUX"]], np.float32).ravel(),
                          native(rec[names["IVAR"]], np.float32).ravel(),
                          Origin(path, NAME, index, -1 if single else row),
                          mask=mask, identifiers=ids, failure_row=row,
                          names=("FLUX", "IVAR", "WAVELENGTH"), flux_unit=unit)
