"""The output catalogue: one row per spectrum, written atomically.

The columns (names, types, units, DR19/DR20 counterparts) are defined once, in `columns`.
Floats are NaN where unknown, integers -1 where unknown, text empty. A failed spectrum is a row
too: result_flags bit 0 and the `error` text. `Result.source` is the input file path (written
as the `path` column: DR19's `source` is a source key, not a file). An integer identifier that
is not a whole number within int64 (FIBERID = 1e300, inf, NaN, text) is the missing value -1.

Text is made safe once, here: every text value has its control characters escaped
(`textsafe.printable`); FITS files store ASCII only, so non-ASCII characters are written as
Python escapes (`é` -> `\xe9`); CSV, ECSV, Parquet and VOTable store UTF-8.

Every file opens in the usual tools with their defaults and no warning (docs/outputs.md, "File formats"):
FITS has EXTNAME (the member's network, e.g. BOSSNET), a TCOMMn description of every column
(TOPCAT's convention; astropy reads them from its own serialized header too) and a comment on
every provenance card; Parquet is astropy's (units, descriptions and provenance in its schema
metadata); VOTable (.vot, .xml) carries units, UCDs and descriptions per FIELD and the
provenance as INFO elements. FITS and VOUnit define no `dex`: logarithmic columns have no TUNIT
/ VOTable unit there (their description starts with "[dex]"), ECSV and Parquet keep `dex`, and
`read_catalogue` gives every column its `columns` unit back whatever the format.

CSV is plain (a header line, then rows), which astropy, pandas and TOPCAT read with their
defaults; its provenance goes to a JSON sidecar `<name>.csv.json` written just before it
(`provenance_path`), which `read_catalogue` reads back into `meta`, so --resume and `merge`
check CSV runs as they check FITS ones. Why a sidecar rather than ECSV-style `#` lines: every
default CSV reader (pandas, TOPCAT, astropy's ascii.csv) fails on them. Files are built in
memory and written atomically (`atomic`), `.fits.gz` really gzipped.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from astropy.units import UnitsWarning

from ..atomic import write_atomically
from ..errors import OutputError, first_line
from ..science.columns import (
    BOSS_LABEL_COLUMNS,
    IDENTIFIER_COLUMNS,
    MISSING,
    UCDS,
    Column,
    columns_for,
)
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
    "provenance_path",
    "remove_catalogue",
    "HEADER_COMMENTS",
    "member_output_path",
    "split_suffix",
    "write_catalogues",
]

#: The documented missing value of integer columns.
MISSING_INT: int = -1  # columns.MISSING["int64"], typed for numpy (a test keeps them equal)
_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)

SUFFIX_FORMATS = {
    ".fits": "fits", ".fit": "fits", ".fits.gz": "fits",
    ".csv": "ascii.csv", ".ecsv": "ascii.ecsv", ".parquet": "parquet",
    ".vot": "votable", ".xml": "votable",
}

#: What each provenance key of a catalogue means: the FITS card comments and the VOTable INFO
#: texts. Keys not listed (a newer run's) are written without a comment.
HEADER_COMMENTS = {
    "MODEL": "model name", "MODELSHA": "sha256 of the model weights",
    "PROVNC": "where the model weights come from", "PROVIDER": "onnxruntime provider",
    "ENGINE": "inference engine", "PRECISN": "numeric precision of the model run",
    "FORMULN": "graph form run (spectral, conv2d or plain)",
    "NDRAWS": "Monte-Carlo draws per spectrum (e_*, rho_*)", "SEED": "seed of the draws",
    "BNVERS": "bossnet-onnx version", "PREPROC": "preprocessing version",
    "RECIPE": "preprocessing recipe (reference or astra)", "MEMBER": "family member",
    "DATE": "UTC time the run started", "MODELREG": "registry name of the model set",
    "MODELREP": "repository of the model set", "MODELCOM": "commit of the model set",
    "SHARD": "this file is shard K/N of a run", "NSHARDS": "shards merged into this file",
    "NINPUTS": "input files of the run", "INPUTS": "sha256 of the run's input list",
    "PARTLAST": "progress file: its last input is partly done",
}

#: Unit strings the FITS standard (TUNIT) and VOUnit accept for our columns; `dex` and
#: `dex(K)` are in neither, so those columns carry their unit in their description only.
_STANDARD_UNITS = frozenset({"K", "km / s", "deg", "d"})


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
        table[column.name].description = (column.meaning if column.unit in _STANDARD_UNITS
                                          or not column.unit
                                          else f"[{column.unit}] {column.meaning}")
        if column.unit:
            table[column.name].unit = column.unit
        if column.name in UCDS:
            table[column.name].meta["ucd"] = UCDS[column.name]
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


def _plain_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Provenance as JSON-able Python values (numpy scalars unwrapped)."""
    return {str(k): (v.item() if hasattr(v, "item") else v) for k, v in meta.items()}


