"""Input readers: one module per survey format, each with `identify` and `read`.

`read_spectra(path)` checks the file, opens it once, asks each reader in `READERS` (most
specific first) whether it recognises it and returns that reader's Spectrum / ReadFailure
records. File-level problems (missing, directory, empty, not FITS, truncated, unknown layout)
raise InputError naming the file; a spectrum that cannot be used (length mismatch, all-NaN
flux, wavelength not increasing, a broken visit) is a ReadFailure naming file, HDU and row,
so that the other spectra of the file are still read.

`iter_spectra(path)` gives the same records one at a time: readers of files that hold many
spectra (mwm, LAMOST table, generic array tables) have an `iter_read` that builds each record
only when asked, so a 10,000-row file is never held as 10,000 decoded spectra at once.
"""
from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator

from ..errors import BossNetWarning, InputError, UnknownFormatError
from ..spectrum import ReadFailure, Spectrum
from . import generic_table, image_1d, lamost_image, lamost_table, mwm, sdss_spec
from ._fits import check_file, fits_file

__all__ = ["READERS", "read_spectra", "iter_spectra", "Spectrum", "ReadFailure"]

log = logging.getLogger("bossnet_onnx.readers")

#: Tried in this order; the first whose identify() is True reads the file. mwm first (its BOSS
#: tables are also array-cell tables), the generic table last (it accepts the most).
READERS = (mwm, sdss_spec, lamost_table, lamost_image, image_1d, generic_table)


def read_spectra(path: str | os.PathLike) -> list[Spectrum | ReadFailure]:
    """All spectra in one file (several for mwmStar/mwmVisit), or failures for broken rows.

    An mwm file whose BOSS HDUs are all empty gives an empty list, not an error.
    """
    return list(iter_spectra(path))


def iter_spectra(path: str | os.PathLike) -> Iterator[Spectrum | ReadFailure]:
    """The records of `read_spectra`, one at a time (the file stays open meanwhile).

    File-level errors are raised when the first record is asked for.
    """
    path = os.fspath(path)
    check_file(path)
    if path.lower().endswith(generic_table.ASCII_SUFFIXES):
        yield from _read_with(generic_table, path, None)
        return
    with fits_file(path) as hdul:
        for reader in READERS:
            if _named_warnings(path, reader.identify, path, hdul):
                yield from _read_with(reader, path, hdul)
                return
    names = ", ".join(r.NAME for r in READERS)
    raise UnknownFormatError(
        f"{path}: FITS file in no known spectrum layout (tried {names}); expected e.g. an SDSS "
        f"spec file with a COADD table (flux, loglam, ivar), an mwmStar/mwmVisit file, a LAMOST "
        f"spectrum, a 1-D image with CRVAL1/CDELT1, or a table with wavelength and flux columns"
    )


def _named_warnings(path: str, function, *args):
    """`function(*args)`, astropy's and numpy's warnings about damaged cards or columns turned
    into log lines naming the file (a bare "WARNING: VerifyWarning: ..." says nothing of which
    file). Our own warnings (BossNetWarning, e.g. InputWarning) already name it: passed on."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            return function(*args)
    finally:  # after the recording ended: ours reach the caller's filters
        _pass_on(path, caught)


def _pass_on(path: str, caught: list[warnings.WarningMessage]) -> None:
    ours = [w for w in caught if issubclass(w.category, BossNetWarning)]
    for message in dict.fromkeys(str(w.message).splitlines()[0] for w in caught
                                 if w not in ours and str(w.message)):
        log.warning("%s: %s", path, message[:200])
    for w in ours:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _read_with(reader, path: str, hdul) -> Iterator[Spectrum | ReadFailure]:
    records = iter(reader.iter_read(path, hdul) if hasattr(reader, "iter_read")
                   else reader.read(path, hdul))
    while True:
        try:
            record = _named_warnings(path, next, records, None)
        except (ValueError, TypeError, KeyError, IndexError, OSError) as exc:
            # astropy decoding a damaged table, text where numbers belong: still one line
            # naming the file
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"{path}: cannot read it as {reader.NAME} ({text[:160]}); the "
                             f"file may be corrupted or hold non-numeric values") from None
        if record is None:
            return
        yield record
