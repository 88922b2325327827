"""Opening input files with errors that name the file and say what is wrong with it.

Every HDU's size is checked against the bytes present at open time, so that a truncated or
corrupted file is caught with one clear message instead of astropy silently returning fewer
HDUs or a half-decompressed stream.

Memory stays bounded whatever the file: plain files are memory-mapped (rows are decoded as a
reader asks for them); gzip files are decompressed here, in 1 MiB steps, into an anonymous
temporary file that is then memory-mapped. Decompression follows the FITS layout as it goes
and stops at the first of: content past the last HDU beyond MAX_TRAILING_BYTES (a gzip bomb of
zeros after a small valid file: refused after ~1 MiB), a header declaring more than
MAX_FITS_BYTES, or MAX_FITS_BYTES decompressed. Each is one InputError naming the file.
"""
from __future__ import annotations

import contextlib
import functools
import gzip
import math
import mmap
import os
import re
import tempfile
import warnings
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np
from astropy.io import fits

from ..errors import InputError, first_line
from .paths import SPECTRUM_SUFFIXES

__all__ = ["check_file", "open_fits", "opened", "native", "header_value", "looks_like_fits",
           "first_row_scalars", "table_columns", "column_names", "SPECTRUM_SUFFIXES",
           "MAX_FITS_BYTES", "MAX_TRAILING_BYTES",
           "release_pages", "RELEASE_EVERY_ROWS", "fits_file", "close_fits"]

FITS_MAGIC = b"SIMPLE  ="
GZIP_MAGIC = b"\x1f\x8b"
BLOCK = 2880
#: Largest FITS content (decompressed) of one input file: 1 GiB, ~10,000 mwmVisit BOSS rows.
#: Larger files are refused with a message saying so (split them); see docs/performance.md, "Memory".
MAX_FITS_BYTES = 1 << 30
#: Zero or blank padding tolerated after the last HDU (more is a damaged or hostile file).
MAX_TRAILING_BYTES = 1 << 20
_GZIP_STEP = 1 << 20
#: Readers of many-row tables drop the file pages they have read every so many rows.
RELEASE_EVERY_ROWS = 64


