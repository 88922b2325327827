"""Any FITS table, CSV or ECSV with wavelength, flux and (ideally) ivar or error columns.

Column names are matched case-insensitively: wavelength/wave/lambda/wl, or loglam (log10
Angstrom); flux; ivar/inverse_variance, or error/err/sigma/flux_err (converted to ivar, 0 where
the error is not positive and finite); optionally a mask (and_mask/andmask/mask/pixel_flags,
non-zero = bad). One spectrum per file when the columns hold one pixel a row, one spectrum per
row when they hold arrays.

Units are honoured where the file declares them (FITS TUNIT, ECSV unit, astropy column unit):
the wavelength is converted to Angstrom (nm, um, log10 Angstrom, ...; none declared means
Angstrom), an error or ivar declared in other flux units is rescaled to the flux's unit.
A table with no ivar or error column is read with ivar 0 (the no-ivar fallback: sigma from the
median flux, quality_flags bit 1 NO_VALID_IVAR) and one InputWarning saying so.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..errors import InputError, InputWarning, first_line
from ..science.units import is_log_unit, to_angstrom, unit_name
from ..spectrum import ReadFailure, Spectrum
from . import _text
from ._checks import BadValues, Origin, checked, ivar_from_error
from ._fits import RELEASE_EVERY_ROWS, check_file, release_pages
from .paths import ASCII_SUFFIXES

NAME = "generic-table"
KINDS = ("boss",)
__all__ = ["NAME", "identify", "usable_columns", "read", "iter_read", "spectra_from_table",
           "iter_spectra_from_table", "ASCII_SUFFIXES", "WAVE", "FLUX", "IVAR", "ERROR"]

WAVE = ("wavelength", "wave", "lambda", "wl", "loglam")
FLUX = ("flux",)
IVAR = ("ivar", "inverse_variance", "flux_ivar")
ERROR = ("error", "err", "sigma", "flux_err", "flux_error", "e_flux", "uncertainty")
MASK = ("and_mask", "andmask", "mask", "pixel_flags")


def _pick(names: list[str], options: tuple[str, ...]) -> str | None:
    lower = {n.lower(): n for n in names}
    for option in options:
        if option in lower:
            return lower[option]
    return None


def usable_columns(names: list[str]) -> bool:
    """Wavelength and flux columns among `names` (any case): a table this reader can take."""
    return bool(_pick(names, WAVE) and _pick(names, FLUX))


def _table_hdu(hdul: fits.HDUList) -> fits.BinTableHDU | None:
    """The first table HDU, if it has the columns; never a later one.

    A later table with the same columns is another spectrum (an SDSS spec file's single-camera
    exposures hold loglam, flux and ivar): reading it in place of an unusable first table would
    label one spectrum with another's name.
    """
    for hdu in hdul[1:]:
        if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)) and hdu.columns is not None:
            return hdu if usable_columns(list(hdu.columns.names)) else None
    return None


def identify(path: str, hdul: fits.HDUList | None) -> bool:
    """A CSV/ECSV file by suffix, or a FITS table with the columns above."""
    try:
        if hdul is None:
            return str(path).lower().endswith(ASCII_SUFFIXES)
        return _table_hdu(hdul) is not None
    except Exception:  # noqa: BLE001
        return False


#: data lines given to astropy's parser at a time (a chunk parses in well under a second, so
#: SIGINT/SIGTERM are honoured between chunks, and a many-spectra table is never held whole)
CHUNK_LINES = 20_000
CHUNK_BYTES = 8 << 20
#: most data lines of one text table (one pixel a line: 5 million pixels)
MAX_TEXT_ROWS = 5_000_000


def _text_format(path: str) -> str:
    return "ascii.ecsv" if path.lower().endswith((".ecsv", ".ecsv.gz")) else "ascii.csv"


def _parse(path: str, preamble: tuple[str, ...], lines: list[str]) -> Table:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a unit astropy does not know stays text
        return Table.read(list(preamble) + lines, format=_text_format(path))


def _text_tables(path: str) -> Iterator[tuple[int, Table | str]]:
    """(first row, astropy table) for each chunk of a CSV/ECSV file, read with _text's bounds;
    a chunk astropy cannot parse is parsed line by line, each failing line given as
    (row, why) so that a table of one spectrum a row loses only that row."""
    header = _text.read_header(path)
    for first, lines in _text.chunks(path, header, max_lines=CHUNK_LINES, max_bytes=CHUNK_BYTES,
                                     max_rows=MAX_TEXT_ROWS):
        try:
            yield first, _parse(path, header.preamble, lines)
            continue
        except Exception as exc:  # noqa: BLE001 - astropy's parsers raise many types
            if len(lines) == 1:
                yield first, first_line(exc, 160)
                continue
        for k, line in enumerate(lines):
            try:
                yield first + k, _parse(path, header.preamble, [line])
            except Exception as exc:  # noqa: BLE001
                yield first + k, first_line(exc, 160)


def _cannot_parse(path: str, row: int, why: str) -> InputError:
    fmt = _text_format(path)[6:].upper()
    return InputError(f"{path}: cannot parse as {fmt} (data row {row}: {why}); expected a header "
                      f"line and one pixel per line")


def _iter_text(path: str) -> Iterator[Spectrum | ReadFailure]:
    """A CSV/ECSV file's records, its rows parsed a chunk at a time: a table of one pixel a
    row is gathered into its one spectrum, a table of one spectrum a row is given on chunk by
    chunk (each bad line its own failure)."""
    check_file(path)
    pieces = _text_tables(path)
    first = next(pieces, None)
    if first is None:  # a header and no rows: the header alone says what else is wrong
        header = _text.read_header(path)
        try:
            names = tuple(_parse(path, header.preamble, []).colnames)
        except Exception as exc:  # noqa: BLE001 - astropy's parsers raise many types
            raise InputError(f"{path}: cannot parse as {_text_format(path)[6:].upper()} "
                             f"({first_line(exc, 160)}); expected a header line and one pixel "
                             f"per line") from None
        if not usable_columns(list(names)):
            raise InputError(f"{path}: needs wavelength ({'/'.join(WAVE)}) and flux columns (and "
                             f"ideally ivar or error); found {_text.shown_names(names)}")
        raise InputError(f"{path}: table has no rows; expected one pixel a row")
    row, table = first
    if isinstance(table, str):
        raise _cannot_parse(path, row, table)
    names = table.colnames
    fcol = _pick(names, FLUX)
    per_row = fcol is not None and np.asarray(table[fcol]).ndim == 2
    if not per_row:
        tables = [table]
        for row, more in pieces:
            if isinstance(more, str):
                raise _cannot_parse(path, row, more)
            tables.append(more)
        whole = tables[0] if len(tables) == 1 else _stacked(path, tables)
        yield from iter_spectra_from_table(whole, path=path, whole_file=True)
        return
    yield from iter_spectra_from_table(table, path=path, whole_file=True, first_row=row)
    for row, more in pieces:
        if isinstance(more, str):
            yield ReadFailure(path, f"{path}[row {row}]: cannot parse this line ({more})", NAME,
                              0, row)
            continue
        yield from iter_spectra_from_table(more, path=path, whole_file=True, first_row=row,
                                           warn=False)


def _stacked(path: str, tables: list[Table]) -> Table:
    from astropy.table import vstack

    try:
        return vstack(tables, metadata_conflicts="silent")
    except Exception as exc:  # noqa: BLE001 - astropy's merge errors
        raise InputError(f"{path}: columns change type between rows ({first_line(exc, 160)}); "
                         f"the file may hold non-numeric values") from None


def _load(path: str, hdul: fits.HDUList) -> tuple[Table, int]:
    hdu = _table_hdu(hdul)
    if hdu is None:
        raise InputError(f"{path}: no table with wavelength and flux columns")
    with warnings.catch_warnings():
        # a unit astropy does not know (e.g. 'Angstroms') stays as text, which to_angstrom reads
        warnings.simplefilter("ignore")
        table = Table.read(hdu, format="fits", unit_parse_strict="silent")  # keeps TUNITn
    return table, hdul.index(hdu)


def _column(table: Table, name: str, row: int | None) -> np.ndarray:
    values = table[name] if row is None else table[name][row]
    if np.asarray(values).dtype.kind == "c":  # astropy would keep the real part, with a warning
        raise BadValues(f"column {name} is complex; expected real numbers")
    return np.array(np.ma.filled(np.ma.asarray(values, dtype=np.float64), np.nan)).ravel()


def _stored_dtype(table: Table, name: str) -> type:
    """float32 when the file stores float32 (FITS 'E'), else float64: values kept as stored."""
    dtype = np.asarray(table[name]).dtype
    return np.float32 if dtype.kind == "f" and dtype.itemsize == 4 else np.float64


def _unit(table: Table, name: str | None):
    return getattr(table[name], "unit", None) if name else None


def _rescale(values: np.ndarray, unit, flux_unit, power: int, where: str) -> np.ndarray:
    """An error (power 1) or ivar (power -2) declared in other flux units, in the flux's unit."""
    if unit is None or flux_unit is None or unit_name(unit) == unit_name(flux_unit):
        return values
    from astropy import units as u

    try:
        target = u.Unit(flux_unit) ** power
        return values * u.Unit(unit).to(target)
    except (ValueError, TypeError, u.UnitsError):
        raise InputError(f"{where}: uncertainty unit {str(unit)!r} does not match the flux unit "
                         f"{str(flux_unit)!r}; expected the flux unit (error) or its inverse "
                         f"square (ivar)") from None


