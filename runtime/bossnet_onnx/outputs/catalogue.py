"""The output catalogue: one row per spectrum, written atomically.

The columns (names, types, units, DR19/DR20 counterparts) are defined once, in `columns`.
Floats are NaN where unknown, integers -1 where unknown, text empty. A failed spectrum is a row
too: result_flags bit 0 and the `error` text. `Result.source` is the input file path (written
as the `path` column: DR19's `source` is a source key, not a file). An integer identifier that
is not a whole number within int64 (FIBERID = 1e300, inf, NaN, text) is the missing value -1.

Text is made safe once, here: every text value has its control characters escaped
(`textsafe.printable`); FITS files store ASCII only, so non-ASCII characters are written as
Python escapes (`é` -> `\xe9`); CSV, ECSV and parquet store UTF-8. CSV files carry the run's
provenance as commented header lines (`# MODELSHA = "..."`, values in JSON) which
`read_catalogue` turns back into `meta`, so CSV shards and progress files get the same checks
as FITS. Files are built in memory and written atomically (`atomic`), `.fits.gz` really gzipped.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from astropy.units import UnitsWarning

from ..atomic import write_atomically
from ..errors import OutputError, first_line
from ..science.columns import BOSS_LABEL_COLUMNS, IDENTIFIER_COLUMNS, MISSING, Column, columns_for
from ..science.flags import BAD_MASK, WARN_MASK
from ..science.members import DEFAULT_MEMBER, member_named
from ..textsafe import ascii_text, printable

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
    "MISSING_INT",
    "format_for",
    "stored_text",
    "require_writer",
    "row_identities",
]

#: The documented missing value of integer columns.
MISSING_INT: int = -1  # columns.MISSING["int64"], typed for numpy (a test keeps them equal)
_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)

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
                whole = int(value)
                if _INT64_MIN <= whole <= _INT64_MAX:
                    return whole
                continue
            number = float(value)
        except (TypeError, ValueError, OverflowError):  # text, NaN, inf
            continue
        if np.isfinite(number):
            return number
    return MISSING[kind]


def _texts(values: Iterable[Any]) -> np.ndarray:
    texts = [v if isinstance(v, str) else str(v) for v in values]
    joined = "".join(texts)
    if joined.isascii() and joined.isprintable():  # the common case, checked in one C call
        return np.array(texts, dtype=str)
    return np.array([printable(v) for v in texts], dtype=str)


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
                label_columns: Iterable[Column] | None = None) -> Table:
    """Column-typed astropy Table from results, columns as `columns` defines them.

    `label_columns` default: the family member's (the MEMBER header key of `meta`, else BOSS
    Net): a parameter the member does not predict (APOGEE Net has no RV) is an absent column,
    not a column of zeros.
    """
    if label_columns is None:
        member = member_named((meta or {}).get("MEMBER") or DEFAULT_MEMBER, "catalogue")
        label_columns = member.label_columns
    label_columns = tuple(label_columns)
    results = list(results)
    cols: dict[str, Any] = {}
    for column in columns_for(label_columns):
        values = [_value(r, column) for r in results]
        if column.dtype == "str":
            cols[column.name] = _texts(values)
            continue
        with np.errstate(over="ignore"):  # a label beyond float32 is inf, as DR19's REAL
            cols[column.name] = np.array(values, dtype=_NUMPY[column.dtype])
    table = Table(cols, meta={k: printable(v) if isinstance(v, str) else v
                              for k, v in (meta or {}).items()})
    # Empty string columns default to <U1 / <U0 which FITS cannot hold: give them width >= 1.
    for name in table.colnames:
        if table[name].dtype.kind == "U" and table[name].dtype.itemsize == 0:
            table[name] = table[name].astype("U1")
    for column in columns_for(label_columns):
        table[column.name].description = column.meaning
        if column.unit:
            table[column.name].unit = column.unit
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
        _write_fits(out, buffer)
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


def _write_fits(table: Table, path: str | io.BytesIO) -> None:
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


def _write_parquet(table: Table, path: str | io.BytesIO) -> None:
    """pyarrow directly (astropy's parquet reader needs pandas); header in schema metadata."""
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
            if kind == "U" and col.dtype.kind == "U" and not np.ma.isMaskedArray(col):
                pass  # already text
            elif kind == "U":
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
    """Read a catalogue written by write_catalogue (any supported type); every problem is one
    OutputError naming the file."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a catalogue" if path.is_dir() else "catalogue not found"
        raise OutputError(f"{printable(path)}: {what}")
    fmt = format_for(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnitsWarning)  # TUNIT 'dex' is not FITS-standard
            if fmt == "parquet":
                table = _read_parquet(path)
            elif fmt == "ascii.csv":
                table = _read_csv(path)
            elif fmt == "ascii.ecsv":
                table = Table.read(path, format=fmt, encoding="utf-8")
            else:
                table = Table.read(path, format=fmt)
        for name in table.colnames:  # text columns of other members or readers: str too
            if table[name].dtype.kind == "S":
                table[name] = np.char.decode(np.asarray(table[name]), "utf-8", "backslashreplace")
        table = _canonical(table)
    except Exception as exc:  # noqa: BLE001 - astropy/pyarrow raise many types on bad files
        reason = first_line(exc)
        raise OutputError(f"{printable(path)}: cannot read catalogue "
                          f"({printable(reason)})") from None
    return table


#: Identifier columns that, with the file name, HDU and row, say which spectrum a row is.
_IDENTITY_COLUMNS = ("spectrum_pk_id", "drp_spectrum_pk_id", "sdss_id", "catalogid",
                     "specobjid", "obsid", "designation", "telescope", "fieldid", "plateid",
                     "fiberid", "mjd", "min_mjd", "max_mjd")


def row_identities(table: Table) -> list[str]:
    """One key per row saying which spectrum it is, for duplicate checks.

    File name, HDU and row, plus the survey identifiers (spectrum_pk_id, sdss_id, catalogid,
    specobjid, obsid, telescope, fieldid, plateid, fiberid, mjd, ...) when the row has any: the
    same spectrum reached through another directory is still a duplicate, while two different
    stars in same-named files are not. A row with no identifier at all falls back to its full
    path.
    """
    names = [c for c in _IDENTITY_COLUMNS if c in table.colnames]
    keys = []
    for r in table:
        ids = [str(r[c]) for c in names]
        known = any(v not in ("", str(MISSING_INT)) for v in ids)
        source = str(r["path"])
        name = os.path.basename(source) if known else source
        keys.append("|".join([name, str(r["hdu"]), str(r["row"]), *(ids if known else [])]))
    return keys