def looks_like_fits(path: str) -> bool:
    """True if the file (or its gzip content) starts with the FITS signature; never raises."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
            fh.seek(0)
            if head == GZIP_MAGIC:
                with gzip.open(fh) as gz:
                    return gz.read(len(FITS_MAGIC)) == FITS_MAGIC
            return fh.read(len(FITS_MAGIC)) == FITS_MAGIC
    except (OSError, EOFError, zlib.error):
        return False


def check_file(path: str) -> None:
    """InputError unless `path` is an existing, non-empty, readable regular file."""
    if not os.path.exists(path):
        raise InputError(f"{path}: file not found; check the path (or the entry in the list "
                         f"file)")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory with no spectrum files "
                         f"({', '.join('*' + s for s in SPECTRUM_SUFFIXES)})")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: file is empty (0 bytes); expected a spectrum file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: file is not readable (permission denied)")


def _corrupt(path: str, why: str) -> InputError:
    return InputError(f"{path}: FITS file is truncated or corrupted ({why}); download it again")


def _too_big(path: str, what: str) -> InputError:
    return InputError(f"{path}: {what}, more than the {MAX_FITS_BYTES >> 20} MiB a spectrum file "
                      f"may hold here (MAX_FITS_BYTES); split it into smaller files")


def _hdu_span(header: fits.Header | _CardText) -> int:
    """Bytes of an HDU's data unit as its header declares them, padded to whole blocks (an
    astropy header, or the raw walk's cards; ValueError for a size card that is no number)."""
    naxis = int(header.get("NAXIS", 0))
    if naxis == 0:
        return 0
    axes = [int(header.get(f"NAXIS{i}", 0)) for i in range(1, naxis + 1)]
    if header.get("GROUPS") in (True, "T") and axes and axes[0] == 0:
        axes = axes[1:]  # random groups: NAXIS1 = 0 is no axis
    size = abs(int(header.get("BITPIX", 8))) // 8 * int(header.get("GCOUNT", 1)) * (
        int(header.get("PCOUNT", 0)) + math.prod(axes))
    return -(-size // BLOCK) * BLOCK


class _LayoutWalk:
    """Follows the HDU layout of a FITS stream as it is written, to know where it must end."""

    def __init__(self, path: str, fh):
        self.path, self.fh = path, fh
        self.next_hdu = 0          # where the next header starts
        self.trailing_from: int | None = None  # where content past the last HDU starts

    def advance(self, available: int) -> None:
        while self.trailing_from is None and self.next_hdu + BLOCK <= available:
            self.fh.seek(self.next_hdu)
            first = self.fh.read(BLOCK)
            if not first.startswith((b"SIMPLE  =", b"XTENSION=")):
                self.trailing_from = self.next_hdu
                break
            end = self._header_end(first, available)
            if end is None:
                break  # header not complete yet
            self.fh.seek(self.next_hdu)
            text = self.fh.read(end - self.next_hdu).decode("ascii", errors="replace")
            try:
                span = _hdu_span(fits.Header.fromstring(text))
            except (ValueError, TypeError, KeyError):
                break  # let astropy report the broken header
            if end + span > MAX_FITS_BYTES:
                raise _too_big(self.path, f"HDU at byte {self.next_hdu} declares "
                                          f"{end + span - self.next_hdu} bytes")
            self.next_hdu = end + span
        self.fh.seek(0, os.SEEK_END)

    def _header_end(self, first: bytes, available: int) -> int | None:
        pos, block = self.next_hdu, first
        while True:
            for i in range(0, BLOCK, 80):
                if block[i:i + 8] == b"END     " or block[i:i + 80].rstrip() == b"END":
                    return pos + BLOCK
            pos += BLOCK
            if pos + BLOCK > available:
                return None
            self.fh.seek(pos)
            block = self.fh.read(BLOCK)

    def check_trailing(self, available: int) -> None:
        if self.trailing_from is not None and available - self.trailing_from > MAX_TRAILING_BYTES:
            raise _corrupt(self.path, f"more than {MAX_TRAILING_BYTES} bytes after the last "
                                      f"HDU (a damaged file or a decompression bomb); stopped "
                                      f"decompressing at {available} bytes")


#: the most axes and table columns FITS allows (NAXIS, TFIELDS <= 999)
MAX_FITS_COUNT = 999


class _Span(NamedTuple):
    """One HDU as the raw walk found it: where its data start, their size in whole blocks, and
    its cards (keyword -> the raw text after '= ', the first of repeated keywords, as astropy)."""
    data_at: int
    data_span: int
    cards: dict[bytes, bytes]


def _walk_hdus(path: str, fh, size: int) -> list[_Span] | None:
    """Every HDU's place and cards, read from the raw headers, stepping over each data unit.

    Raises InputError naming the file for a header whose NAXIS or TFIELDS is not a count FITS
    allows: astropy would build a list of that many axes or columns (minutes for 99999999)
    before saying anything. None when the walk cannot vouch for the file (a header without
    END or with a count that is not a number, a data unit past the end of the file, a card
    astropy could read otherwise: lower case, repeated, CONTINUE, HIERARCH): astropy then
    reads every header and says what is wrong."""
    spans: list[_Span] = []
    pos, regular = 0, True
    while pos + BLOCK <= size:
        fh.seek(pos)
        first = fh.read(BLOCK)
        if not first.startswith((b"SIMPLE  =", b"XTENSION=")):
            break
        cards: dict[bytes, bytes] = {}
        end, at, block = None, pos, first
        irregular = False
        while end is None:
            for key8, indicator, value in _CARDS.findall(block):
                if key8 == b"END     ":
                    end = at + BLOCK
                    break
                key = _plain_key(key8)
                if indicator == b"= ":
                    if key is None or key in cards \
                            or (b"&'" in value and value.rstrip().endswith(b"&'")):
                        irregular = True  # read as astropy reads it, or not at all
                        key = key8.strip()
                    cards.setdefault(key, value)
                elif key8 not in _COMMENTARY:
                    irregular = True  # CONTINUE, HIERARCH, a misplaced '=', ...
            if end is None:
                at += BLOCK
                if at + BLOCK > size:
                    return None  # a header without END: astropy reports the truncation
                fh.seek(at)
                block = fh.read(BLOCK)
        header = _CardText(cards)
        try:
            counts = {name: int(header[name]) for name in ("NAXIS", "TFIELDS") if name in header}
        except ValueError:
            return None  # not a number: astropy's own message says so
        for name, value in counts.items():
            if not 0 <= value <= MAX_FITS_COUNT:
                raise _corrupt(path, f"header at byte {pos} declares {name} = {value}; "
                                     f"FITS allows 0 to {MAX_FITS_COUNT}")
        if irregular:
            regular = False
        try:
            span = _hdu_span(header)
        except ValueError:
            return None
        if span < 0 or end + span > size:
            return None  # truncated (its padding too): astropy's words for it
        spans.append(_Span(end, span, cards))
        pos = end + span
    # cards astropy would read otherwise than the walk (lower case, repeated keywords, long
    # strings...): the walk checked the counts, astropy reads the rest
    return spans if spans and regular else None


#: a keyword as the walk reads it: upper-case letters, digits, '-' and '_', padded with blanks
_PLAIN_KEY = re.compile(rb"[A-Z0-9_-]+ *")
#: a header block's 36 cards as (keyword, value indicator, value)
_CARDS = re.compile(rb"(.{8})(.{2})(.{70})", re.S)
_COMMENTARY = (b"COMMENT ", b"HISTORY ", b"        ")


@functools.lru_cache(maxsize=4096)
def _plain_key(key8: bytes) -> bytes | None:
    """The keyword of a card's first 8 bytes, None unless plain (see _PLAIN_KEY)."""
    return key8.rstrip() if _PLAIN_KEY.fullmatch(key8) else None


def _card_text(raw: bytes | None) -> str | None:
    """A raw card value as astropy reads a string (quotes, '' inside, trailing blanks dropped)
    or, unquoted, the text before any comment."""
    if raw is None:
        return None
    text = raw.decode("ascii", errors="replace").strip()
    if not text.startswith("'"):
        return text.split("/")[0].strip()
    value: list[str] = []
    i = 1
    while i < len(text):
        if text[i] == "'":
            if text[i + 1:i + 2] != "'":
                return "".join(value).rstrip()
            i += 1
        value.append(text[i])
        i += 1
    return None  # no closing quote: leave it to astropy


def _gunzipped(path: str, raw_fh):
    """The decompressed content of a gzip file in an anonymous temporary file (bounded)."""
    out = tempfile.TemporaryFile(prefix="bossnet-onnx-")  # noqa: SIM115 (returned open)
    walk = _LayoutWalk(path, out)
    total = 0
    try:
        with gzip.GzipFile(fileobj=raw_fh) as gz:
            while True:
                chunk = gz.read(_GZIP_STEP)
                if not chunk:
                    break
                if total == 0 and chunk[:len(FITS_MAGIC)] != FITS_MAGIC:
                    raise InputError(f"{path}: gzip file whose content is not FITS (no "
                                     f"'SIMPLE =' header); expected a gzipped survey spectrum")
                out.write(chunk)
                total += len(chunk)
                if total > MAX_FITS_BYTES:
                    raise _too_big(path, f"decompresses to more than {MAX_FITS_BYTES} bytes")
                walk.advance(total)
                walk.check_trailing(total)
    except (EOFError, OSError, zlib.error) as exc:
        out.close()
        if total == 0 and not looks_like_fits(path):
            raise InputError(f"{path}: gzip file whose content is not FITS (no 'SIMPLE =' "
                             f"header); expected a gzipped survey spectrum") from None
        raise _corrupt(path, f"gzip stream: {str(exc) or type(exc).__name__}") from None
    except BaseException:
        out.close()
        raise
    out.flush()
    readonly = os.fdopen(os.dup(out.fileno()), "rb")  # astropy wants a read-only handle
    out.close()  # the unlinked file lives on while `readonly` is open
    return readonly


def _fits_source(path: str):
    """(file object to give astropy, its size): the file itself or its decompressed copy."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 (returned open, closed with the HDUList)
    except OSError as exc:
        raise InputError(f"{path}: cannot read file ({exc.strerror})") from None
    head = fh.read(len(FITS_MAGIC))
    fh.seek(0)
    if head[:2] == GZIP_MAGIC:
        with fh:
            out = _gunzipped(path, fh)
        return out, os.fstat(out.fileno()).st_size
    if head != FITS_MAGIC:
        fh.close()
        raise InputError(f"{path}: not a FITS file (no 'SIMPLE =' header); expected a "
                         f"survey spectrum in FITS format, or a .csv/.ecsv table")
    size = os.fstat(fh.fileno()).st_size
    if size > MAX_FITS_BYTES:
        fh.close()
        raise _too_big(path, f"is {size} bytes")
    return fh, size


def open_fits(path: str) -> fits.HDUList:
    """All HDUs of `path`, memory-mapped; InputError for unusable files.

    Every HDU's size is checked against the bytes present, so a truncated file fails here:
    by a walk over the raw headers, after which astropy parses a header only when a reader
    asks for its HDU; or, where that walk cannot vouch for the file (or it holds scaled or
    compressed images), by astropy parsing every header at once. The data are decoded only
    when a reader asks.
    """
    check_file(path)
    source, size = _fits_source(path)
    try:
        spans = _walk_hdus(path, source, size)
        source.seek(0)
    except BaseException:
        source.close()
        raise
    try:
        if spans is not None and _spec_file(spans) \
                and not any(_scaled_or_compressed(span.cards) for span in spans):
            # an SDSS spec file whose layout the walk vouched for (every HDU's size, plain
            # cards): astropy parses the 3 headers the spec reader uses (PRIMARY, COADD,
            # SPALL) now, where their damage is reported as on the eager path, and the
            # exposure HDUs (7-29 of them) only if something asks
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                hdul = fits.open(source, memmap=True, lazy_load_hdus=True)
                try:
                    for index in range(min(len(spans), SPEC_HEADERS)):
                        hdul[index]
                except IndexError:  # astropy could not make it an HDU: its warning says why
                    _raise_damage(caught, hdul)
                    hdul.close()
                    raise OSError(f"HDU {index} cannot be read") from None
            _raise_damage(caught, hdul)
            end = spans[-1].data_at + spans[-1].data_span
        else:
            hdul, source, end = _open_eagerly(source, size)
        hdul._bossnet_spans = spans  # for _raw_layout: each HDU's cards and data offset
        # for first_row_scalars and table_columns: decoding straight from the bytes
        hdul._bossnet_raw = np.memmap(source, dtype=np.uint8, mode="r") if size else None
        hdul._bossnet_source = source  # kept open as long as the HDUList
    except (OSError, ValueError, TypeError, IndexError, KeyError, EOFError, Warning) as exc:
        source.close()
        raise _corrupt(path, first_line(exc, 160)) from None
    if size - end > MAX_TRAILING_BYTES:
        hdul.close()
        raise _corrupt(path, f"{size - end} bytes after the last complete HDU")
    source.seek(end)
    if source.read(size - end).strip(b"\0 "):
        hdul.close()
        raise _corrupt(path, f"{size - end} bytes after the last complete HDU "
                             f"(an incomplete header or data unit)")
    return hdul


def _open_eagerly(source, size: int) -> tuple[fits.HDUList, Any, int]:
    """(HDUList, file, end of the last HDU) with every header parsed and every data size
    checked against the bytes present, so a truncated or damaged file fails here."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hdul = fits.open(source, memmap=True, lazy_load_hdus=False)
        if any(_scaled_image(hdu) for hdu in hdul):
            # astropy cannot memory-map a scaled image (BSCALE/BZERO/BLANK: int16 with a
            # scale, uint16 as int16 + 32768); read such files through the file instead
            again = os.fdopen(os.dup(source.fileno()), "rb")
            hdul.close()  # closes `source`
            source = again
            hdul = fits.open(source, memmap=False, lazy_load_hdus=False)
    try:
        _raise_damage(caught, hdul)
        end = 0
        for index, hdu in enumerate(hdul):
            info = hdu.fileinfo()
            if info["datLoc"] + hdu.size > size:
                raise OSError(f"HDU {index} needs {info['datLoc'] + hdu.size} bytes, the file "
                              f"has {size}")
            end = info["datLoc"] + info["datSpan"]
    except BaseException:
        hdul.close()  # closes `source`, the re-opened one too
        raise
    return hdul, source, end


def _raise_damage(caught: list[warnings.WarningMessage], hdul: fits.HDUList) -> None:
    """OSError (hdul closed) for astropy's warnings of a truncated or corrupted file."""
    for w in caught:
        text = str(w.message)
        if "truncated" in text.lower() or "corrupt" in text.lower():
            hdul.close()
            raise OSError(text.splitlines()[0])


#: headers the spec reader parses: PRIMARY, COADD and the SPALL table after it
SPEC_HEADERS = 3


def _spec_file(spans: list[_Span]) -> bool:
    """HDU 1 is a table named COADD: an SDSS spec file, read from its first SPEC_HEADERS."""
    return len(spans) > 1 and _card_text(spans[1].cards.get(b"XTENSION")) == "BINTABLE" \
        and (_card_text(spans[1].cards.get(b"EXTNAME")) or "").strip().upper() == "COADD"


def _scaled_or_compressed(cards: dict[bytes, bytes]) -> bool:
    """An image whose integers astropy scales on reading (it cannot memory-map those), or a
    tile-compressed image: left to the eager path."""
    image = b"SIMPLE" in cards or _card_text(cards.get(b"XTENSION")) == "IMAGE"
    return (image and any(k in cards for k in (b"BSCALE", b"BZERO", b"BLANK"))) \
        or b"ZIMAGE" in cards


def _scaled_image(hdu) -> bool:
    """An image HDU whose stored integers are scaled on reading (BSCALE, BZERO or BLANK)."""
    return (isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU))
            and any(key in hdu.header for key in ("BSCALE", "BZERO", "BLANK")))


