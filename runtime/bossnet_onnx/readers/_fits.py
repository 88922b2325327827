"""Opening input files with errors that name the file and say what is wrong with it.

Files are read whole into memory (gzip decompressed here, not by astropy) so that a truncated
or corrupted file is caught at open time, with one clear message, instead of astropy silently
returning fewer HDUs or a half-decompressed stream.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import os
import warnings
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from astropy.io import fits

from ..errors import InputError, first_line
from ..inputs import SPECTRUM_SUFFIXES

__all__ = ["check_file", "open_fits", "opened", "native", "header_value", "looks_like_fits",
           "first_row_scalars", "SPECTRUM_SUFFIXES"]

FITS_MAGIC = b"SIMPLE  ="
GZIP_MAGIC = b"\x1f\x8b"


def looks_like_fits(path: str) -> bool:
    """True if the file (or its gzip content) starts with the FITS signature; never raises."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
            fh.seek(0)
            if head == GZIP_MAGIC:
                with gzip.open(fh) as gz:
                    return gz.read(len(FITS_MAGIC)) == FITS_MAGIC
            return fh.read(len(FITS_MAGIC)) == FITS_MAGIC
    except (OSError, EOFError, zlib.error):
        return False


def check_file(path: str) -> None:
    """InputError unless `path` is an existing, non-empty, readable regular file."""
    if not os.path.exists(path):
        raise InputError(f"{path}: file not found; check the path (or the entry in the list "
                         f"file)")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory with no spectrum files "
                         f"({', '.join('*' + s for s in SPECTRUM_SUFFIXES)})")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: file is empty (0 bytes); expected a spectrum file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: file is not readable (permission denied)")


def _corrupt(path: str, why: str) -> InputError:
    return InputError(f"{path}: FITS file is truncated or corrupted ({why}); download it again")


def _file_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise InputError(f"{path}: cannot read file ({exc.strerror})") from None
    if raw[:2] != GZIP_MAGIC:
        if raw[:len(FITS_MAGIC)] != FITS_MAGIC:
            raise InputError(f"{path}: not a FITS file (no 'SIMPLE =' header); expected a "
                             f"survey spectrum in FITS format, or a .csv/.ecsv table")
        return raw
    try:
        data = gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        if not looks_like_fits(path):
            raise InputError(f"{path}: gzip file whose content is not FITS (no 'SIMPLE =' "
                             f"header); expected a gzipped survey spectrum") from None
        raise _corrupt(path, f"gzip stream: {str(exc) or type(exc).__name__}") from None
    if data[:len(FITS_MAGIC)] != FITS_MAGIC:
        raise InputError(f"{path}: gzip file whose content is not FITS (no 'SIMPLE =' header); "
                         f"expected a gzipped survey spectrum")
    return data