def spectra_from_table(table: Table, *, path: str, index: int = 0, fmt: str = NAME,
                       whole_file: bool = False) -> list[Spectrum | ReadFailure]:
    """Spectrum records from an astropy Table/QTable (file content or an in-memory table).

    `whole_file` says the table is the file itself (CSV/ECSV, in memory), so messages name
    `path` without an HDU.
    """
    return list(iter_spectra_from_table(table, path=path, index=index, fmt=fmt,
                                        whole_file=whole_file))


def iter_spectra_from_table(table: Table, *, path: str, index: int = 0, fmt: str = NAME,
                            whole_file: bool = False, hdul: fits.HDUList | None = None,
                            first_row: int = 0, warn: bool = True
                            ) -> Iterator[Spectrum | ReadFailure]:
    """The records of `spectra_from_table`, each built only when asked for; the memory-mapped
    pages of `hdul` read so far are given back every RELEASE_EVERY_ROWS rows. `first_row`:
    the file row of the table's row 0 (a chunk of a text file); `warn`: say once that there
    is no ivar column (False for a file's later chunks)."""
    names = table.colnames
    place = path if whole_file else f"{path}[HDU {index}]"
    if not usable_columns(names):
        raise InputError(f"{place}: needs wavelength ({'/'.join(WAVE)}) and flux columns (and "
                         f"ideally ivar or error); found {_text.shown_names(names) or 'no columns'}")
    wcol, fcol = _pick(names, WAVE), _pick(names, FLUX)
    icol, ecol, mcol = _pick(names, IVAR), _pick(names, ERROR), _pick(names, MASK)
    # usable_columns() guarantees these
    assert wcol is not None and fcol is not None
    if len(table) == 0:
        raise InputError(f"{place}: table has no rows; expected one pixel a row")
    per_row = np.asarray(table[fcol]).ndim == 2
    if per_row != (np.asarray(table[wcol]).ndim == 2):
        # one line for the file, not one failure per table row
        shapes = (f"{fcol} {'holds arrays' if per_row else 'holds one value a row'}, {wcol} "
                  f"{'holds one value a row' if per_row else 'holds arrays'}")
        raise InputError(f"{place}: {shapes}; expected both one pixel a row or both one "
                         f"spectrum a row")
    if not (icol or ecol) and warn:
        warnings.warn(f"{place}: no ivar or error column; sigma falls back to 0.1 x the median "
                      f"flux (quality_flags bit 1 NO_VALID_IVAR), so e_* are not measurement errors",
                      InputWarning, stacklevel=2)
    ftype = _stored_dtype(table, fcol)
    noise_col = icol or ecol
    itype = _stored_dtype(table, noise_col) if noise_col else np.float32
    wunit, funit = _unit(table, wcol), _unit(table, fcol)
    log_wave = wcol.lower() == "loglam" or is_log_unit(wunit)
    for row in (range(len(table)) if per_row else [None]):
        if hdul is not None and row is not None and row % RELEASE_EVERY_ROWS == 0:
            release_pages(hdul)
        wave, flux = _column(table, wcol, row), _column(table, fcol, row)
        if log_wave:
            with np.errstate(over="ignore"):  # damaged loglam: inf, then reported as such
                wave = 10.0 ** wave
        else:
            wave = to_angstrom(wave, wunit, where=f"{place} {wcol}")
        if icol:
            ivar = _rescale(_column(table, icol, row), _unit(table, icol), funit, -2, place)
        elif ecol:
            err = _rescale(_column(table, ecol, row), _unit(table, ecol), funit, 1, place)
            ivar = ivar_from_error(err)
        else:
            ivar = np.zeros_like(flux)
        mask = _column(table, mcol, row) != 0 if mcol else None
        yield checked(wave, flux.astype(ftype), ivar.astype(itype),
                      Origin(path, fmt, index, -1 if row is None else first_row + row), mask=mask,
                      names=(fcol, icol or ecol or "ivar (none: zeros)", wcol),
                      place=path if whole_file and row is None else None,
                      flux_unit="" if funit is None else str(funit))


def read(path: str, hdul: fits.HDUList | None = None) -> list[Spectrum | ReadFailure]:
    """The spectrum (or one per row, for array columns) of a FITS table or CSV/ECSV file."""
    return list(iter_read(path, hdul))


def iter_read(path: str, hdul: fits.HDUList | None = None) -> Iterator[Spectrum | ReadFailure]:
    """The records of `read`, each built only when asked for."""
    if hdul is None:
        yield from _iter_text(str(path))
        return
    table, index = _load(str(path), hdul)
    yield from iter_spectra_from_table(table, path=str(path), index=index, hdul=hdul)