def release_pages(hdul: fits.HDUList) -> None:
    """Give back the memory-mapped file pages read so far (the records are copies).

    A memory-mapped file counts in the process's resident memory as its pages are touched; a
    reader going through a 1 GB table would end up holding all of it. Dropping the pages of a
    read-only mapping is safe: touched again, they come back from the file. Never raises.
    """
    mapping = getattr(getattr(hdul, "_file", None), "_mmap", None)
    if mapping is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    try:
        mapping.madvise(mmap.MADV_DONTNEED)
    except (OSError, ValueError, AttributeError):
        pass


def close_fits(hdul: fits.HDUList) -> None:
    """Close an HDUList from open_fits without astropy copying every column read.

    When a table's data are freed, astropy copies each column that was accessed into memory
    (FITS_rec.__del__, so that Column.array stays valid): for a 1 GB memory-mapped table that is
    1 GB of copies at the very end. Nothing here uses Column.array afterwards, so it is dropped.
    """
    for hdu in list.__iter__(hdul):  # the HDUs loaded: iterating the HDUList loads them all
        if "data" in hdu.__dict__ and getattr(hdu, "columns", None) is not None:
            for column in hdu.columns:
                del column.array
    hdul.close()


@contextlib.contextmanager
def fits_file(path: str) -> Iterator[fits.HDUList]:
    """open_fits(path), closed with close_fits afterwards."""
    hdul = open_fits(path)
    try:
        yield hdul
    finally:
        close_fits(hdul)


