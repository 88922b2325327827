"""SDSS `spec-*.fits` (legacy SDSS, BOSS/eBOSS, SDSS-V): HDU1 COADD table, HDU2 SPECOBJ/SPALL.

Wavelength is 10**loglam computed in float32, as the reference pipeline does (it matters at
the 1e-3 A level), and stored as float64. Identifiers come from HDU2 (SPECOBJ in legacy SDSS,
SPALL in BOSS/eBOSS and SDSS-V) when present, else from the primary header (PLATEID, MJD, ...).
"""
from __future__ import annotations

import numpy as np
from astropy.io import fits

from ..errors import InputError
from ..spectrum import ReadFailure, Spectrum
from ._checks import checked
from ._fits import first_row_scalars, header_value, native, opened

NAME = "sdss-spec"
__all__ = ["NAME", "identify", "read"]

#: identifier -> HDU2 columns, then primary-header keywords, tried in order
_IDS = {
    "plate": (("PLATE",), ("PLATEID", "PLATE")),
    "field": (("FIELD", "FIELDID"), ("FIELDID", "FIELD")),
    "mjd": (("MJD",), ("MJD",)),
    "fiberid": (("FIBERID",), ("FIBERID",)),
    "catalogid": (("CATALOGID",), ("CATALOGID", "CAT_ID")),
    "sdss_id": (("SDSS_ID",), ("SDSS_ID",)),
    "class": (("CLASS",), ()),
    "subclass": (("SUBCLASS",), ()),
    "z": (("Z",), ()),
    "objid": (("OBJID",), ()),
}


def _coadd(hdul: fits.HDUList) -> fits.BinTableHDU | None:
    for hdu in hdul[1:]:
        if isinstance(hdu, fits.BinTableHDU) and hdu.columns is not None:
            names = {n.lower() for n in hdu.columns.names}
            if {"flux", "loglam", "ivar"} <= names:
                return hdu
    return None


def identify(path: str, hdul: fits.HDUList | None) -> bool:
    """A binary table with flux, loglam and ivar columns (the COADD HDU)."""
    try:
        return hdul is not None and _coadd(hdul) is not None
    except Exception:  # noqa: BLE001
        return False


def _identifiers(hdul: fits.HDUList, coadd_index: int) -> dict:
    primary = hdul[0].header
    row: dict = {}
    if len(hdul) > coadd_index + 1 and isinstance(hdul[coadd_index + 1], fits.BinTableHDU):
        wanted = {c for columns, _ in _IDS.values() for c in columns}
        row = first_row_scalars(hdul, coadd_index + 1, wanted)
    if "CATALOGID" not in row and "SDSS_ID" not in row:
        # BOSS/eBOSS SPALL's FIELD is the imaging field of the photometry, not an SDSS-V
        # field id (which replaced plates): only SDSS-V tables (with CATALOGID) mean the latter
        row.pop("FIELD", None)
        row.pop("FIELDID", None)
    ids: dict = {}
    for key, (columns, cards) in _IDS.items():
        value = next((row[c] for c in columns if c in row), None)
        if value is None and cards:
            value = header_value(primary, keys=cards)
        if isinstance(value, str):
            value = value.strip()
        if value is not None and value != "":
            ids[key] = value
    telescope = primary.get("TELESCOP")
    if telescope:
        ids["telescope"] = str(telescope).strip()
    return ids


def read(path: str, hdul: fits.HDUList | None = None) -> list[Spectrum | ReadFailure]:
    """The one coadded spectrum of the file (row -1)."""
    with opened(path, hdul) as hdul:
        hdu = _coadd(hdul)
        if hdu is None:
            raise InputError(f"{path}: no COADD table with flux, loglam and ivar columns; "
                             f"expected an SDSS spec file")
        index = hdul.index(hdu)
        ids = _identifiers(hdul, index)
        data = hdu.data
        if data is None or len(data) == 0:
            return [ReadFailure(path, f"{path}[HDU {index}]: COADD table has no rows", NAME,
                                index, -1, ids)]
        cols = {n.lower(): n for n in hdu.columns.names}
        loglam = native(data[cols["loglam"]], np.float32).ravel()
        flux = native(data[cols["flux"]], np.float32).ravel()
        ivar = native(data[cols["ivar"]], np.float32).ravel()
        # float32 power, then float64: bit-identical to what the reference feeds its interpolation
        wave = (np.float32(10.0) ** loglam).astype(np.float64)
        mask = None
        if "and_mask" in cols:
            mask = np.asarray(data[cols["and_mask"]]).ravel() != 0
        return [checked(wave, flux, ivar, path=path, fmt=NAME, hdu=index, row=-1, mask=mask,
                        identifiers=ids, names=("flux", "ivar", "loglam"))]