def provenance_path(path: str | os.PathLike) -> Path:
    """The JSON sidecar holding a CSV catalogue's provenance (`cat.csv` -> `cat.csv.json`)."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def remove_catalogue(path: str | os.PathLike) -> None:
    """Delete a catalogue and, for CSV, its provenance sidecar (missing files are fine)."""
    path = Path(path)
    if format_for(path) == "ascii.csv":
        provenance_path(path).unlink(missing_ok=True)
    path.unlink()


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
    """Plain CSV: one header line of column names, then the rows (provenance: the sidecar)."""
    buffer = io.StringIO()
    plain = table.copy(copy_data=False)
    plain.meta = {}
    plain.write(buffer, format="ascii.csv")
    return buffer.getvalue()


#: key of the sidecar's column descriptions (unit, description, UCD per column), which CSV
#: cannot hold; not provenance, so `read_catalogue` leaves it out of `meta`
_SIDECAR_COLUMNS = "columns"


def _provenance_json(table: Table) -> bytes:
    meta: dict[str, Any] = {k: (v if isinstance(v, (str, int, float, bool)) or v is None
                                else str(v)) for k, v in _plain_meta(table.meta).items()}
    meta[_SIDECAR_COLUMNS] = {
        name: {key: value for key, value in (("unit", str(table[name].unit or "")),
                                             ("description", table[name].description or ""),
                                             ("ucd", table[name].meta.get("ucd", "")))
               if value}
        for name in table.colnames}
    return (json.dumps(meta, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def _read_csv(path: Path) -> Table:
    """A CSV catalogue with its sidecar's provenance; a CSV written before the sidecar (its
    provenance as leading `# KEY = JSON` lines) is read too, so old progress files resume."""
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
    sidecar = provenance_path(path)
    if sidecar.is_file():
        try:
            stored = json.loads(sidecar.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise OutputError(f"{printable(sidecar)}: provenance of {printable(path)} is not "
                              f"JSON ({first_line(exc)})") from None
        if not isinstance(stored, dict):
            raise OutputError(f"{printable(sidecar)}: provenance of {printable(path)} is not a "
                              f"JSON object")
        stored.pop(_SIDECAR_COLUMNS, None)  # the units: _canonical gives them back
        meta.update(stored)
    table = Table.read("".join(body), format="ascii.csv")
    table.meta = meta
    return table


def _write_votable(table: Table, buffer: io.BytesIO) -> None:
    """VOTable 1.4: FIELD unit (VOUnit), ucd and DESCRIPTION per column, provenance as INFO."""
    from astropy.io.votable.tree import Info, VOTableFile

    plain = table.copy(copy_data=False)
    plain.meta = {}
    for column in plain.itercols():
        if column.unit is not None and str(column.unit) not in _STANDARD_UNITS:
            column.unit = None  # dex: not a VOUnit; the description says it
    votable = VOTableFile.from_table(plain, table_id=_extname(table.meta))
    resource = votable.resources[0]
    for key, value in _plain_meta(table.meta).items():
        info = Info(name=printable(key), value=json.dumps(value, ensure_ascii=False))
        comment = HEADER_COMMENTS.get(key)
        if comment:
            info.content = comment
        resource.infos.append(info)
    votable.to_xml(buffer)


def _read_votable(path: Path) -> Table:
    from astropy.io.votable import parse

    votable = parse(str(path))
    table = votable.get_first_table().to_table(use_names_over_ids=True)
    meta: dict[str, Any] = {}
    for info in votable.resources[0].infos if votable.resources else ():
        try:
            meta[info.name] = json.loads(info.value)
        except ValueError:
            meta[info.name] = info.value
    table.meta = meta
    return table


def _extname(meta: Mapping[str, Any]) -> str:
    """The table's name (FITS EXTNAME, VOTable TABLE ID): its member's network, e.g. BOSSNET."""
    try:
        member = member_named(meta.get("MEMBER") or DEFAULT_MEMBER, "catalogue")
    except Exception:  # noqa: BLE001 - an unknown member still gets a name
        return "CATALOGUE"
    return re.sub(r"[^A-Z0-9]", "", member.title.upper())


def _serialize(table: Table, fmt: str, path: Path) -> bytes:
    """The file's bytes (gzip for `.fits.gz`), built in memory so that a failing disk is met
    by one plain write whose OSError says what happened (astropy's FITS writer hides it)."""
    buffer = io.BytesIO()
    if fmt == "fits":
        return _fits_bytes([table], path)
    if fmt == "parquet":
        _write_parquet(table, buffer)
    elif fmt == "votable":
        _write_votable(table, buffer)
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
    return _write_file(path, fmt, lambda: _serialize(table, fmt, path), table)


def _write_file(path: Path, fmt: str, serialize: Callable[[], bytes], table: Table) -> Path:
    """write_catalogue's atomic write of `serialize()`'s bytes (and a CSV's sidecar)."""
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

    sidecar_written = False
    try:
        payload = serialize()
        if fmt == "ascii.csv":  # the sidecar first: a CSV never stands without its provenance
            sidecar = _provenance_json(table)
            def write_sidecar(tmp: str) -> None:
                Path(tmp).write_bytes(sidecar)

            write_atomically(provenance_path(path), write_sidecar)
            sidecar_written = True
        write_atomically(path, write)
    except Exception as exc:
        if sidecar_written:  # nothing half-written: no sidecar of a CSV that is not there
            provenance_path(path).unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise OutputError(f"cannot write {printable(path)}: {printable(reason)}") from exc
    return path


def _fits_bytes(tables: Sequence[Table], path: Path) -> bytes:
    """One FITS file (gzipped for `.fits.gz`) holding each table as a table HDU, in order."""
    from astropy.io import fits

    hdus = []
    for table in tables:
        out = _ascii_columns(table)
        out.meta = _fits_header_meta(table.meta)
        hdus.append(_fits_table_hdu(out))
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), *hdus]).writeto(buffer)
    if path.name.lower().endswith(".gz"):
        return gzip.compress(buffer.getvalue(), mtime=0)
    return buffer.getvalue()


