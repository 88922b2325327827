"""Opening FITS files with errors that name the file and say what is wrong with it."""
from __future__ import annotations

import gzip
import os
import warnings
from typing import Any

import numpy as np
from astropy.io import fits

from ..errors import InputError

__all__ = ["open_fits", "native", "header_value", "looks_like_fits"]

FITS_MAGIC = b"SIMPLE  ="


def looks_like_fits(path: str) -> bool:
    """True if the file (or its gzip content) starts with the FITS signature; never raises."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
            fh.seek(0)
            if head == b"\x1f\x8b":
                with gzip.open(fh) as gz:
                    return gz.read(len(FITS_MAGIC)) == FITS_MAGIC
            return fh.read(len(FITS_MAGIC)) == FITS_MAGIC
    except (OSError, EOFError, gzip.BadGzipFile):
        return False


def open_fits(path: str) -> fits.HDUList:
    """All HDUs of `path`, fully loaded; InputError for missing, non-FITS or truncated files."""
    if not os.path.exists(path):
        raise InputError(f"{path}: file not found")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory with no spectrum files (*.fits, *.fits.gz, "
                         f"*.fit, *.csv, *.ecsv)")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: file is empty (0 bytes)")
    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
    except OSError as exc:
        raise InputError(f"{path}: cannot read file ({exc.strerror})") from None
    if not looks_like_fits(path):
        kind = "gzip file whose content is not FITS" if gz else "not a FITS file"
        raise InputError(f"{path}: {kind} (no 'SIMPLE =' header); expected a survey spectrum "
                         f"in FITS format")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
            for hdu in hdul:
                _ = hdu.data  # force reading: a truncated file fails here, not later
        for w in caught:
            if "truncated" in str(w.message).lower():
                raise OSError(str(w.message))
        return hdul
    except InputError:
        raise
    except (OSError, ValueError, TypeError, IndexError, EOFError, Warning) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: FITS file is truncated or corrupted ({text[:160]})") from None


def native(array: Any, dtype=np.float64) -> np.ndarray:
    """A native-endian numpy copy (FITS stores big-endian)."""
    return np.array(array, dtype=dtype, copy=True)


def header_value(*headers: fits.Header, keys: tuple[str, ...]) -> Any:
    """First present, non-blank value of any of `keys` in any of `headers`."""
    for header in headers:
        if header is None:
            continue
        for key in keys:
            value = header.get(key)
            if value is not None and str(value).strip() != "":
                return value
    return None
