"""SDSS-V DR19 Astra `mwmStar-*.fits` / `mwmVisit-*.fits`: one spectrum per table row.

HDU1 is BOSS/APO, HDU2 BOSS/LCO, HDU3 APOGEE/APO, HDU4 APOGEE/LCO. A BOSS Net model reads the
BOSS HDUs (the APOGEE rows are skipped with an INFO log line), an APOGEE Net model the APOGEE
HDUs (`kind`). Each row holds flux/ivar/pixel_flags arrays on the log-linear grid
10**(CRVAL + CDELT*i) given in the HDU header (BOSS: 3.5523, 1e-4, NPIXELS 4648; APOGEE:
4.179, 6e-6, 8575). An HDU with no rows (no data from that observatory; Astra then writes
zero-width pixel columns) is skipped; a broken row becomes a ReadFailure while the other rows
are still read.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator

import numpy as np
from astropy.io import fits

from ..errors import InputError
from ..spectrum import ReadFailure, Spectrum
from ._checks import checked, where
from ._fits import RELEASE_EVERY_ROWS, header_value, native, opened, release_pages

NAME = "mwm"
KINDS = ("boss", "apogee")
__all__ = ["NAME", "KINDS", "identify", "read", "iter_read", "boss_hdus", "instrument_hdus"]
#: which instrument's HDUs feed which family member
_INSTRUMENT = {"boss": "BOSS", "apogee": "APOGEE"}

log = logging.getLogger("bossnet_onnx.readers")

#: row columns kept as identifiers (when the HDU has them), DR19 names. `v_rad`/`e_v_rad` exist
#: in mwmStar rows only (the coadd's XCSAO mean); visits carry `xcsao_v_rad`/`xcsao_e_v_rad`.
_ROW_IDS = ("sdss_id", "catalogid", "telescope", "mjd", "fieldid", "plateid", "spectrum_pk_id",
            "drp_spectrum_pk_id", "min_mjd", "max_mjd", "n_visits", "snr", "in_stack",
            "v_rad", "e_v_rad", "xcsao_v_rad", "xcsao_e_v_rad")
#: identifier -> primary-header keywords (Astra shortens catalogid to CAT_ID). The primary
#: header's V_RAD is Gaia's radial velocity: never read as the spectrum's.
_PRIMARY_IDS = {"sdss_id": ("SDSS_ID",), "catalogid": ("CAT_ID", "CATALOGID"),
                "ra": ("RA",), "dec": ("DEC",)}


def _instrument(hdu) -> str:
    name = (hdu.name or "").upper()
    if "/" in name:
        return name.split("/")[0]
    return str(hdu.header.get("INSTRMNT", "")).strip().upper()


def instrument_hdus(hdul: fits.HDUList, instrument: str) -> list[int]:
    """Indices of one instrument's HDUs (EXTNAME <INSTRUMENT>/<OBS>, or INSTRMNT)."""
    return [i for i, hdu in enumerate(hdul[1:], start=1)
            if isinstance(hdu, fits.BinTableHDU) and _instrument(hdu) == instrument]


def boss_hdus(hdul: fits.HDUList) -> list[int]:
    """Indices of the BOSS HDUs (EXTNAME BOSS/APO, BOSS/LCO, or INSTRMNT = BOSS)."""
    return instrument_hdus(hdul, "BOSS")


#: Astra's file names: such a file is read by this reader whatever its HDUs hold
FILE_PREFIXES = ("mwmStar", "mwmVisit")


def identify(path: str, hdul: fits.HDUList | None) -> bool:
    """mwmStar/mwmVisit by file name (no HDUList needed), or by BOSS/<observatory> HDUs."""
    try:
        if os.path.basename(str(path)).startswith(FILE_PREFIXES):
            return True
        return hdul is not None and bool(boss_hdus(hdul) or instrument_hdus(hdul, "APOGEE"))
    except Exception:  # noqa: BLE001
        return False


def _wavelength(header: fits.Header, n_pix: int, place: str) -> np.ndarray:
    crval = header_value(header, keys=("CRVAL", "CRVAL1"))
    cdelt = header_value(header, keys=("CDELT", "CDELT1", "CD1_1"))
    if crval is None or cdelt is None:
        raise InputError(f"{place}: header lacks CRVAL/CDELT for the log-lambda wavelength grid")
    npix = header_value(header, keys=("NPIXELS",))
    if npix is not None and int(npix) != n_pix:
        raise InputError(f"{place}: header NPIXELS={npix} but the flux arrays have {n_pix} "
                         f"pixels")
    with np.errstate(over="ignore"):  # a damaged header: inf, then reported as such
        return 10.0 ** (float(crval) + float(cdelt) * np.arange(n_pix))


def _value(value):
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        return value.strip()
    return value.item() if hasattr(value, "item") else value


def _row_ids(data, row: int, names: dict, primary: fits.Header, kind: str) -> dict:
    ids = {col: _value(data[names[col]][row]) for col in _ROW_IDS if col in names}
    for key, cards in _PRIMARY_IDS.items():
        if key not in ids:
            value = header_value(primary, keys=cards)
            if value is not None:
                ids[key] = _value(value)
    ids["frame"] = _frame(ids, kind)
    return ids