def _fits_table_hdu(table: Table) -> Any:
    """FITS that astropy and TOPCAT read without a warning: TUNIT where FITS defines the unit,
    a TCOMMn description per column, EXTNAME, and a comment on each provenance card."""
    from astropy.io import fits

    plain = table.copy(copy_data=False)
    for column in plain.itercols():
        column.unit = None
    hdu = fits.table_to_hdu(plain)
    hdu.header["EXTNAME"] = (_extname(table.meta), "bossnet-onnx catalogue of this network")
    for i, name in enumerate(plain.colnames, start=1):
        unit = table[name].unit
        if unit is not None and str(unit) in _STANDARD_UNITS:
            hdu.header.insert(f"TFORM{i}", (f"TUNIT{i}", unit.to_string("fits")), after=True)
        description = table[name].description
        if description:
            hdu.header.insert(f"TTYPE{i}", (f"TCOMM{i}", ascii_text(description)), after=True)
    for key in list(hdu.header):
        if key in HEADER_COMMENTS:
            value = hdu.header[key]
            width = 10 + (max(len(value), 8) + 2 + value.count("'") if isinstance(value, str)
                          else 20)
            if width + 3 + len(HEADER_COMMENTS[key]) <= 80:  # else no room: no comment
                hdu.header.comments[key] = HEADER_COMMENTS[key]
    return hdu