@contextlib.contextmanager
def opened(path: str, hdul: fits.HDUList | None) -> Iterator[fits.HDUList]:
    """The HDUList a reader was given, or `path` opened (and closed afterwards)."""
    if hdul is not None:
        yield hdul
        return
    with fits_file(path) as own:
        yield own


def column_names(hdu) -> list[str]:
    """A table HDU's column names from its TTYPEn cards, without astropy building its columns.

    For telling layouts apart: astropy's `hdu.columns` parses every column's definition, which
    for a real SDSS spec file (9-31 tables, one of them the 126-column SPALL) took 46 ms of a
    53 ms read on average (the Gaia reader's test of every table); the names alone take 4.6 ms.
    """
    header = hdu.header
    try:
        count = min(int(header.get("TFIELDS", 0)), 999)
    except (TypeError, ValueError):
        return list(hdu.columns.names)  # a damaged count: astropy's reading of it
    return [str(header.get(f"TTYPE{i}", "")) for i in range(1, count + 1)]


_SCALAR_TYPES = {"L": "S1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4",
                 "D": ">f8"}
_WIDTHS = {"L": 1, "X": None, "B": 1, "I": 2, "J": 4, "K": 8, "A": 1, "E": 4, "D": 8, "C": 8,
           "M": 16, "P": 8, "Q": 16}


