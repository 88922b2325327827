"""SDSS-V DR19 Astra `mwmStar-*.fits` / `mwmVisit-*.fits`: one spectrum per BOSS table row.

HDU1 is BOSS/APO, HDU2 BOSS/LCO (HDU3/4 are APOGEE and are not BOSS Net's business). Each row
holds flux/ivar/pixel_flags arrays on the log-linear grid 10**(CRVAL + CDELT*i) given in the
HDU header (BOSS: 3.5523, 1e-4, 4648 pixels). An empty HDU (no rows at that observatory) is
skipped; a broken row becomes a ReadFailure while the other rows are still read.
"""
from __future__ import annotations

import logging
import os

import numpy as np
from astropy.io import fits

from ..errors import InputError
from ..spectrum import ReadFailure, Spectrum
from ._fits import header_value, native

NAME = "mwm"
__all__ = ["NAME", "identify", "read", "boss_hdus"]

log = logging.getLogger("bossnet_onnx.readers")

_ID_COLUMNS = ("sdss_id", "catalogid", "telescope", "mjd", "fieldid", "field", "spectrum_pk",
               "min_mjd", "max_mjd", "n_visits")


def boss_hdus(hdul: fits.HDUList) -> list[int]:
    """Indices of the BOSS HDUs (by EXTNAME, or HDU1/HDU2 with a BOSS instrument header)."""
    found = []
    for i, hdu in enumerate(hdul[1:], start=1):
        name = (hdu.name or "").upper()
        instrument = str(hdu.header.get("INSTRMNT", hdu.header.get("INSTRUME", ""))).upper()
        if name.startswith("BOSS") or (instrument == "BOSS" and not name.startswith("APOGEE")):
            found.append(i)
    return found


def identify(path: str, hdul: fits.HDUList | None) -> bool:
    try:
        if hdul is None:
            return False
        base = os.path.basename(path)
        if base.startswith(("mwmStar", "mwmVisit")):
            return True
        return bool(boss_hdus(hdul))
    except Exception:
        return False


def _wavelength(header: fits.Header, n: int, where: str) -> np.ndarray:
    crval = header_value(header, keys=("CRVAL", "CRVAL1"))
    cdelt = header_value(header, keys=("CDELT", "CDELT1", "CD1_1"))
    if crval is None or cdelt is None:
        raise InputError(f"{where}: header lacks CRVAL/CDELT for the log-lambda wavelength grid")
    npix = header_value(header, keys=("NPIXELS",))
    if npix is not None and int(npix) != n:
        raise InputError(f"{where}: header NPIXELS={npix} but the flux arrays have {n} pixels")
    loglam = np.float64(crval) + np.float64(cdelt) * np.arange(n)
    return 10.0 ** loglam


def _row_ids(data, row: int, names: dict, primary: fits.Header) -> dict:
    ids = {}
    for col in _ID_COLUMNS:
        if col in names:
            value = data[names[col]][row]
            if isinstance(value, bytes):
                value = value.decode(errors="replace")
            ids[col] = value.strip() if isinstance(value, str) else \
                (value.item() if hasattr(value, "item") else value)
    for col, key in (("sdss_id", "SDSS_ID"), ("catalogid", "CATALOGID")):
        if col not in ids and primary.get(key) is not None:
            ids[col] = primary.get(key)
    return ids


def read(path: str, hdul: fits.HDUList) -> list[Spectrum | ReadFailure]:
    indices = boss_hdus(hdul)
    if not indices:
        raise InputError(f"{path}: no BOSS HDU (BOSS/APO or BOSS/LCO) in this mwm file")
    primary = hdul[0].header
    for i, hdu in enumerate(hdul[1:], start=1):
        if (hdu.name or "").upper().startswith("APOGEE") and hdu.data is not None \
                and len(hdu.data):
            log.info("%s[HDU %d]: %d APOGEE spectra skipped (BOSS Net reads BOSS spectra)",
                     path, i, len(hdu.data))
    out: list[Spectrum | ReadFailure] = []
    for index in indices:
        hdu = hdul[index]
        where = f"{path}[HDU {index}]"
        if not isinstance(hdu, fits.BinTableHDU) or hdu.data is None or len(hdu.data) == 0:
            continue  # no BOSS spectra from this observatory
        names = {n.lower(): n for n in hdu.columns.names}
        missing = [c for c in ("flux", "ivar") if c not in names]
        if missing:
            raise InputError(f"{where}: BOSS table lacks column(s) {', '.join(missing)}")
        data = hdu.data
        n_pix = np.asarray(data[names["flux"]][0]).shape[-1]
        try:
            wave = _wavelength(hdu.header, n_pix, where)
        except InputError as exc:
            out.extend(ReadFailure(path, str(exc), NAME, index, row) for row in range(len(data)))
            continue
        for row in range(len(data)):
            ids = _row_ids(data, row, names, primary)
            try:
                flux = native(data[names["flux"]][row], np.float32).ravel()
                ivar = native(data[names["ivar"]][row], np.float32).ravel()
                mask = None
                if "pixel_flags" in names:
                    mask = native(data[names["pixel_flags"]][row], np.int64).ravel() != 0
                if flux.shape != wave.shape or ivar.shape != wave.shape:
                    raise InputError(f"{where}, row {row}: flux has {flux.size} and ivar "
                                     f"{ivar.size} pixels, expected {wave.size}")
                if not np.isfinite(flux).any() or not np.any(flux != 0):
                    raise InputError(f"{where}, row {row}: no usable flux (all NaN or zero); "
                                     f"an empty visit")
            except (InputError, ValueError, TypeError) as exc:
                out.append(ReadFailure(path, str(exc), NAME, index, row, ids))
                continue
            out.append(Spectrum(wave, flux, ivar, source=path, format=NAME, hdu=index, row=row,
                                mask=mask, identifiers=ids))
    return out
