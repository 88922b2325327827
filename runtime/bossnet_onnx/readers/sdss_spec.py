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
from ._checks import Origin, checked
from ._fits import column_names, first_row_scalars, header_value, native, opened, table_columns

NAME = "sdss-spec"
KINDS = ("boss",)
__all__ = ["NAME", "identify", "read"]

#: identifier -> HDU2 columns, then primary-header keywords, tried in order. RA/Dec: the
#: fibre's (PLUG_RA/PLUG_DEC, SDSS-V RACAT/DECCAT), never the primary header's RA/DEC, which in
#: SDSS-I..IV files is the plate centre.
_IDS = {
    "plateid": (("PLATE",), ("PLATEID", "PLATE")),
    "fieldid": (("FIELD", "FIELDID"), ("FIELDID", "FIELD")),
    "mjd": (("MJD",), ("MJD",)),
    "fiberid": (("FIBERID",), ("FIBERID",)),
    "catalogid": (("CATALOGID",), ("CATALOGID", "CAT_ID")),
    "sdss_id": (("SDSS_ID",), ("SDSS_ID",)),
    "class": (("CLASS",), ()),
    "subclass": (("SUBCLASS",), ()),
    "z": (("Z",), ()),
    "z_err": (("Z_ERR",), ()),
    "objid": (("OBJID",), ()),
    "specobjid": (("SPECOBJID",), ("SPEC_ID",)),
    "ra": (("RACAT", "PLUG_RA", "RA"), ("PLUG_RA",)),
    "dec": (("DECCAT", "PLUG_DEC", "DEC"), ("PLUG_DEC",)),
    "snr": (("SN_MEDIAN_ALL",), ()),
    "xcsao_v_rad": (("XCSAO_RV",), ()),
    "xcsao_e_v_rad": (("XCSAO_ERV",), ()),
    "obs": (("OBS",), ("OBSERVAT",)),
}

#: SPALL `OBS` / observatory -> DR19 `telescope`
_TELESCOPES = {"APO": "apo25m", "LCO": "lco25m"}


_COADD_COLUMNS = ("flux", "loglam", "ivar")


def _is_table(hdu) -> bool:
    return isinstance(hdu, fits.BinTableHDU)


def _coadd(hdul: fits.HDUList) -> fits.BinTableHDU | None:
    """The COADD table: the HDU named COADD, else HDU 1 when it is a table.

    Never another table that happens to hold flux, loglam and ivar: from HDU 4 on, spec files
    carry single-camera exposures (B1-..., R2-...) with those columns, and predicting one of
    them instead of a broken coadd would be a different spectrum under the coadd's name.
    """
    first = _hdu_at(hdul, 1)
    if first is None:
        return None
    if _is_table(first) and _named_coadd(first):  # as real spec files are: no other HDU read
        return first
    for hdu in hdul[1:]:
        if _is_table(hdu) and _named_coadd(hdu):
            return hdu
    return first if _is_table(first) else None


def _named_coadd(hdu) -> bool:
    return (hdu.name or "").strip().upper() == "COADD"


def _hdu_at(hdul: fits.HDUList, index: int):
    """HDU `index`, or None; without len(hdul), which would parse every header of the file."""
    try:
        return hdul[index]
    except IndexError:
        return None


def identify(path: str, hdul: fits.HDUList | None) -> bool:
    """The COADD table has SDSS's loglam column (flux or ivar may be missing: `read` then says
    so, rather than another layout reading a table further on)."""
    try:
        hdu = _coadd(hdul) if hdul is not None else None
        return hdu is not None and "loglam" in {n.lower() for n in column_names(hdu)}
    except Exception:  # noqa: BLE001
        return False


