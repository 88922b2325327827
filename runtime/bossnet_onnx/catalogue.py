"""The output catalogue: DR19 column names, one row per spectrum, written atomically.

Floats are float32 with NaN where unknown, integers int64 with -1 where unknown (also for an
identifier that is not a whole number within int64, e.g. FIBERID = 1e300), flags int64.
A failed spectrum is a row too: result_flags bit 0 and the `error` text.

Text is made safe once, here: every text value has its control characters escaped
(`textsafe.printable`); FITS files store ASCII only, so non-ASCII characters are written as
Python escapes (`é` -> `\xe9`); CSV, ECSV and parquet store UTF-8. CSV files carry the run's
provenance as commented header lines (`# MODELSHA = "..."`, values in JSON) which
`read_catalogue` turns back into `meta`, so CSV shards and progress files get the same checks
as FITS.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from .atomic import publish, write_atomically
from .errors import OutputError
from .flags import BAD_MASK, WARN_MASK
from .textsafe import ascii_text, printable

__all__ = [
    "Result",
    "IDENTIFIER_COLUMNS",
    "LABEL_COLUMNS",
    "build_table",
    "write_catalogue",
    "read_catalogue",
    "SUFFIX_FORMATS",
    "MISSING_INT",
    "format_for",
    "stored_text",
    "row_identities",
    "publish",
]

#: The documented missing value of integer columns.
MISSING_INT = -1
_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)

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
            number = int(value)
        except (TypeError, ValueError, OverflowError):  # text, NaN, inf
            continue
        if _INT64_MIN <= number <= _INT64_MAX:
            return number
    return "" if kind == "str" else MISSING_INT


def _texts(values: Iterable[Any]) -> np.ndarray:
    texts = [v if isinstance(v, str) else str(v) for v in values]
    joined = "".join(texts)
    if joined.isascii() and joined.isprintable():  # the common case, checked in one C call
        return np.array(texts, dtype=str)
    return np.array([printable(v) for v in texts], dtype=str)


def build_table(results: Iterable[Result], meta: Mapping[str, Any] | None = None) -> Table:
    """Column-typed astropy Table from results (stable column order, DR19 names)."""
    results = list(results)
    cols: dict[str, Any] = {
        "source": _texts(r.source for r in results),
        "format": _texts(r.format for r in results),
        "hdu": np.array([r.hdu for r in results], dtype=np.int64),
        "row": np.array([r.row for r in results], dtype=np.int64),
    }
    for name, kind, keys in IDENTIFIER_COLUMNS:
        values = [_identifier(r.identifiers, keys, kind) for r in results]
        cols[name] = _texts(values) if kind == "str" else np.array(values, dtype=np.int64)
    for name in LABEL_COLUMNS:
        cols[name] = np.array([r.labels.get(name, np.nan) for r in results], dtype=np.float32)
    flags = np.array([r.result_flags for r in results], dtype=np.int64)
    cols["result_flags"] = flags
    cols["flag_warn"] = (flags & WARN_MASK) != 0
    cols["flag_bad"] = (flags & BAD_MASK) != 0
    cols["n_draws"] = np.array([r.n_draws for r in results], dtype=np.int64)
    cols["error"] = _texts(r.error for r in results)
    table = Table(cols, meta={k: printable(v) if isinstance(v, str) else v
                              for k, v in (meta or {}).items()})
    # Empty string columns default to <U1 / <U0 which FITS cannot hold: give them width >= 1.
    for name in table.colnames:
        if table[name].dtype.kind == "U" and table[name].dtype.itemsize == 0:
            table[name] = table[name].astype("U1")
    # Only FITS-standard units; logg, fe_h and log_teff are dex (documented in the README).
    for name, unit in (("teff", "K"), ("e_teff", "K"), ("v_rad", "km / s"), ("e_v_rad", "km / s")):
        table[name].unit = unit
    return table


def format_for(path: str | os.PathLike) -> str:
    """The astropy format name of a catalogue path, from its suffix (OutputError if unknown)."""
    name = Path(path).name.lower()
    for suffix in sorted(SUFFIX_FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return SUFFIX_FORMATS[suffix]
    raise OutputError(
        f"{printable(path)}: unknown output type; use one of {', '.join(sorted(SUFFIX_FORMATS))}"
    )


_format_for = format_for  # old private name, kept for callers not yet moved


def stored_text(text: object, path: str | os.PathLike) -> str:
    """`text` exactly as a catalogue at `path` stores it (so a resumed run can match it)."""
    return ascii_text(text) if format_for(path) == "fits" else printable(text)


def _fits_header_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """FITS keywords: <= 8 characters, upper case, scalar values, ASCII text."""
    out = {}
    for key, value in meta.items():
        if isinstance(value, str):
            value = ascii_text(value)
        if isinstance(value, (str, int, float, bool, np.integer, np.floating)):
            out[ascii_text(key).upper()[:8]] = value
    return out


def _ascii_columns(table: Table) -> Table:
    """A copy of `table` whose text columns are ASCII (FITS), escaped as documented."""
    out = table.copy(copy_data=False)
    for name in out.colnames:
        col = out[name]
        if col.dtype.kind != "U":
            continue
        try:
            np.asarray(col).astype("S")  # fails on the first non-ASCII character, in C
        except UnicodeEncodeError:
            out[name] = np.array([ascii_text(v) for v in col], dtype=str)
    return out


_PROVENANCE_LINE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.*)$")


def _csv_text(table: Table) -> str:
    """CSV with the provenance as `# KEY = json` lines before the column names."""
    buffer = io.StringIO()
    plain = table.copy(copy_data=False)
    plain.meta = {}
    plain.write(buffer, format="ascii.csv")
    lines = ["# bossnet-onnx catalogue; provenance below as KEY = JSON value"]
    for key, value in table.meta.items():
        value = value.item() if hasattr(value, "item") else value
        try:
            text = json.dumps(value, ensure_ascii=False)
        except TypeError:
            text = json.dumps(str(value), ensure_ascii=False)
        lines.append(f"# {printable(key)} = {printable(text)}")
    return "\n".join(lines) + "\n" + buffer.getvalue()


def _read_csv(path: Path) -> Table:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        text = handle.read()
    meta: dict[str, Any] = {}
    body = []
    for line in text.splitlines(keepends=True):
        if line.startswith("#"):
            match = _PROVENANCE_LINE.match(line.rstrip("\r\n"))
            if match:
                try:
                    meta[match.group(1)] = json.loads(match.group(2))
                except ValueError:
                    meta[match.group(1)] = match.group(2)
            continue
        body.append(line)
    table = Table.read("".join(body), format="ascii.csv")
    table.meta = meta
    return table


def _serialize(table: Table, fmt: str, path: Path) -> bytes:
    """The file's bytes (gzip for `.fits.gz`), built in memory so that a failing disk is met
    by one plain write whose OSError says what happened (astropy's FITS writer hides it)."""
    buffer = io.BytesIO()
    if fmt == "fits":
        out = _ascii_columns(table)
        out.meta = _fits_header_meta(table.meta)
        out.write(buffer, format="fits")
        if path.name.lower().endswith(".gz"):
            return gzip.compress(buffer.getvalue(), mtime=0)
    elif fmt == "parquet":
        _write_parquet(table, buffer)
    elif fmt == "ascii.csv":
        return _csv_text(table).encode("utf-8")
    else:
        text = io.StringIO()
        table.write(text, format=fmt)
        return text.getvalue().encode("utf-8")
    return buffer.getvalue()


def require_writer(path: str | os.PathLike) -> None:
    """OutputError now, before any work, if the package that writes `path`'s type is missing."""
    if format_for(path) == "parquet":
        try:
            import pyarrow
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise OutputError(f"{printable(path)}: writing parquet needs pyarrow: pip install "
                              f"'bossnet-onnx[parquet]'") from None


def write_catalogue(table: Table, path: str | os.PathLike) -> Path:
    """Write `table` to `path` (type from the suffix) atomically: temp file, then rename.

    A reader never sees a half-written catalogue and an interrupted run leaves none behind.
    Any failure (full disk, permissions, a value the format cannot hold) is an OutputError
    naming the file, and the temporary file is removed.
    """
    path = Path(path)
    fmt = format_for(path)
    require_writer(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise OutputError(f"{printable(path)}: output directory {printable(directory)} "
                          f"does not exist")
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())

    try:
        payload = _serialize(table, fmt, path)
        write_atomically(path, write)
    except Exception as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise OutputError(f"cannot write {printable(path)}: {printable(reason)}") from exc
    return path


def _write_parquet(table: Table, handle) -> None:
    """pyarrow directly (astropy's parquet reader needs pandas); header in schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {name: pa.array(np.asarray(table[name])) for name in table.colnames}
    meta = {b"bossnet": json.dumps({k: (v.item() if hasattr(v, "item") else v)
                                    for k, v in table.meta.items()}).encode()}
    pq.write_table(pa.table(arrays).replace_schema_metadata(meta), handle)


def _read_parquet(path: Path) -> Table:
    import pyarrow.parquet as pq

    arrow = pq.read_table(path)
    table = Table({name: arrow.column(name).to_numpy(zero_copy_only=False)
                   for name in arrow.column_names})
    raw = (arrow.schema.metadata or {}).get(b"bossnet")
    table.meta = json.loads(raw) if raw else {}
    return table


def _canonical(table: Table) -> Table:
    """Our own columns back in the dtypes build_table gives them (CSV guesses: an all-empty
    `error` column reads as masked int), masked cells as the documented missing values."""
    reference = build_table([])
    for name in table.colnames:
        if name not in reference.colnames:
            continue
        col = table[name]
        kind = reference[name].dtype.kind
        try:
            if kind == "U":
                values = [("" if v is np.ma.masked else
                           (v.decode("utf-8", "backslashreplace") if isinstance(v, bytes)
                            else str(v))) for v in col]
                table[name] = np.array(values, dtype=str) if values else col.astype(str)
                if table[name].dtype.itemsize == 0:
                    table[name] = table[name].astype("U1")
            elif kind == "b" and col.dtype.kind in "USO":  # CSV: "True"/"False" text
                text = np.ma.filled(np.ma.asarray(col).astype(str), "false")
                table[name] = np.char.lower(np.char.strip(text)) == "true"
            elif np.ma.isMaskedArray(col) or getattr(col, "mask", None) is not None:
                fill = {"f": np.nan, "i": MISSING_INT, "b": False}[kind]
                table[name] = np.ma.filled(np.ma.asarray(col).astype(reference[name].dtype),
                                           fill)
            elif col.dtype != reference[name].dtype:
                table[name] = np.asarray(col).astype(reference[name].dtype)
        except (TypeError, ValueError) as exc:
            raise OutputError(f"column {name!r} holds values that are not "
                              f"{reference[name].dtype} ({exc})") from None
        if reference[name].unit is not None:
            table[name].unit = reference[name].unit
    return table


def read_catalogue(path: str | os.PathLike) -> Table:
    """Read a catalogue written by write_catalogue (any supported type)."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a catalogue" if path.is_dir() else "catalogue not found"
        raise OutputError(f"{printable(path)}: {what}")
    fmt = format_for(path)
    try:
        if fmt == "parquet":
            table = _read_parquet(path)
        elif fmt == "ascii.csv":
            table = _read_csv(path)
        elif fmt == "ascii.ecsv":
            table = Table.read(path, format=fmt, encoding="utf-8")
        else:
            table = Table.read(path, format=fmt)
        table = _canonical(table)
    except Exception as exc:  # noqa: BLE001 - astropy/pyarrow raise many types on bad files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OutputError(f"{printable(path)}: cannot read catalogue "
                          f"({printable(reason)})") from None
    return table


#: Identifier columns that, with the file name, HDU and row, say which spectrum a row is.
_IDENTITY_COLUMNS = tuple(name for name, _, _ in IDENTIFIER_COLUMNS if name != "survey_class")


def row_identities(table: Table) -> list[str]:
    """One key per row saying which spectrum it is, for duplicate checks.

    File name, HDU and row, plus the survey identifiers (sdss_id, catalogid, telescope, plate,
    field, mjd, fiberid, obsid) when the row has any: the same spectrum reached through another
    directory is still a duplicate, while two different stars in same-named files are not.
    A row with no identifier at all falls back to its full source path.
    """
    keys = []
    for r in table:
        ids = [str(r[c]) for c in _IDENTITY_COLUMNS if c in table.colnames]
        known = any(v not in ("", str(MISSING_INT)) for v in ids)
        source = str(r["source"])
        name = os.path.basename(source) if known else source
        keys.append("|".join([name, str(r["hdu"]), str(r["row"]), *(ids if known else [])]))
    return keys
