"""Gaia DR3 archive tables: XP continuous mean spectra and RVS mean spectra, one row a source.

As the Gaia archive (and its DataLink service) distributes them: CSV (arrays as quoted
"(a, b, ...)" strings, an empty field for a band without a solution), ECSV, FITS binary tables
(variable-length array columns) and VOTable, plain or gzipped.

- XP continuous (`xp_continuous_mean_spectrum`): `bp_coefficients`, `rp_coefficients` (55 each),
  `*_coefficient_errors` and `*_coefficient_correlations` (the strict upper triangle packed
  column by column, 1485 values). The Spectrum's flux is the 110 coefficients (BP then RP),
  its sigma their errors and its covariance the two rebuilt 55x55 matrices.
- RVS (`rvs_mean_spectrum`): `flux` and `flux_error` on 846-870 nm in 0.01 nm steps (2401
  pixels; the archive gives the wavelengths only in the datamodel).

`source_id` is kept as int64. A row with no usable coefficients, a band without a solution or a
correlation vector of the wrong length is a ReadFailure naming file and row; the other rows
are still read.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
from astropy.io import fits

from ..errors import InputError, first_line
from ..science.members import RVS_NPIX, RVS_START_ANGSTROM, RVS_STEP_ANGSTROM, XP_N_COEFFICIENTS
from ..spectrum import ReadFailure, Spectrum
from . import _text, _votable
from ._checks import BadValues, ivar_from_error
from ._fits import column_names, release_pages
from .paths import TABLE_SUFFIXES

NAME = "gaia"
KINDS = ("gaia-xp", "gaia-rvs")
__all__ = ["NAME", "KINDS", "identify", "read", "iter_read", "TEXT_SUFFIXES", "kind_of_columns",
           "text_header_kind", "text_column_names", "xp_covariance"]

#: archive downloads this reader opens without FITS (astropy reads the gzipped ones itself)
TEXT_SUFFIXES = TABLE_SUFFIXES
_XP_COLUMNS = ("bp_coefficients", "rp_coefficients")
_RVS_COLUMNS = ("flux", "flux_error")
#: the columns a row's record is made from (lower case); the others are never decoded
_WANTED = frozenset({"source_id", "flux", "flux_error"} | {
    f"{band}_{what}" for band in ("bp", "rp")
    for what in ("coefficients", "coefficient_errors", "coefficient_correlations")})
#: FITS table rows decoded at a time (variable-length array columns are decoded per slice)
CHUNK_ROWS = 256


def kind_of_columns(names: Any) -> str | None:
    """'gaia-xp' / 'gaia-rvs' for the archive's column sets (with source_id), else None."""
    lower = {str(n).lower() for n in names}
    if "source_id" not in lower:
        return None
    if set(_XP_COLUMNS) <= lower:
        return "gaia-xp"
    if set(_RVS_COLUMNS) <= lower and not lower & {"wavelength", "wave", "loglam", "lambda"}:
        return "gaia-rvs"
    return None


def text_column_names(path: str) -> tuple[str, ...]:
    """The column names of a CSV/ECSV file or the FIELD names of a VOTable, from its header
    only (bounded: _text.MAX_HEADER_BYTES); InputError naming the file when unreadable."""
    if _text.is_votable(path):
        return tuple(f.name for f in _votable.read_fields(path))
    return _text.read_header(path).names


def text_header_kind(path: str) -> str | None:
    """Kind of a CSV/ECSV/VOTable from its column names (the header only, however long, up to
    _text.MAX_HEADER_BYTES), None if not Gaia or unreadable; never raises."""
    try:
        return kind_of_columns(text_column_names(path))
    except Exception:  # noqa: BLE001 - unsure: the reader says what is wrong
        return None


def _table_hdu(hdul: fits.HDUList) -> int | None:
    for index, hdu in enumerate(hdul[1:], start=1):
        # the TTYPE cards rule out the usual non-Gaia table cheaply; astropy's own reading of
        # the columns decides (a damaged definition is then no Gaia table, as before)
        if isinstance(hdu, fits.BinTableHDU) and kind_of_columns(column_names(hdu)) \
                and kind_of_columns(hdu.columns.names):
            return index
    return None


def identify(path: str, hdul: fits.HDUList | None) -> bool:
    """An archive table (text by suffix and header, or a FITS table) with Gaia columns."""
    try:
        if hdul is None:
            return path.lower().endswith(TEXT_SUFFIXES) and text_header_kind(path) is not None
        return _table_hdu(hdul) is not None
    except Exception:  # noqa: BLE001 - identify never raises
        return False


