"""The output catalogue: one row per spectrum, written atomically.

The columns (names, types, units, DR19/DR20 counterparts) are defined once, in `columns`.
Floats are NaN where unknown, integers -1 where unknown, text empty. A failed spectrum is a row
too: result_flags bit 0 and the `error` text. `Result.source` is the input file path (written
as the `path` column: DR19's `source` is a source key, not a file).
"""
from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from astropy.units import UnitsWarning

from .columns import BOSS_LABEL_COLUMNS, IDENTIFIER_COLUMNS, MISSING, Column, columns_for
from .errors import OutputError
from .flags import BAD_MASK, WARN_MASK

#: names of BOSS Net's label columns (the keys of Result.labels)
LABEL_COLUMNS = tuple(c.name for c in BOSS_LABEL_COLUMNS)

__all__ = [
    "Result",
    "IDENTIFIER_COLUMNS",
    "LABEL_COLUMNS",
    "column_units",
    "build_table",
    "write_catalogue",
    "read_catalogue",
    "SUFFIX_FORMATS",
]

SUFFIX_FORMATS = {
    ".fits": "fits", ".fit": "fits", ".fits.gz": "fits",
    ".csv": "ascii.csv", ".ecsv": "ascii.ecsv", ".parquet": "parquet",
}


@dataclass
class Result:
    """One catalogue row before it becomes a table row."""

    source: str
    format: str = "unknown"
    hdu: int = -1
    row: int = -1
    identifiers: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, float] = field(default_factory=dict)
    result_flags: int = 0
    n_draws: int = 0
    error: str = ""
    quality_flags: int = 0
    #: computed per spectrum, not read: snr_model, frame
    derived: Mapping[str, Any] = field(default_factory=dict)


def _identifier(ids: Mapping[str, Any], keys: tuple[str, ...], kind: str) -> Any:
    for key in keys:
        value = ids.get(key)
        if value is None:
            continue
        if kind == "str":
            text = str(value).strip()
            if text:
                return text
            continue
        try:
            if kind == "int64":
                return int(value)
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            continue
        if np.isfinite(number):
            return number
    return MISSING[kind]


def _value(result: Result, column: Column) -> Any:
    if column.keys:
        return _identifier(result.identifiers, column.keys, column.dtype)
    name = column.name
    fixed = {"path": result.source, "format": result.format, "hdu": result.hdu,
             "row": result.row, "result_flags": result.result_flags,
             "quality_flags": result.quality_flags, "n_draws": result.n_draws,
             "error": result.error}
    if name in fixed:
        return fixed[name]
    if name in ("flag_warn", "flag_bad"):
        return bool(result.result_flags & (WARN_MASK if name == "flag_warn" else BAD_MASK))
    if name in result.derived:
        return result.derived[name]
    return result.labels.get(name, MISSING[column.dtype])


_NUMPY = {"str": str, "int64": np.int64, "float32": np.float32, "float64": np.float64,
          "bool": bool}


def column_units(label_columns: Iterable[Column] = BOSS_LABEL_COLUMNS) -> dict[str, str]:
    """Unit text of every physical column (for FITS TUNIT, ECSV and Parquet metadata)."""
    return {c.name: c.unit for c in columns_for(label_columns) if c.unit}


