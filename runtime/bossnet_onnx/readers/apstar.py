"""APOGEE `apStar-*.fits` / `asStar-*.fits` (DR13-DR17): APOGEE Net's input.

Layout (sdss/datamodel APOGEE_REDUX/.../apStar): HDU1 flux, HDU2 error, HDU3 mask (images on
the log-linear grid 10**(CRVAL1 + CDELT1*i), 8575 pixels, no EXTNAME in older reductions).
With several visits the images are 2-D: row 0 the pixel-weighted combined spectrum, row 1 the
globally weighted one, rows 2.. the individual visits; a one-visit star stores 1-D arrays (the
visit is the combined spectrum). Read here: row 0 (the spectrum the reference predicts) and
each visit row (row k is visit k-1); row 1 is left out because it is another weighting of the
same visits. The error array is kept as given (`Spectrum.sigma`): the reference draws with it.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from astropy.io import fits

from ..errors import InputError
from ..science.members import APOGEE_CDELT1, APOGEE_CRVAL1, APOGEE_NPIX
from ..spectrum import ReadFailure, Spectrum
from ._checks import Origin, checked, ivar_from_error, where
from ._fits import header_value, native, opened

NAME = "apstar"
KINDS = ("apogee",)
__all__ = ["NAME", "KINDS", "identify", "read", "looks_like_apstar_header"]

FILE_PREFIXES = ("apStar", "asStar")


def looks_like_apstar_header(header: Mapping[str, Any]) -> bool:
    """An image HDU on the APOGEE log-linear grid (used on HDU1; never raises). Any mapping
    of keywords to values or their text will do (the input sniff reads raw header cards)."""
    try:
        return (int(header.get("NAXIS", 0)) in (1, 2)
                and int(header.get("NAXIS1", 0)) == APOGEE_NPIX
                and abs(float(header.get("CRVAL1", 0.0)) - APOGEE_CRVAL1) < 1e-6
                and abs(float(header.get("CDELT1", 0.0)) - APOGEE_CDELT1) < 1e-9)
    except (TypeError, ValueError):
        return False


def identify(path: str, hdul: fits.HDUList | None) -> bool:
    """apStar/asStar by name, or by an HDU1 image on the APOGEE grid."""
    try:
        if hdul is None:
            return os.path.basename(str(path)).startswith(FILE_PREFIXES)
        return (len(hdul) > 2 and isinstance(hdul[1], fits.ImageHDU)
                and looks_like_apstar_header(hdul[1].header))
    except Exception:  # noqa: BLE001 - identify never raises
        return False


def _ids(primary: fits.Header) -> dict:
    ids = {}
    for key, cards in (("apogee_id", ("OBJID", "APOGEE_ID")), ("telescope", ("TELESCOP",))):
        value = header_value(primary, keys=cards)
        if value is not None:
            ids[key] = str(value).strip()
    return ids


def read(path: str, hdul: fits.HDUList | None = None) -> list[Spectrum | ReadFailure]:
    """The combined spectrum (row 0) and every visit row, as APOGEE Net inputs."""
    with opened(path, hdul) as hdul:
        if len(hdul) < 3:
            raise InputError(f"{path}: apStar file with {len(hdul)} HDUs; expected HDU1 flux "
                             f"and HDU2 error images")
        flux_hdu, error_hdu = hdul[1], hdul[2]
        flux_all = native(flux_hdu.data, np.float32)
        error_all = native(error_hdu.data, np.float32)
        if flux_all.shape != error_all.shape or flux_all.ndim not in (1, 2):
            # FITS axis order (NAXIS1, NAXIS2), as the header states them
            raise InputError(f"{where(path, 2)}: error image is {error_all.shape[::-1]} but "
                             f"flux is {flux_all.shape[::-1]}; expected the same 1-D or 2-D "
                             f"shape")
        flux_all, error_all = np.atleast_2d(flux_all), np.atleast_2d(error_all)
        crval = header_value(flux_hdu.header, keys=("CRVAL1",))
        cdelt = header_value(flux_hdu.header, keys=("CDELT1",))
        if crval is None or cdelt is None:
            raise InputError(f"{where(path, 1)}: header lacks CRVAL1/CDELT1 for the log-lambda "
                             f"wavelength grid")
        n_pix = flux_all.shape[1]
        wave = 10.0 ** (float(crval) + float(cdelt) * np.arange(n_pix))
        wave.flags.writeable = False
        rows = [0, *range(2, flux_all.shape[0])]
        ids = _ids(hdul[0].header)
        out: list[Spectrum | ReadFailure] = []
        for row in rows:
            flux, error = flux_all[row], error_all[row]
            ivar = ivar_from_error(error).astype(np.float32)
            row_ids = dict(ids, visit=max(row - 1, 0))
            rec = checked(wave, flux, ivar, Origin(path, NAME, 1, row),
                          identifiers=row_ids, names=("flux (HDU1)", "error (HDU2)", "CRVAL1 grid"))
            if isinstance(rec, Spectrum):
                rec = dataclasses.replace(rec, kind="apogee", sigma=error)
            out.append(rec)
        return out
