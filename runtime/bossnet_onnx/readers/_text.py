"""Text tables (CSV, ECSV, VOTable headers) read with bounds set before any parsing.

A text table is read one physical line at a time, never as a whole: a line is at most
MAX_LINE_BYTES (a longer one is skipped to its end in bounded steps and becomes that row's
failure), a header names at most MAX_COLUMNS columns (more: the file is refused before its
first row is parsed), and the headers that precede the rows (an ECSV file's YAML block, a
VOTable's FIELDs) are at most MAX_HEADER_BYTES. Each line is split by Python's csv module
between bytecodes, so SIGINT/SIGTERM are honoured within one line's parse, never after a
whole-file C parse.

Gaia archive tables (the only text tables with one spectrum a row) are streamed row by row
through `rows`; everything here is independent of what the columns mean.
"""
from __future__ import annotations

import csv
import gzip
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from ..errors import InputError
from .paths import ASCII_SUFFIXES, TABLE_SUFFIXES

__all__ = ["MAX_LINE_BYTES", "MAX_COLUMNS", "MAX_HEADER_BYTES", "TextHeader", "read_header",
           "rows", "chunks", "is_votable", "open_text", "shown_names"]

#: Longest line (one table row) read: a Gaia XP row is ~45 KB, an RVS row ~60 KB.
MAX_LINE_BYTES = 1 << 20
#: Most columns a text table may name (the Gaia XP table has 26, RVS 7, spectra tables ~5).
MAX_COLUMNS = 1024
#: Most bytes of headers before the first row (ECSV YAML block, VOTable FIELDs/PARAMs).
MAX_HEADER_BYTES = 1 << 22
_SKIP_STEP = 1 << 20

csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))

#: the VOTables among the table suffixes (paths.TABLE_SUFFIXES): the ones that are not ASCII
VOTABLE_SUFFIXES = tuple(s for s in TABLE_SUFFIXES if s.removesuffix(".gz") not in ASCII_SUFFIXES)


def shown_names(names: list[str] | tuple[str, ...], limit: int = 40) -> str:
    """Column names for a message: at most `limit` of them, each at most 40 characters."""
    shown = ", ".join(str(n)[:40] for n in names[:limit])
    return shown + (f", ... ({len(names)} columns)" if len(names) > limit else "")


def is_votable(path: str) -> bool:
    return path.lower().endswith(VOTABLE_SUFFIXES)


def open_text(path: str) -> IO[bytes]:
    """The file's bytes, gunzipped (by magic number, not by name) as they are read."""
    fh = open(path, "rb")  # noqa: SIM115 - returned open
    if fh.read(2) == b"\x1f\x8b":
        fh.close()
        return gzip.open(path, "rb")  # type: ignore[return-value]  # closes its own file
    fh.seek(0)
    return fh


def _lines(fh: IO[bytes]) -> Iterator[bytes | None]:
    """Physical lines, newline included; None for a line over MAX_LINE_BYTES (consumed to its
    end in bounded steps, never held)."""
    while True:
        line = fh.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while True:
                rest = fh.readline(_SKIP_STEP)
                if not rest or rest.endswith(b"\n"):
                    break
            yield None
            continue
        yield line


@dataclass(frozen=True)
class TextHeader:
    """What precedes a text table's rows: its column names, the delimiter, and how many
    physical lines the header took (the first data line follows)."""

    names: tuple[str, ...]
    delimiter: str = ","
    header_lines: int = 1
    #: the header's lines as text (ECSV's YAML block and the names line), for a parser that
    #: is given the rows a chunk at a time
    preamble: tuple[str, ...] = ()


def _split(text: str, delimiter: str) -> list[str]:
    reader = csv.reader([text], delimiter=delimiter, quotechar='"', doublequote=True,
                        strict=True, skipinitialspace=delimiter == " ")
    return next(reader, [])


def _names_line(path: str, line: bytes, delimiter: str, line_number: int) -> tuple[str, ...]:
    text = line.decode("utf-8", errors="replace")
    if text.count(delimiter) + 1 > MAX_COLUMNS:
        raise InputError(f"{path}: header line {line_number} names {text.count(delimiter) + 1} "
                         f"columns, more than the {MAX_COLUMNS} a table may have here "
                         f"(MAX_COLUMNS); expected a CSV/ECSV header line of column names")
    try:
        return tuple(n.strip() for n in _split(text, delimiter))
    except csv.Error as exc:
        raise InputError(f"{path}: header line {line_number} cannot be split into column "
                         f"names ({exc})") from None