def _array(value: Any, column: str) -> np.ndarray | None:
    """One array cell as float64 (NaN where masked), None for an empty/absent cell; BadValues
    naming the column for text that is not a list of numbers."""
    if value is None or value is np.ma.masked:
        return None
    if isinstance(value, (bytes, str)):
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        text = text.strip().strip("()[]{}").strip()
        if not text:
            return None
        values = []
        for item in text.split(","):
            item = item.strip()
            if item in ("", "null", "--"):
                values.append(np.nan)
                continue
            try:
                values.append(float(item))
            except ValueError:
                raise BadValues(f"{column}: {item[:40]!r} is not a number") from None
        return np.array(values, dtype=np.float64)
    try:
        array = np.ma.filled(np.ma.asarray(value, dtype=np.float64), np.nan).ravel()
    except (TypeError, ValueError):
        raise BadValues(f"{column}: {str(value)[:40]!r} is not an array of numbers") from None
    return array if array.size else None


def _source_id(value: Any) -> int | None:
    """The source_id cell as an int (None when empty or masked); BadValues for anything else:
    a row without a usable identity would be mixed up with the others."""
    if value is None or value is np.ma.masked:
        return None
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if not re.fullmatch(r"[+-]?[0-9]{1,20}", text):
            raise BadValues(f"source_id {text[:40]!r} is not an integer")
        return int(text)
    number = np.asarray(value)
    if number.size != 1 or number.dtype.kind not in "iu":
        raise BadValues(f"source_id {str(value)[:40]!r} is not an integer")
    return int(number.item())


def _table_fits(path: str, hdul: fits.HDUList
                ) -> tuple[list[str], int, Iterator[tuple[int, dict[str, Any] | str]]]:
    index = _table_hdu(hdul)
    if index is None:
        raise InputError(f"{path}: no table with Gaia XP or RVS columns")
    hdu = hdul[index]
    names = list(hdu.columns.names)

    def cells() -> Iterator[tuple[int, dict[str, Any] | str]]:
        total = len(hdu.data) if hdu.data is not None else 0
        for start in range(0, total, CHUNK_ROWS):  # one chunk's columns decoded at a time
            release_pages(hdul)
            chunk = hdu.data[start:start + CHUNK_ROWS]
            try:
                columns = {name: chunk[name] for name in names if name.lower() in _WANTED}
            except (ValueError, TypeError, IndexError, KeyError, OSError) as exc:
                for row in range(start, min(start + CHUNK_ROWS, total)):
                    yield row, f"cannot decode the row ({first_line(exc, 120)})"
                continue
            for k in range(len(chunk)):
                yield start + k, {name.lower(): column[k] for name, column in columns.items()}
    return names, index, cells()


def _table_votable(path: str) -> tuple[list[str], int, Iterator[tuple[int, dict[str, Any] | str]]]:
    names, found = _votable.rows(path)

    def cells() -> Iterator[tuple[int, dict[str, Any] | str]]:
        for row, values in found:
            yield row, values if isinstance(values, str) else \
                {name.lower(): value for name, value in values.items() if name.lower() in _WANTED}
    return names, 0, cells()


def _table_text(path: str) -> tuple[list[str], int, Iterator[tuple[int, dict[str, Any] | str]]]:
    header = _text.read_header(path)

    def cells() -> Iterator[tuple[int, dict[str, Any] | str]]:
        for row, _line, found in _text.rows(path, header):
            yield row, found if isinstance(found, str) else \
                {name.lower(): value for name, value in found.items() if name.lower() in _WANTED}
    return list(header.names), 0, cells()


def _place(path: str, hdu: int, row: int, text_file: bool) -> str:
    return f"{path}[row {row}]" if text_file else f"{path}[HDU {hdu}, row {row}]"


def xp_covariance(errors: np.ndarray, correlations: np.ndarray) -> np.ndarray:
    """One band's covariance from the archive's errors and packed correlations.

    The archive packs the strict upper triangle column by column, which is the strict lower
    triangle row by row (`np.tril_indices(n, -1)`), the order the reference unpacks.
    """
    errors = np.asarray(errors, dtype=np.float64)
    n = errors.size
    rows, cols = np.tril_indices(n, -1)
    correlations = np.asarray(correlations, dtype=np.float64)
    if correlations.size != rows.size:
        raise ValueError(f"{correlations.size} correlations for {n} coefficients; expected "
                         f"{rows.size} (n(n-1)/2)")
    cov = np.diag(errors ** 2)
    cov[rows, cols] = correlations * errors[rows] * errors[cols]
    cov[cols, rows] = cov[rows, cols]
    return cov


