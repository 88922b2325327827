"""The output catalogue: DR19 column names, one row per spectrum, written atomically.

Floats are float32 with NaN where unknown, integers int64 with -1 where unknown, flags int64.
A failed spectrum is a row too: result_flags bit 0 and the `error` text.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from .errors import OutputError
from .flags import BAD_MASK, WARN_MASK

__all__ = [
    "Result",
    "IDENTIFIER_COLUMNS",
    "LABEL_COLUMNS",
    "build_table",
    "write_catalogue",
    "read_catalogue",
    "SUFFIX_FORMATS",
]

#: (column, dtype, identifier keys that feed it, in order of preference)
IDENTIFIER_COLUMNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("sdss_id", "int64", ("sdss_id",)),
    ("catalogid", "int64", ("catalogid",)),
    ("telescope", "str", ("telescope",)),
    ("plate", "int64", ("plate",)),
    ("field", "int64", ("field", "fieldid")),
    ("mjd", "int64", ("mjd",)),
    ("fiberid", "int64", ("fiberid", "fiber")),
    ("obsid", "int64", ("obsid",)),
    ("survey_class", "str", ("class", "survey_class")),
)

LABEL_COLUMNS = ("teff", "e_teff", "logg", "e_logg", "fe_h", "e_fe_h", "v_rad", "e_v_rad",
                 "log_teff", "e_log_teff")

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
            return int(value)
        except (TypeError, ValueError):
            continue
    return "" if kind == "str" else -1


def build_table(results: Iterable[Result], meta: Mapping[str, Any] | None = None) -> Table:
    """Column-typed astropy Table from results (stable column order, DR19 names)."""
    results = list(results)
    cols: dict[str, Any] = {
        "source": np.array([r.source for r in results], dtype=str),
        "format": np.array([r.format for r in results], dtype=str),
        "hdu": np.array([r.hdu for r in results], dtype=np.int64),
        "row": np.array([r.row for r in results], dtype=np.int64),
    }
    for name, kind, keys in IDENTIFIER_COLUMNS:
        values = [_identifier(r.identifiers, keys, kind) for r in results]
        cols[name] = np.array(values, dtype=str if kind == "str" else np.int64)
    for name in LABEL_COLUMNS:
        cols[name] = np.array([r.labels.get(name, np.nan) for r in results], dtype=np.float32)
    flags = np.array([r.result_flags for r in results], dtype=np.int64)
    cols["result_flags"] = flags
    cols["flag_warn"] = (flags & WARN_MASK) != 0
    cols["flag_bad"] = (flags & BAD_MASK) != 0
    cols["n_draws"] = np.array([r.n_draws for r in results], dtype=np.int64)
    cols["error"] = np.array([r.error for r in results], dtype=str)
    table = Table(cols, meta=dict(meta or {}))
    # Empty string columns default to <U1 / <U0 which FITS cannot hold: give them width >= 1.
    for name in table.colnames:
        if table[name].dtype.kind == "U" and table[name].dtype.itemsize == 0:
            table[name] = table[name].astype("U1")
    # Only FITS-standard units; logg, fe_h and log_teff are dex (documented in the README).
    for name, unit in (("teff", "K"), ("e_teff", "K"), ("v_rad", "km / s"), ("e_v_rad", "km / s")):
        table[name].unit = unit
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


def _write_parquet(table: Table, path: str) -> None:
    """pyarrow directly (astropy's parquet reader needs pandas); header in schema metadata."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {name: pa.array(np.asarray(table[name])) for name in table.colnames}
    meta = {b"bossnet": json.dumps({k: (v.item() if hasattr(v, "item") else v)
                                    for k, v in table.meta.items()}).encode()}
    pq.write_table(pa.table(arrays).replace_schema_metadata(meta), path)


def _read_parquet(path: Path) -> Table:
    import json

    import pyarrow.parquet as pq

    arrow = pq.read_table(path)
    table = Table({name: arrow.column(name).to_numpy(zero_copy_only=False)
                   for name in arrow.column_names})
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
        table = _read_parquet(path) if fmt == "parquet" else Table.read(path, format=fmt)
    except Exception as exc:  # noqa: BLE001
        raise OutputError(f"{path}: cannot read catalogue ({exc})") from None
    for name in ("source", "format", "error", "telescope", "survey_class"):
        if name in table.colnames and table[name].dtype.kind in "SO":
            table[name] = table[name].astype(str)
    return table