def open_fits(path: str) -> fits.HDUList:
    """All HDUs of `path`, read into memory; InputError for unusable files.

    Every HDU's header is parsed and its data size checked against the bytes present, so a
    truncated file fails here; the data themselves are decoded only when a reader asks.
    """
    check_file(path)
    data = _file_bytes(path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(io.BytesIO(data), lazy_load_hdus=False)
        for w in caught:
            text = str(w.message)
            if "truncated" in text.lower() or "corrupt" in text.lower():
                raise OSError(text.splitlines()[0])
        end = 0
        for index, hdu in enumerate(hdul):
            info = hdu.fileinfo()
            if info["datLoc"] + hdu.size > len(data):
                raise OSError(f"HDU {index} needs {info['datLoc'] + hdu.size} bytes, the file "
                              f"has {len(data)}")
            end = info["datLoc"] + info["datSpan"]
        hdul._bossnet_raw = data  # for first_row_scalars: skips decoding 200-column tables
    except (OSError, ValueError, TypeError, IndexError, KeyError, EOFError, Warning) as exc:
        raise _corrupt(path, first_line(exc, 160)) from None
    if data[end:].strip(b"\0 "):
        hdul.close()
        raise _corrupt(path, f"{len(data) - end} bytes after the last complete HDU "
                             f"(an incomplete header or data unit)")
    return hdul


@contextlib.contextmanager
def opened(path: str, hdul: fits.HDUList | None) -> Iterator[fits.HDUList]:
    """The HDUList a reader was given, or `path` opened (and closed afterwards)."""
    if hdul is not None:
        yield hdul
        return
    own = open_fits(path)
    try:
        yield own
    finally:
        own.close()


_SCALAR_TYPES = {"L": "S1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4",
                 "D": ">f8"}
_WIDTHS = {"L": 1, "X": None, "B": 1, "I": 2, "J": 4, "K": 8, "A": 1, "E": 4, "D": 8, "C": 8,
           "M": 16, "P": 8, "Q": 16}


def _first_row_raw(hdul: fits.HDUList, index: int, wanted: set[str]) -> dict[str, Any] | None:
    raw = getattr(hdul, "_bossnet_raw", None)
    hdu = hdul[index]
    header = hdu.header
    if raw is None or header.get("NAXIS2", 0) < 1:
        return None
    start = hdu.fileinfo()["datLoc"]
    offset, out = 0, {}
    for i in range(1, int(header["TFIELDS"]) + 1):
        form = str(header[f"TFORM{i}"]).strip().upper()
        digits = len(form) - len(form.lstrip("0123456789"))
        repeat = int(form[:digits]) if digits else 1
        code = form[digits:digits + 1]
        code_width = _WIDTHS.get(code)
        if code_width is None:
            return None  # bit columns and unknown codes: let astropy decode
        width = repeat * code_width
        name = str(header.get(f"TTYPE{i}", "")).strip().upper()
        if name in wanted and (f"TSCAL{i}" in header or f"TZERO{i}" in header):
            return None
        if name in wanted and code == "A":
            out[name] = raw[start + offset:start + offset + width].decode(errors="replace")
            out[name] = out[name].split("\0")[0].rstrip()
        elif name in wanted and repeat == 1 and code in _SCALAR_TYPES:
            value = np.frombuffer(raw, _SCALAR_TYPES[code], 1, start + offset)[0]
            out[name] = bool(value == b"T") if code == "L" else value.item()
        offset += width
    if offset != header["NAXIS1"]:
        return None
    return out


def first_row_scalars(hdul: fits.HDUList, index: int, wanted: set[str]) -> dict[str, Any]:
    """Scalar (and text) values of the first row of table HDU `index`, by upper-case column
    name, for the `wanted` columns present; array columns are left out.

    SPALL/SPECOBJ tables have 100-230 columns of which the identifiers need ten: decoding the
    row straight from the bytes open_fits kept avoids astropy building every column (~60 ms a
    file). Falls back to astropy for HDULists opened elsewhere or unusual column formats.
    """
    fast = _first_row_raw(hdul, index, wanted)
    if fast is not None:
        return fast
    hdu = hdul[index]
    if hdu.data is None or len(hdu.data) == 0:
        return {}
    out = {}
    for name in hdu.columns.names:
        if name.upper() in wanted:
            value = hdu.data[name][0]
            if isinstance(value, bytes):
                value = value.decode(errors="replace")
            if isinstance(value, str):
                out[name.upper()] = value.rstrip()
            elif np.size(value) == 1:
                out[name.upper()] = np.asarray(value).item()
    return out


def native(array: Any, dtype=np.float64) -> np.ndarray:
    """A native-endian numpy copy (FITS stores big-endian)."""
    return np.array(array, dtype=dtype, copy=True)


def header_value(*headers: fits.Header | None, keys: tuple[str, ...]) -> Any:
    """First present, non-blank value of any of `keys` in any of `headers`."""
    for header in headers:
        if header is None:
            continue
        for key in keys:
            value = header.get(key)
            if value is not None and str(value).strip() != "":
                return value
    return None