class _RawColumn(NamedTuple):
    name: str    # upper case
    code: str    # the TFORM type letter
    repeat: int
    offset: int  # bytes from the start of a row
    scaled: bool  # TSCALn or TZEROn present: astropy applies them


def _raw_layout(hdul: fits.HDUList, index: int) -> tuple[Any, int, int, int,
                                                         list[_RawColumn]] | None:
    """(bytes, data start, row bytes, rows, columns) of binary table HDU `index` from its
    TFORMn cards and the file bytes open_fits kept; None where astropy must decode (an HDUList
    opened elsewhere, bit or unknown column codes, a row size the columns do not add up to)."""
    raw = getattr(hdul, "_bossnet_raw", None)
    hdu = hdul[index]
    if raw is None or not isinstance(hdu, fits.BinTableHDU):
        return None
    spans = getattr(hdul, "_bossnet_spans", None)
    if spans is not None and index < len(spans):
        # the cards the walk kept: a 126-column SPALL header read through astropy took ~3 ms
        span = spans[index]
        start, header = span.data_at, _CardText(span.cards)
    else:
        start, header = hdu.fileinfo()["datLoc"], hdu.header
    try:
        count, row_bytes, rows = (int(header[key]) for key in ("TFIELDS", "NAXIS1", "NAXIS2"))
        offset, columns = 0, []
        for i in range(1, count + 1):
            form = str(header.get(f"TFORM{i}", "")).strip().upper()
            digits = len(form) - len(form.lstrip("0123456789"))
            repeat = int(form[:digits]) if digits else 1
            code = form[digits:digits + 1]
            code_width = _WIDTHS.get(code)
            if code_width is None:
                return None  # bit columns and unknown codes: let astropy decode
            columns.append(_RawColumn(str(header.get(f"TTYPE{i}", "")).strip().upper(), code,
                                      repeat, offset,
                                      f"TSCAL{i}" in header or f"TZERO{i}" in header))
            offset += repeat * code_width
    except (KeyError, TypeError, ValueError):
        return None  # a card the fast path cannot read: astropy's reading
    if offset != row_bytes or start + row_bytes * rows > raw.size:
        return None
    return raw, start, row_bytes, rows, columns


