"""Input readers: one module per survey format, each with `identify` and `read`.

`read_spectra(path)` opens the file once, asks each reader in `READERS` (most specific first)
whether it recognises it, and returns that reader's Spectrum / ReadFailure records. File-level
problems raise InputError naming the file; an unrecognised file names the formats tried.
"""
from __future__ import annotations

import os

from ..errors import InputError, UnknownFormatError
from ..spectrum import ReadFailure, Spectrum
from . import generic_table, lamost_image, lamost_table, mwm, sdss_spec
from ._fits import open_fits

__all__ = ["READERS", "read_spectra", "Spectrum", "ReadFailure"]

#: Tried in this order; the first whose identify() is True reads the file.
READERS = (mwm, sdss_spec, lamost_table, lamost_image, generic_table)


def read_spectra(path: str | os.PathLike) -> list[Spectrum | ReadFailure]:
    """All spectra in one file (several for mwmStar/mwmVisit), or failures for broken rows."""
    path = os.fspath(path)
    if path.lower().endswith(generic_table.ASCII_SUFFIXES):
        if not os.path.exists(path):
            raise InputError(f"{path}: file not found")
        return generic_table.read(path, None)
    hdul = open_fits(path)
    with hdul:
        for reader in READERS:
            if reader.identify(path, hdul):
                return reader.read(path, hdul)
    names = ", ".join(r.NAME for r in READERS)
    raise UnknownFormatError(
        f"{path}: FITS file in no known spectrum layout (tried {names}); expected e.g. an SDSS "
        f"spec file with a COADD table (flux, loglam, ivar) or a table with wavelength, flux and "
        f"ivar columns"
    )
