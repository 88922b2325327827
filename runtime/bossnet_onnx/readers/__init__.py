"""Input readers: one module per survey format, each with `identify` and `read`.

`read_spectra(path)` checks the file, opens it once, asks each reader in `READERS` (most
specific first) whether it recognises it and returns that reader's Spectrum / ReadFailure
records. File-level problems (missing, directory, empty, not FITS, truncated, unknown layout)
raise InputError naming the file; a spectrum that cannot be used (length mismatch, all-NaN
flux, wavelength not increasing, a broken visit) is a ReadFailure naming file, HDU and row,
so that the other spectra of the file are still read.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError, UnknownFormatError, first_line
from ..spectrum import ReadFailure, Spectrum
from . import generic_table, image_1d, lamost_image, lamost_table, mwm, sdss_spec
from ._checks import BadValues
from ._fits import check_file, open_fits

__all__ = ["READERS", "read_spectra", "Spectrum", "ReadFailure"]

#: Tried in this order; the first whose identify() is True reads the file. mwm first (its BOSS
#: tables are also array-cell tables), the generic table last (it accepts the most).
READERS = (mwm, sdss_spec, lamost_table, lamost_image, image_1d, generic_table)


def read_spectra(path: str | os.PathLike) -> list[Spectrum | ReadFailure]:
    """All spectra in one file (several for mwmStar/mwmVisit), or failures for broken rows.

    An mwm file whose BOSS HDUs are all empty gives an empty list, not an error.
    """
    path = os.fspath(path)
    check_file(path)
    if path.lower().endswith(generic_table.ASCII_SUFFIXES):
        return _read_with(generic_table, path, None)
    with open_fits(path) as hdul:
        for reader in READERS:
            if reader.identify(path, hdul):
                return _read_with(reader, path, hdul)
    names = ", ".join(r.NAME for r in READERS)
    raise UnknownFormatError(
        f"{path}: FITS file in no known spectrum layout (tried {names}); expected e.g. an SDSS "
        f"spec file with a COADD table (flux, loglam, ivar), an mwmStar/mwmVisit file, a LAMOST "
        f"spectrum, a 1-D image with CRVAL1/CDELT1, or a table with wavelength and flux columns"
    )


def _raised_by_file_libraries(exc: BaseException) -> bool:
    """True when the innermost frame of `exc` is in astropy or numpy: they choked on the file's
    bytes or values. A ValueError/IndexError/KeyError raised anywhere else is a bug of ours (an
    IndexError in a reader) and must be reported as one, not as a corrupted file."""
    import astropy
    import numpy

    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = Path(tb.tb_frame.f_code.co_filename).resolve()
    return any(where.is_relative_to(Path(str(m.__file__)).resolve().parent)
               for m in (astropy, numpy))


def _read_with(reader, path: str, hdul) -> list[Spectrum | ReadFailure]:
    try:
        return reader.read(path, hdul)
    except (ValueError, TypeError, KeyError, IndexError, OSError) as exc:
        if not (isinstance(exc, (OSError, BadValues)) or _raised_by_file_libraries(exc)):
            raise  # surfaces as "unexpected IndexError" naming the file: a bug to report
        # astropy decoding a damaged table, text where numbers belong: still one line naming
        # the file
        raise InputError(f"{path}: cannot read it as {reader.NAME} ({first_line(exc, 160)}); the file may "
                         f"be corrupted or hold non-numeric values") from None