def _identifiers(hdul: fits.HDUList, coadd_index: int) -> dict:
    primary = hdul[0].header
    row: dict = {}
    if isinstance(_hdu_at(hdul, coadd_index + 1), fits.BinTableHDU):
        wanted = {c for columns, _ in _IDS.values() for c in columns}
        row = first_row_scalars(hdul, coadd_index + 1, wanted)
    if "CATALOGID" not in row and "SDSS_ID" not in row:
        # BOSS/eBOSS SPALL's FIELD is the imaging field of the photometry, not an SDSS-V
        # field id (which replaced plates): only SDSS-V tables (with CATALOGID) mean the latter
        row.pop("FIELD", None)
        row.pop("FIELDID", None)
        sdss5 = False
    else:
        sdss5 = True
    ids: dict = {}
    for key, (columns, cards) in _IDS.items():
        value = next((row[c] for c in columns if c in row), None)
        if value is None and cards:
            value = header_value(primary, keys=cards)
        if isinstance(value, str):
            value = value.strip()
        if value is not None and value != "":
            ids[key] = value
    if "specobjid" in ids:  # text in SPECOBJ and SDSS-V SPALL, int64 in BOSS SPALL
        ids["specobjid"] = str(ids["specobjid"]).strip()
    ids["telescope"] = _telescope(ids.pop("obs", ""), primary)
    if not ids["telescope"]:
        del ids["telescope"]
    frame = _frame(primary, sdss5)
    if frame:
        ids["frame"] = frame
    return ids


def _telescope(obs: object, primary: fits.Header) -> str:
    """DR19 telescope names. SDSS-V says APO or LCO (SPALL OBS); SDSS-I..IV spectra all come
    from the SDSS 2.5 m at APO (TELESCOP 'SDSS 2.5-M'), the only telescope with those
    spectrographs before SDSS-V."""
    site = str(obs or "").strip().upper()
    if site in _TELESCOPES:
        return _TELESCOPES[site]
    telescop = str(primary.get("TELESCOP", "")).strip().upper()
    if telescop.startswith("SDSS 2.5"):
        return "apo25m"
    return str(primary.get("TELESCOP", "")).strip()


def _frame(primary: fits.Header, sdss5: bool) -> str:
    """SDSS-V spec headers carry V_RAD ("radial velocity relative to the barycenter", added to
    the wavelengths): barycentric. Earlier idlspec2d applied HELIO_RV: heliocentric."""
    if sdss5 or "V_RAD" in primary:
        return "barycentric"
    if "HELIO_RV" in primary:
        return "heliocentric"
    return ""


def read(path: str, hdul: fits.HDUList | None = None) -> list[Spectrum | ReadFailure]:
    """The one coadded spectrum of the file (row -1)."""
    with opened(path, hdul) as hdul:
        hdu = _coadd(hdul)
        if hdu is None:
            raise InputError(f"{path}: no COADD table with flux, loglam and ivar columns; "
                             f"expected an SDSS spec file")
        index = hdul.index(hdu)
        names = column_names(hdu)
        present = {n.lower() for n in names}
        missing = [c for c in _COADD_COLUMNS if c not in present]
        if missing:
            raise InputError(f"{path}[HDU {index}]: COADD table lacks column(s) "
                             f"{', '.join(missing)}; expected flux, loglam and ivar (the "
                             f"single-camera exposure HDUs are not used in its place)")
        ids = _identifiers(hdul, index)
        cols = {n.lower(): n for n in names}
        wanted = {c: cols[c] for c in (*_COADD_COLUMNS, "and_mask") if c in cols}
        column = table_columns(hdul, index, {name.upper() for name in wanted.values()})
        if column is not None and all(name.upper() in column for name in wanted.values()):
            column = {c: column[name.upper()] for c, name in wanted.items()}
        else:  # what the fast path leaves to astropy (or names it reads otherwise)
            table = hdu.data
            column = {c: table[name] for c, name in wanted.items()} \
                if table is not None and len(table) else {}
        if not column or len(column["flux"]) == 0:
            return [ReadFailure(path, f"{path}[HDU {index}]: COADD table has no rows", NAME,
                                index, -1, ids)]
        loglam = native(column["loglam"], np.float32).ravel()
        flux = native(column["flux"], np.float32).ravel()
        ivar = native(column["ivar"], np.float32).ravel()
        # float32 power, then float64: bit-identical to what the reference feeds its interpolation
        with np.errstate(over="ignore"):  # damaged loglam: inf, then reported as such
            wave = (np.float32(10.0) ** loglam).astype(np.float64)
        mask = None
        if "and_mask" in column:
            mask = np.asarray(column["and_mask"]).ravel() != 0
        unit = header_value(hdu.header, hdul[0].header, keys=("BUNIT",))
        return [checked(wave, flux, ivar, Origin(path, NAME, index, -1), mask=mask,
                        identifiers=ids, names=("flux", "ivar", "loglam"),
                        flux_unit=str(unit or "").strip())]