class _CardText:
    """The walk's raw cards of one header, read as text (the few lookups _raw_layout makes)."""

    def __init__(self, cards: dict[bytes, bytes]):
        self.cards = cards

    def __contains__(self, key: str) -> bool:
        return key.encode() in self.cards

    def __getitem__(self, key: str) -> str:
        if key not in self:
            raise KeyError(key)
        return self.get(key)

    def get(self, key: str, default: Any = "") -> Any:
        """The card's text, `default` when absent; ValueError for a string without its closing
        quote (astropy would not read it as the walk does)."""
        raw = self.cards.get(key.encode())
        if raw is None:
            return default
        value = _card_text(raw)
        if value is None:
            raise ValueError(f"card {key} has no closing quote")
        return value


def _first_row_raw(hdul: fits.HDUList, index: int, wanted: set[str]) -> dict[str, Any] | None:
    layout = _raw_layout(hdul, index)
    if layout is None or layout[3] < 1:
        return None
    raw, start, _, _, columns = layout
    out: dict[str, Any] = {}
    for column in columns:
        if column.name not in wanted:
            continue
        if column.scaled:
            return None
        at = start + column.offset
        if column.code == "A":
            text = bytes(raw[at:at + column.repeat]).decode(errors="replace")
            out[column.name] = text.split("\0")[0].rstrip()
        elif column.repeat == 1 and column.code in _SCALAR_TYPES:
            value = np.frombuffer(raw, _SCALAR_TYPES[column.code], 1, at)[0]
            out[column.name] = bool(value == b"T") if column.code == "L" else value.item()
    return out


