"""SDSS `spec-*.fits` (legacy SDSS, BOSS/eBOSS, SDSS-V): HDU1 COADD table, HDU2 SPECOBJ/SPALL.

Wavelength is 10**loglam computed in float32, as the reference pipeline does (it matters at
the 1e-3 A level). Identifiers come from HDU2 when present, else from the primary header.
"""
from __future__ import annotations

import numpy as np
from astropy.io import fits

from ..errors import InputError
from ..spectrum import ReadFailure, Spectrum
from ._fits import header_value, native

NAME = "sdss-spec"
__all__ = ["NAME", "identify", "read"]

_ID_COLUMNS = {"plate": ("PLATE",), "field": ("FIELD", "FIELDID"), "mjd": ("MJD",),
               "fiberid": ("FIBERID",), "catalogid": ("CATALOGID",), "sdss_id": ("SDSS_ID",),
               "class": ("CLASS",), "subclass": ("SUBCLASS",), "z": ("Z",), "objid": ("OBJID",)}


def _coadd(hdul: fits.HDUList):
    for hdu in hdul[1:]:
        if isinstance(hdu, fits.BinTableHDU) and hdu.columns is not None:
            names = {n.lower() for n in hdu.columns.names}
            if {"flux", "loglam", "ivar"} <= names:
                return hdu
    return None


def identify(path: str, hdul: fits.HDUList | None) -> bool:
    try:
        return hdul is not None and _coadd(hdul) is not None
    except Exception:
        return False


def _identifiers(hdul: fits.HDUList) -> dict:
    ids: dict = {}
    primary = hdul[0].header
    table = None
    for hdu in hdul[2:3]:
        if isinstance(hdu, fits.BinTableHDU) and hdu.data is not None and len(hdu.data):
            table = hdu
    for key, cols in _ID_COLUMNS.items():
        value = None
        if table is not None:
            for col in cols:
                if col in table.columns.names:
                    value = table.data[col][0]
                    break
        if value is None:
            value = header_value(primary, keys={"plate": ("PLATEID", "PLATE"),
                                                "mjd": ("MJD",), "fiberid": ("FIBERID",),
                                                "field": ("FIELDID",),
                                                "catalogid": ("CATALOGID",),
                                                "sdss_id": ("SDSS_ID",)}.get(key, ()))
        if value is None:
            continue
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        if isinstance(value, str):
            ids[key] = value.strip()
        elif np.size(value) == 1:  # legacy SPECOBJ has array-valued columns (OBJID): skip them
            ids[key] = np.asarray(value).item()
    telescope = primary.get("TELESCOP")
    if telescope:
        ids["telescope"] = str(telescope).strip()
    return ids


def read(path: str, hdul: fits.HDUList) -> list[Spectrum | ReadFailure]:
    hdu = _coadd(hdul)
    if hdu is None:
        raise InputError(f"{path}: no COADD table with flux, loglam and ivar columns")
    index = hdul.index(hdu)
    data = hdu.data
    cols = {n.lower(): n for n in hdu.columns.names}
    loglam = native(data[cols["loglam"]], np.float32)
    flux = native(data[cols["flux"]], np.float32)
    ivar = native(data[cols["ivar"]], np.float32)
    mask = None
    if "and_mask" in cols:
        mask = native(data[cols["and_mask"]], np.int64) != 0
    wave = (np.float32(10.0) ** loglam).astype(np.float64)  # float32 as the reference
    ids = _identifiers(hdul)
    if not (flux.shape == ivar.shape == wave.shape):
        return [ReadFailure(path, f"{path}[HDU {index}]: columns differ in length (flux "
                                  f"{flux.shape[0]}, ivar {ivar.shape[0]}, loglam {wave.shape[0]})",
                            NAME, index, -1, ids)]
    return [Spectrum(wave, flux, ivar, source=path, format=NAME, hdu=index, row=-1, mask=mask,
                     identifiers=ids)]