def split_suffix(path: str | os.PathLike) -> tuple[str, str]:
    """(`cat`, `.fits.gz`): a catalogue file name less its type suffix, and the suffix as
    written (OutputError if the type is unknown)."""
    name = Path(path).name
    format_for(path)
    suffix = next(s for s in sorted(SUFFIX_FORMATS, key=len, reverse=True)
                  if name.lower().endswith(s))
    return name[: -len(suffix)], name[-len(suffix):]


def member_output_path(output: str | os.PathLike, member: str) -> Path:
    """Where a mixed run (`--model auto`) writes `member`'s table when -o is not FITS:
    `cat.csv` -> `cat.apogee.csv` (the member's name before the type suffix)."""
    stem, suffix = split_suffix(output)
    return Path(output).with_name(f"{stem}.{member}{suffix}")


def write_catalogues(tables: Mapping[str, Table], path: str | os.PathLike) -> list[Path]:
    """Write one table per family member (a mixed run): into `path` as one table HDU each
    when it is FITS (EXTNAME from each table's MEMBER, as DR19's astraAll* files hold one HDU
    per instrument), else each to its `member_output_path`. Each file is written atomically;
    if one fails, those this call wrote already are removed, and the OutputError names it."""
    path = Path(path)
    fmt = format_for(path)
    if fmt == "fits":
        ordered = list(tables.values())
        if not ordered:
            raise OutputError(f"{printable(path)}: no table to write")
        return [_write_file(path, fmt, lambda: _fits_bytes(ordered, path), ordered[0])]
    written: list[Path] = []
    try:
        for member, table in tables.items():
            written.append(write_catalogue(table, member_output_path(path, member)))
    except OutputError:
        for done in written:
            remove_catalogue(done)
        raise
    return written


def _write_parquet(table: Table, path: str | io.BytesIO) -> None:
    """astropy's Parquet (pyarrow underneath): units, descriptions and provenance in the schema
    metadata, which Table.read gives back and pandas/pyarrow ignore."""
    import tempfile

    out = table.copy(copy_data=False)
    out.meta = _plain_meta(table.meta)
    with tempfile.TemporaryDirectory(prefix="bossnet-parquet-") as scratch:
        # astropy writes to a path only: a private scratch file, then its bytes
        name = os.path.join(scratch, "catalogue.parquet")
        out.write(name, format="parquet", overwrite=True)
        with open(name, "rb") as handle:
            data = handle.read()
    if isinstance(path, io.BytesIO):
        path.write(data)
    else:
        Path(path).write_bytes(data)


def _read_parquet(path: Path) -> Table:
    """astropy's reader for its own files; a Parquet file of an earlier version (provenance
    under the `bossnet` schema key, written by pyarrow directly) is read too."""
    import pyarrow.parquet as pq

    schema_meta = pq.read_schema(path).metadata or {}
    if b"bossnet" not in schema_meta:
        return Table.read(path, format="parquet")
    arrow = pq.read_table(path)
    table = Table({name: arrow.column(name).to_numpy(zero_copy_only=False)
                   for name in arrow.column_names})
    table.meta = json.loads(schema_meta[b"bossnet"])
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
            elif fmt == "votable":
                table = _read_votable(path)
            elif fmt == "ascii.ecsv":
                table = Table.read(path, format=fmt, encoding="utf-8")
            else:
                table = Table.read(path, format=fmt)
        for name in table.colnames:  # text columns of other members or readers: str too
            if table[name].dtype.kind == "S":
                table[name] = np.char.decode(np.asarray(table[name]), "utf-8", "backslashreplace")
        table = _canonical(table)
        # FITS column descriptions and the HDU name are the writer's, not provenance
        table.meta = {k: v for k, v in table.meta.items()
                      if not re.fullmatch(r"TCOMM\d+|EXTNAME", str(k))}
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