def _kind(path: str, names: dict) -> str:
    """'star' or 'visit': by DR19 columns (visits have mjd, coadds min_mjd), else file name."""
    if "min_mjd" in names or "n_good_visits" in names:
        return "star"
    if "mjd" in names or "in_stack" in names:
        return "visit"
    return "visit" if os.path.basename(path).startswith("mwmVisit") else "star"


def _frame(ids: dict, kind: str) -> str:
    """DR19 shifts every stacked visit by its own XCSAO velocity before coadding: mwmStar BOSS
    spectra and the mwmVisit rows with in_stack are in the star's rest frame; the other visits
    are resampled unshifted (barycentric, like the DRP spectra)."""
    if kind == "star":
        return "rest"
    in_stack = ids.get("in_stack")
    if in_stack is None:
        return ""
    return "rest" if bool(in_stack) else "barycentric"


def _note_apogee(path: str, hdul: fits.HDUList) -> None:
    for i, hdu in enumerate(hdul[1:], start=1):
        if _instrument(hdu) == "APOGEE" and hdu.data is not None and len(hdu.data):
            log.info("%s[HDU %d]: %d APOGEE spectra skipped (BOSS Net reads BOSS spectra)",
                     path, i, len(hdu.data))


def _read_hdu(path: str, hdul: fits.HDUList, index: int,
              spectrum_kind: str = "boss") -> Iterator[Spectrum | ReadFailure]:
    hdu = hdul[index]
    place = where(path, index)
    data = hdu.data
    if data is None or len(data) == 0:
        return  # no spectra of this instrument from this observatory
    names = {n.lower(): n for n in hdu.columns.names}
    missing = [c for c in ("flux", "ivar") if c not in names]
    if missing:
        raise InputError(f"{place}: {_INSTRUMENT[spectrum_kind]} table lacks column(s) "
                         f"{', '.join(missing)}; expected an Astra mwmStar/mwmVisit file")
    primary = hdul[0].header
    kind = _kind(path, names)
    rows = range(len(data))
    flux_all = data[names["flux"]]  # a view of the table, not a copy
    try:
        if flux_all.ndim != 2 or flux_all.dtype == object:
            raise InputError(f"{place}: flux is not an array column (one spectrum per row); "
                             f"expected e.g. format 4648E")
        wave = _wavelength(hdu.header, flux_all.shape[1], place)
        wave.flags.writeable = False  # one grid shared by every row of the HDU
    except InputError as exc:
        for row in rows:
            yield ReadFailure(path, f"{exc}", NAME, index, row,
                              _row_ids(data, row, names, primary, kind))
        return
    unit = str(header_value(hdu.header, primary, keys=("BUNIT",)) or "").strip()
    for row in rows:
        if row % RELEASE_EVERY_ROWS == 0:  # row 0: after astropy scanned the table
            release_pages(hdul)
        ids = _row_ids(data, row, names, primary, kind)
        flux = native(data[names["flux"]][row], np.float32).ravel()
        ivar = native(data[names["ivar"]][row], np.float32).ravel()
        mask = None
        if "pixel_flags" in names:  # DR19 stores the DRP or_mask bits here, as float32
            mask = np.asarray(data[names["pixel_flags"]][row]).ravel() != 0
        row_place = where(path, index, row)
        if flux.size and np.isfinite(flux).all() and not flux.any():
            yield ReadFailure(path, f"{row_place}: flux is all zero (an empty visit); "
                                    f"nothing to predict from", NAME, index, row, ids,
                              spectrum=Spectrum(wave, flux, ivar, source=path, format=NAME,
                                                hdu=index, row=row, mask=mask,
                                                identifiers=ids))
            continue
        rec = checked(wave, flux, ivar, path=path, fmt=NAME, hdu=index, row=row, mask=mask,
                      identifiers=ids, names=("flux", "ivar", "NPIXELS grid"), place=row_place,
                      flux_unit=unit)
        if isinstance(rec, Spectrum) and spectrum_kind != rec.kind:
            rec = dataclasses.replace(rec, kind=spectrum_kind)
        yield rec


def read(path: str, hdul: fits.HDUList | None = None,
         kind: str = "boss") -> list[Spectrum | ReadFailure]:
    """Every row of the `kind` member's instrument, in HDU then row order (APO, then LCO)."""
    return list(iter_read(path, hdul, kind))


def iter_read(path: str, hdul: fits.HDUList | None = None,
              kind: str = "boss") -> Iterator[Spectrum | ReadFailure]:
    """The records of `read`, each built only when asked for."""
    instrument = _INSTRUMENT.get(kind)
    if instrument is None:
        raise InputError(f"{path}: mwm files hold BOSS and APOGEE spectra, not {kind}")
    with opened(path, hdul) as hdul:
        indices = instrument_hdus(hdul, instrument)
        if not indices:
            raise InputError(f"{path}: no {instrument} HDU ({instrument}/APO or "
                             f"{instrument}/LCO table) in this mwm file; expected an Astra "
                             f"mwmStar/mwmVisit file")
        if instrument == "BOSS":
            _note_apogee(path, hdul)
        for index in indices:
            yield from _read_hdu(path, hdul, index, kind)