_ECSV_DELIMITER = re.compile(r"^#\s*delimiter:\s*['\"]?(.)['\"]?\s*$")
def read_header(path: str) -> TextHeader:
    """The column names of a CSV/ECSV file (the first non-comment line), reading no more than
    MAX_HEADER_BYTES; InputError naming the file when there is no header within that bound.
    (A VOTable's FIELDs: _votable.read_fields.)"""
    try:
        with open_text(path) as fh:
            delimiter, seen, preamble = ",", 0, []
            for number, line in enumerate(_lines(fh), start=1):
                if line is None:
                    raise InputError(f"{path}: header line {number} is longer than "
                                     f"{MAX_LINE_BYTES} bytes (MAX_LINE_BYTES); expected a "
                                     f"header line of column names")
                seen += len(line)
                if seen > MAX_HEADER_BYTES:
                    break
                line = line.rstrip(b"\r\n")
                text = line.decode("utf-8", errors="replace")
                preamble.append(text)
                if text.startswith("#"):
                    found = _ECSV_DELIMITER.match(text)
                    if found:
                        delimiter = found.group(1)
                    continue
                if not text.strip():
                    continue
                if path.lower().endswith((".ecsv", ".ecsv.gz")) and delimiter == "," \
                        and "," not in text:
                    delimiter = " "  # ECSV's default delimiter is the space
                return TextHeader(_names_line(path, line, delimiter, number), delimiter, number,
                                  tuple(preamble))
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc})"
                         ) from None
    raise InputError(f"{path}: no header line of column names within the first "
                     f"{MAX_HEADER_BYTES} bytes; expected a CSV/ECSV table")


def rows(path: str, header: TextHeader) -> Iterator[tuple[int, int, dict[str, str] | str]]:
    """(data row index, line number, cells by column name) for every data line after the
    header, or (row, line, why) for a line that is not one row of the header's columns:
    too long, wrong number of fields, an unbalanced quote, bytes that are not text."""
    n = len(header.names)
    row, number = -1, header.header_lines
    try:
        for row, number, cells in _data_rows(path, header, n):
            yield row, number, cells
    except (OSError, EOFError, zlib.error) as exc:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        yield row + 1, number + 1, (f"the file cannot be read past this point ({why[:120]}); a damaged "
                            f"or cut file, rows from here on may be missing")


def _data_rows(path: str, header: TextHeader, n: int
               ) -> Iterator[tuple[int, int, dict[str, str] | str]]:
    with open_text(path) as fh:
        row = -1
        for number, line in enumerate(_lines(fh), start=1):
            if number <= header.header_lines:
                continue
            if line is None:
                row += 1
                yield row, number, (f"line {number} is longer than {MAX_LINE_BYTES} bytes "
                                    f"(MAX_LINE_BYTES); expected one table row a line")
                continue
            if not line.strip() or line.startswith(b"#"):
                continue
            row += 1
            if not line.endswith(b"\n"):
                yield row, number, (f"line {number} does not end with a newline (a cut file?); "
                                    f"its last field may be incomplete")
                continue
            line = line.rstrip(b"\r\n")
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield row, number, f"line {number} is not UTF-8 text (byte {exc.start})"
                continue
            try:
                fields = _split(text, header.delimiter)
            except csv.Error as exc:
                yield row, number, f"line {number} cannot be split into fields ({exc})"
                continue
            if len(fields) != n:
                yield row, number, (f"line {number} has {len(fields)} fields; the header "
                                    f"names {n} columns (a cut or altered line)")
                continue
            yield row, number, dict(zip(header.names, fields))


def chunks(path: str, header: TextHeader, *, max_lines: int, max_bytes: int,
           max_rows: int) -> Iterator[tuple[int, list[str]]]:
    """(index of the first data row, data lines as text) for consecutive runs of at most
    `max_lines` lines or `max_bytes` bytes, for a parser that would otherwise be given the whole
    file. InputError naming the file and line for a line over MAX_LINE_BYTES, and for more than
    `max_rows` data lines."""
    row, size = 0, 0
    lines: list[str] = []
    try:
        with open_text(path) as fh:
            for number, line in enumerate(_lines(fh), start=1):
                if number <= header.header_lines:
                    continue
                if line is None:
                    raise InputError(f"{path}: line {number} is longer than {MAX_LINE_BYTES} "
                                     f"bytes (MAX_LINE_BYTES); expected one table row a line")
                if not line.strip() or line.startswith(b"#"):
                    continue
                if row + len(lines) >= max_rows:
                    raise InputError(f"{path}: more than {max_rows} data lines, the most one "
                                     f"text table may hold here; split the file")
                lines.append(line.rstrip(b"\r\n").decode("utf-8", errors="replace"))
                size += len(line)
                if len(lines) >= max_lines or size >= max_bytes:
                    yield row, lines
                    row, lines, size = row + len(lines), [], 0
    except (OSError, EOFError, zlib.error) as exc:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise InputError(f"{path}: cannot read it past data row {row + len(lines)} "
                         f"({why[:120]}); a damaged or cut file") from None
    if lines:
        yield row, lines