def build_table(results: Iterable[Result], meta: Mapping[str, Any] | None = None,
                label_columns: Iterable[Column] = BOSS_LABEL_COLUMNS) -> Table:
    """Column-typed astropy Table from results, columns as `columns` defines them."""
    results = list(results)
    cols: dict[str, Any] = {}
    for column in columns_for(label_columns):
        values = [_value(r, column) for r in results]
        with np.errstate(over="ignore"):  # a label beyond float32 is inf, as DR19's REAL
            cols[column.name] = np.array(values, dtype=_NUMPY[column.dtype])
    table = Table(cols, meta=dict(meta or {}))
    # Empty string columns default to <U1 / <U0 which FITS cannot hold: give them width >= 1.
    for name in table.colnames:
        if table[name].dtype.kind == "U" and table[name].dtype.itemsize == 0:
            table[name] = table[name].astype("U1")
    for column in columns_for(label_columns):
        table[column.name].description = column.meaning
        if column.unit:
            table[column.name].unit = column.unit
    return table


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename a finished temporary file into place with normal permissions.

    mkstemp creates files readable by their owner only; a catalogue or model is meant to be
    shared like any file the user writes, so apply the umask as open() would.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def _format_for(path: Path) -> str:
    name = path.name.lower()
    for suffix in sorted(SUFFIX_FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return SUFFIX_FORMATS[suffix]
    raise OutputError(
        f"{path}: unknown output type; use one of {', '.join(sorted(SUFFIX_FORMATS))}"
    )


def _fits_header_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """FITS keywords: <= 8 characters, upper case, scalar values."""
    out = {}
    for key, value in meta.items():
        if isinstance(value, (str, int, float, bool, np.integer, np.floating)):
            out[str(key).upper()[:8]] = value
    return out


def write_catalogue(table: Table, path: str | os.PathLike) -> Path:
    """Write `table` to `path` (type from the suffix) atomically: temp file, then rename.

    A reader never sees a half-written catalogue and an interrupted run leaves none behind.
    """
    path = Path(path)
    fmt = _format_for(path)
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise OutputError(f"{path}: writing parquet needs pyarrow: pip install "
                              f"'bossnet-onnx[parquet]'") from None
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise OutputError(f"{path}: output directory {directory} does not exist")
    out = table.copy(copy_data=False)
    if fmt == "fits":
        out.meta = _fits_header_meta(table.meta)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=directory)
    os.close(fd)
    try:
        if fmt == "parquet":
            _write_parquet(table, tmp)
        elif fmt == "fits":
            _write_fits(out, tmp)
        else:
            out.write(tmp, format=fmt, overwrite=True)
        publish(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _write_fits(table: Table, path: str) -> None:
    """FITS with a TUNIT for every physical column, `dex` included (astropy refuses to write
    units outside the FITS standard, so they are set as header cards here)."""
    import warnings

    from astropy.io import fits
    from astropy.units import UnitsWarning

    plain = table.copy(copy_data=False)
    for column in plain.itercols():
        column.unit = None
    hdu = fits.table_to_hdu(plain)
    for i, name in enumerate(plain.colnames, start=1):
        unit = table[name].unit
        if unit is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnitsWarning)
                text = unit.to_string("fits") if _fits_unit(unit) else unit.to_string()
            hdu.header[f"TUNIT{i}"] = text
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)


def _fits_unit(unit: Any) -> bool:
    try:
        unit.to_string("fits")
    except ValueError:  # astropy: "not supported by the FITS standard" (dex, dex(K))
        return False
    return True


def _write_parquet(table: Table, path: str) -> None:
    """pyarrow directly (astropy's parquet reader needs pandas); header in schema metadata."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    fields, arrays = [], []
    for name in table.colnames:
        array = pa.array(np.asarray(table[name]))
        unit = table[name].unit
        fields.append(pa.field(name, array.type,
                               metadata={b"unit": str(unit).encode()} if unit is not None
                               else None))
        arrays.append(array)
    meta = {b"bossnet": json.dumps({k: (v.item() if hasattr(v, "item") else v)
                                    for k, v in table.meta.items()}).encode()}
    pq.write_table(pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=meta)), path)


def _read_parquet(path: Path) -> Table:
    import json

    import pyarrow.parquet as pq

    arrow = pq.read_table(path)
    table = Table({name: arrow.column(name).to_numpy(zero_copy_only=False)
                   for name in arrow.column_names})
    for arrow_field in arrow.schema:
        unit = (arrow_field.metadata or {}).get(b"unit")
        if unit:
            table[arrow_field.name].unit = unit.decode()
    raw = (arrow.schema.metadata or {}).get(b"bossnet")
    table.meta = json.loads(raw) if raw else {}
    return table


def read_catalogue(path: str | os.PathLike) -> Table:
    """Read a catalogue written by write_catalogue (any supported type)."""
    path = Path(path)
    if not path.is_file():
        raise OutputError(f"{path}: catalogue not found")
    fmt = _format_for(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnitsWarning)  # TUNIT 'dex' is not FITS-standard
            table = _read_parquet(path) if fmt == "parquet" else Table.read(path, format=fmt)
    except Exception as exc:  # noqa: BLE001
        raise OutputError(f"{path}: cannot read catalogue ({exc})") from None
    for name in ("path", "format", "error", "telescope", "survey_class", "frame", "specobjid",
                 "designation"):
        if name in table.colnames and table[name].dtype.kind in "SO":
            table[name] = table[name].astype(str)
    return table