def table_columns(hdul: fits.HDUList, index: int,
                  wanted: Iterable[str]) -> dict[str, np.ndarray] | None:
    """The `wanted` numeric columns (upper-case names) of binary table HDU `index`, whole, as
    native-endian copies of what `hdu.data[name]` holds (rows x repeat), decoded straight from
    the bytes open_fits kept; the wanted columns missing from the table are left out.

    A spec file's COADD table is one spectrum: astropy building its FITS_rec took 1.7 ms of the
    ~10 ms a file takes to read and prepare (2 cores of an Intel Xeon). None where astropy must
    decode: a layout _raw_layout refuses, or a wanted column that is scaled, text or logical.
    """
    layout = _raw_layout(hdul, index)
    if layout is None:
        return None
    raw, start, row_bytes, rows, columns = layout
    wanted = set(wanted)
    out: dict[str, np.ndarray] = {}
    for column in columns:
        if column.name not in wanted:
            continue
        if column.name in out:
            return None  # two columns of one name: astropy's choice
        if column.scaled or column.code not in _SCALAR_TYPES or column.code == "L":
            return None
        dtype = np.dtype(_SCALAR_TYPES[column.code])
        if rows == 0 or column.repeat == 0:
            out[column.name] = np.empty((rows, column.repeat), dtype.newbyteorder("="))
            continue
        view = np.ndarray((rows, column.repeat), dtype, buffer=raw, offset=start + column.offset,
                          strides=(row_bytes, dtype.itemsize))
        out[column.name] = view.astype(dtype.newbyteorder("="))
    return out


def first_row_scalars(hdul: fits.HDUList, index: int, wanted: set[str]) -> dict[str, Any]:
    """Scalar (and text) values of the first row of table HDU `index`, by upper-case column
    name, for the `wanted` columns present; array columns are left out.

    SPALL/SPECOBJ tables have 100-230 columns of which the identifiers need ten: decoding the
    row straight from the bytes open_fits kept avoids astropy building every column (~60 ms a
    file). Falls back to astropy for HDULists opened elsewhere or unusual column formats.
    """
    fast = _first_row_raw(hdul, index, wanted)
    if fast is not None:
        return fast
    hdu = hdul[index]
    if hdu.data is None or len(hdu.data) == 0:
        return {}
    out = {}
    for name in hdu.columns.names:
        if name.upper() in wanted:
            value = hdu.data[name][0]
            if isinstance(value, bytes):
                value = value.decode(errors="replace")
            if isinstance(value, str):
                out[name.upper()] = value.rstrip()
            elif np.size(value) == 1:
                out[name.upper()] = np.asarray(value).item()
    return out


def native(array: Any, dtype=np.float64) -> np.ndarray:
    """A native-endian numpy copy (FITS stores big-endian)."""
    return np.array(array, dtype=dtype, copy=True)


def header_value(*headers: fits.Header | None, keys: tuple[str, ...]) -> Any:
    """First present, non-blank value of any of `keys` in any of `headers`."""
    for header in headers:
        if header is None:
            continue
        for key in keys:
            value = header.get(key)
            if value is not None and str(value).strip() != "":
                return value
    return None