def _xp_row(cells: dict[str, Any], row: int, path: str, hdu: int, place: str,
            ids: dict) -> Spectrum | ReadFailure:
    coeffs, errors, covs = [], [], []
    for band in ("bp", "rp"):
        c = _array(cells.get(f"{band}_coefficients"), f"{band}_coefficients")
        e = _array(cells.get(f"{band}_coefficient_errors"), f"{band}_coefficient_errors")
        r = _array(cells.get(f"{band}_coefficient_correlations"),
                   f"{band}_coefficient_correlations")
        if c is None or not np.isfinite(c).any():
            return ReadFailure(path, f"{place}: no {band.upper()} solution ({band}_coefficients "
                                     f"empty or all NaN); Gaia XP Net needs both BP and RP",
                               NAME, hdu, row, ids)
        if c.size != XP_N_COEFFICIENTS:
            return ReadFailure(path, f"{place}: {c.size} {band}_coefficients; expected "
                                     f"{XP_N_COEFFICIENTS}", NAME, hdu, row, ids)
        if e is None or e.size != c.size:
            e = np.full(c.size, np.nan)
        cov = None
        if r is not None:
            try:
                cov = xp_covariance(e, r)
            except ValueError as exc:
                return ReadFailure(path, f"{place}: {band}_coefficient_correlations: {exc}",
                                   NAME, hdu, row, ids)
        coeffs.append(c)
        errors.append(e)
        covs.append(cov)
    flux = np.concatenate(coeffs).astype(np.float32)
    index = np.arange(flux.size, dtype=np.float64)
    return Spectrum(index, flux, np.zeros(flux.size, np.float32), source=path, format=NAME,
                    hdu=hdu, row=row, identifiers=ids, kind="gaia-xp",
                    sigma=np.concatenate(errors).astype(np.float32),
                    covariance=(covs[0], covs[1]))


def _rvs_row(cells: dict[str, Any], row: int, path: str, hdu: int, place: str,
             ids: dict) -> Spectrum | ReadFailure:
    flux = _array(cells.get("flux"), "flux")
    error = _array(cells.get("flux_error"), "flux_error")
    if flux is None or not np.isfinite(flux).any():
        return ReadFailure(path, f"{place}: flux empty or all NaN; nothing to predict from",
                           NAME, hdu, row, ids)
    if flux.size != RVS_NPIX:
        return ReadFailure(path, f"{place}: flux has {flux.size} pixels; a Gaia DR3 RVS mean "
                                 f"spectrum has {RVS_NPIX}", NAME, hdu, row, ids)
    if error is None or error.size != flux.size:
        error = np.full(flux.size, np.nan)
    wave = RVS_START_ANGSTROM + RVS_STEP_ANGSTROM * np.arange(flux.size)
    ivar = ivar_from_error(error)
    return Spectrum(wave, flux.astype(np.float32), ivar.astype(np.float32), source=path,
                    format=NAME, hdu=hdu, row=row, identifiers=ids, kind="gaia-rvs",
                    sigma=error.astype(np.float32))


def read(path: str, hdul: fits.HDUList | None = None,
         kind: str | None = None) -> list[Spectrum | ReadFailure]:
    """Every source (row) of the table; `kind` is ignored (the columns say what it is)."""
    return list(iter_read(path, hdul, kind))


def iter_read(path: str, hdul: fits.HDUList | None = None,
              kind: str | None = None) -> Iterator[Spectrum | ReadFailure]:
    """The records of `read`, one row at a time: the table is never held whole (text tables
    are streamed line by line, FITS tables decoded CHUNK_ROWS rows at a time). A row that
    cannot be used (a bad cell, a cut or altered line) is that row's ReadFailure; a table
    with no data rows is one InputError naming the file."""
    path = os.fspath(path)
    if hdul is not None:
        names, hdu, cells = _table_fits(path, hdul)
    elif _text.is_votable(path):
        names, hdu, cells = _table_votable(path)
    else:
        names, hdu, cells = _table_text(path)
    found = kind_of_columns(names)
    if found is None:
        shown = ", ".join(names[:40]) + (f", ... ({len(names)} columns)" if len(names) > 40 else "")
        raise InputError(f"{path}: needs source_id with bp_coefficients/rp_coefficients (XP) "
                         f"or flux/flux_error (RVS); found {shown or 'no columns'}")
    make = _xp_row if found == "gaia-xp" else _rvs_row
    text_file = hdul is None
    count = 0
    for row, values in cells:
        count += 1
        place = _place(path, hdu, row, text_file)
        if isinstance(values, str):
            yield ReadFailure(path, f"{place}: {values}", NAME, hdu, row)
            continue
        ids: dict[str, Any] = {}
        try:
            source_id = _source_id(values.get("source_id"))
            if source_id is not None:
                ids["source_id"] = source_id
            yield make(values, row, path, hdu, place, ids)
        except (BadValues, ValueError, TypeError, OverflowError) as exc:
            yield ReadFailure(path, f"{place}: {first_line(exc, 200)}", NAME, hdu, row, ids)
    if count == 0:
        raise InputError(f"{path}: Gaia archive table with no data rows (a cut file?); expected "
                         f"one row per source")
