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

import gzip
import os
import re
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..errors import InputError, first_line
from ..science.members import RVS_NPIX, RVS_START_ANGSTROM, RVS_STEP_ANGSTROM, XP_N_COEFFICIENTS
from ..spectrum import ReadFailure, Spectrum
from ._checks import ivar_from_error
from .paths import TABLE_SUFFIXES

NAME = "gaia"
KINDS = ("gaia-xp", "gaia-rvs")
__all__ = ["NAME", "KINDS", "identify", "read", "TEXT_SUFFIXES", "kind_of_columns",
           "text_header_kind", "xp_covariance"]

#: archive downloads this reader opens without FITS (astropy reads the gzipped ones itself)
TEXT_SUFFIXES = TABLE_SUFFIXES
_XP_COLUMNS = ("bp_coefficients", "rp_coefficients")
_RVS_COLUMNS = ("flux", "flux_error")


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


def _head_text(path: str, size: int = 65536) -> str:
    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        return fh.read(size).decode("utf-8", errors="replace")


def text_header_kind(path: str) -> str | None:
    """Kind of a CSV/ECSV/VOTable from its first bytes (column names), None if not Gaia."""
    try:
        head = _head_text(path)
    except (OSError, EOFError):
        return None
    if path.lower().endswith((".xml", ".vot", ".xml.gz", ".vot.gz")):
        names = re.findall(r'<FIELD\b[^>]*?\bname="([^"]+)"', head)
    else:
        lines = [ln for ln in head.splitlines() if ln.strip() and not ln.startswith("#")]
        names = [n.strip().strip('"') for n in lines[0].split(",")] if lines else []
        if path.lower().endswith((".ecsv", ".ecsv.gz")) and len(names) == 1:
            names = lines[0].split()
    return kind_of_columns(names)


def _table_hdu(hdul: fits.HDUList) -> int | None:
    for index, hdu in enumerate(hdul[1:], start=1):
        if isinstance(hdu, fits.BinTableHDU) and kind_of_columns(hdu.columns.names):
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


def _array(value: Any) -> np.ndarray | None:
    """One array cell as float64 (NaN where masked), None for an empty/absent cell."""
    if value is None or value is np.ma.masked:
        return None
    if isinstance(value, (bytes, str)):
        text = value.decode() if isinstance(value, bytes) else value
        text = text.strip().strip("()[]{}").strip()
        if not text:
            return None
        return np.array([float(v) if v.strip() not in ("", "null", "--") else np.nan
                         for v in text.split(",")], dtype=np.float64)
    array = np.ma.filled(np.ma.asarray(value, dtype=np.float64), np.nan).ravel()
    return array if array.size else None


def _load(path: str, hdul: fits.HDUList | None) -> tuple[Table, int]:
    if hdul is not None:
        index = _table_hdu(hdul)
        if index is None:
            raise InputError(f"{path}: no table with Gaia XP or RVS columns")
        return Table(hdul[index].data), index
    lower = path.lower()
    fmt = ("votable" if lower.endswith((".xml", ".vot", ".xml.gz", ".vot.gz"))
           else "ascii.ecsv" if lower.endswith((".ecsv", ".ecsv.gz")) else "ascii.csv")
    try:
        return Table.read(path, format=fmt), 0
    except Exception as exc:  # noqa: BLE001 - astropy's parsers raise many types
        raise InputError(f"{path}: cannot parse as a Gaia archive {fmt.split('.')[-1].upper()} "
                         f"table ({first_line(exc, 160)})") from None


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


def _xp_row(table: Table, row: int, path: str, hdu: int, place: str,
            ids: dict) -> Spectrum | ReadFailure:
    coeffs, errors, covs = [], [], []
    for band in ("bp", "rp"):
        c = _array(table[f"{band}_coefficients"][row])
        e = _array(table[f"{band}_coefficient_errors"][row]) \
            if f"{band}_coefficient_errors" in table.colnames else None
        r = _array(table[f"{band}_coefficient_correlations"][row]) \
            if f"{band}_coefficient_correlations" in table.colnames else None
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


def _rvs_row(table: Table, row: int, path: str, hdu: int, place: str,
             ids: dict) -> Spectrum | ReadFailure:
    flux = _array(table["flux"][row])
    error = _array(table["flux_error"][row])
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
    path = os.fspath(path)
    table, hdu = _load(path, hdul)
    found = kind_of_columns(table.colnames)
    if found is None:
        raise InputError(f"{path}: needs source_id with bp_coefficients/rp_coefficients (XP) "
                         f"or flux/flux_error (RVS); found {', '.join(table.colnames)}")
    make = _xp_row if found == "gaia-xp" else _rvs_row
    text_file = hdul is None
    out: list[Spectrum | ReadFailure] = []
    for row in range(len(table)):
        ids: dict[str, Any] = {}
        value = table["source_id"][row] if "source_id" in table.colnames else None
        if value is not None and value is not np.ma.masked:
            ids["source_id"] = int(value)
        out.append(make(table, row, path, hdu, _place(path, hdu, row, text_file), ids))
    return out
