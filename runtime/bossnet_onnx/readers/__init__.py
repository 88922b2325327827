"""Input readers: one module per survey format, each with `identify` and `read`.

`read_spectra(path)` checks the file, opens it once, asks each reader in `READERS` (most
specific first) whether it recognises it and returns that reader's Spectrum / ReadFailure
records. File-level problems (missing, directory, empty, not FITS, truncated, unknown layout)
raise InputError naming the file; a spectrum that cannot be used (length mismatch, all-NaN
flux, wavelength not increasing, a broken visit) is a ReadFailure naming file, HDU and row,
so that the other spectra of the file are still read.

`iter_spectra(path)` gives the same records one at a time: readers of files that hold many
spectra (mwm, LAMOST table, generic array tables) have an `iter_read` that builds each record
only when asked, so a 10,000-row file is never held as 10,000 decoded spectra at once.
"""
from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import BossNetWarning, InputError, MemberMismatchError, UnknownFormatError, first_line
from ..science.members import KIND_TITLES
from ..spectrum import ReadFailure, Spectrum
from . import (
    apstar,
    gaia,
    generic_table,
    image_1d,
    lamost_image,
    lamost_table,
    mwm,
    sdss_spec,
)
from ._checks import BadValues
from ._fits import check_file, fits_file

__all__ = ["READERS", "read_spectra", "iter_spectra", "sniff_kinds", "Spectrum", "ReadFailure"]

log = logging.getLogger("bossnet_onnx.readers")

#: Tried in this order; the first whose identify() is True reads the file. SDSS spec first:
#: its test (a COADD table with a loglam column, HDU 1 or named COADD) fits no other layout,
#: and it parses 2 headers where the tests of mwm (instrument HDU names), apstar and gaia
#: (every table) parse every header of the file: on a real spec file (10-32 HDUs) that took
#: 16 ms of the ~30 ms its reading took. mwm next (its BOSS tables are also array-cell
#: tables), the generic table last (it accepts the most). Each reader's KINDS says which
#: family members' spectra it gives (members.py); a reader with several kinds takes the
#: wanted one as `kind=` (mwm files hold BOSS and APOGEE spectra). apStar before the 1-D
#: image (a one-visit apStar file is 1-D images on the APOGEE grid).
READERS = (sdss_spec, mwm, apstar, gaia, lamost_table, lamost_image, image_1d, generic_table)


def read_spectra(path: str | os.PathLike, kind: str | None = None
                 ) -> list[Spectrum | ReadFailure]:
    """All spectra in one file (several for mwmStar/mwmVisit), or failures for broken rows.

    `kind` is the spectrum kind the model reads (members.Member.spectrum_kind; None: the
    file's own, BOSS for an mwm file). A file that holds no spectra of that kind (an apStar
    file for the BOSS model) raises MemberMismatchError naming the file and both kinds.
    An mwm file whose HDUs of that kind are all empty gives an empty list, not an error.
    """
    return list(iter_spectra(path, kind))


def iter_spectra(path: str | os.PathLike, kind: str | None = None
                 ) -> Iterator[Spectrum | ReadFailure]:
    """The records of `read_spectra`, one at a time (the file stays open meanwhile).

    File-level errors are raised when the first record is asked for.
    """
    path = os.fspath(path)
    check_file(path)
    if path.lower().endswith(gaia.TEXT_SUFFIXES):
        reader = gaia if gaia.identify(path, None) else generic_table
        if reader is generic_table and not path.lower().endswith(generic_table.ASCII_SUFFIXES):
            raise UnknownFormatError(f"{path}: table without Gaia archive columns (source_id "
                                     f"with bp_coefficients or flux/flux_error)")
        yield from _at_least_one(path, reader, _read_with(reader, path, None, kind), kind)
        return
    with fits_file(path) as hdul:
        for reader in READERS:
            if _named_warnings(path, reader.identify, path, hdul):
                yield from _at_least_one(path, reader, _read_with(reader, path, hdul, kind),
                                         kind)
                return
    names = ", ".join(r.NAME for r in READERS)
    raise UnknownFormatError(
        f"{path}: FITS file in no known spectrum layout (tried {names}); expected e.g. an SDSS "
        f"spec file with a COADD table (flux, loglam, ivar), an mwmStar/mwmVisit file, a LAMOST "
        f"spectrum, an APOGEE apStar file, a Gaia archive table, a 1-D image with "
        f"CRVAL1/CDELT1, or a table with wavelength and flux columns"
    )


def _at_least_one(path: str, reader, records: Iterator[Spectrum | ReadFailure],
                  kind: str | None) -> Iterator[Spectrum | ReadFailure]:
    """`records`, or one ReadFailure naming the file when there are none: every input file
    gives at least one catalogue row (an mwm file without spectra of the model's kind, a table
    whose rows were all cut away), so nothing is silently missing from a run."""
    empty = True
    for record in records:
        empty = False
        yield record
    if empty:
        wanted = KIND_TITLES.get(kind or reader.KINDS[0], kind or reader.KINDS[0])
        yield ReadFailure(path, f"{path}: holds no spectra of the kind the model reads "
                                f"({wanted}): a {reader.NAME} file with no rows, or only empty "
                                f"HDUs of that kind; nothing to predict", reader.NAME)


def _mismatch(path: str, reader, kind: str) -> MemberMismatchError:
    found = " or ".join(KIND_TITLES.get(k, k) for k in reader.KINDS)
    return MemberMismatchError(f"{path}: is {found} ({reader.NAME} file) but the model reads "
                               f"{KIND_TITLES.get(kind, kind)}; use a model of the matching "
                               f"member")


def _named_warnings(path: str, function, *args):
    """`function(*args)`, astropy's and numpy's warnings about damaged cards or columns turned
    into log lines naming the file (a bare "WARNING: VerifyWarning: ..." says nothing of which
    file). Our own warnings (BossNetWarning, e.g. InputWarning) already name it: passed on."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            return function(*args)
    finally:  # after the recording ended: ours reach the caller's filters
        _pass_on(path, caught)


def _pass_on(path: str, caught: list[warnings.WarningMessage]) -> None:
    ours = [w for w in caught if issubclass(w.category, BossNetWarning)]
    for message in dict.fromkeys(str(w.message).splitlines()[0] for w in caught
                                 if w not in ours and str(w.message)):
        log.warning("%s: %s", path, message[:200])
    for w in ours:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _raised_by_file_libraries(exc: BaseException) -> bool:
    """True when the innermost frame of `exc` is in astropy or numpy: they choked on the file's
    bytes or values. A ValueError/IndexError/KeyError raised anywhere else is a bug of ours (an
    IndexError in a reader) and must be reported as one, not as a corrupted file."""
    import astropy
    import numpy

    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = Path(tb.tb_frame.f_code.co_filename).resolve()
    return any(where.is_relative_to(Path(str(m.__file__)).resolve().parent)
               for m in (astropy, numpy))


def _read_with(reader, path: str, hdul, kind: str | None) -> Iterator[Spectrum | ReadFailure]:
    if kind is not None and kind not in reader.KINDS:
        raise _mismatch(path, reader, kind)
    reading = reader.iter_read if hasattr(reader, "iter_read") else reader.read

    def all_records() -> Iterator[Spectrum | ReadFailure]:
        # called on the first next(), inside the handler below: a reader that reads the whole
        # file in `read` raises there, not before
        yield from (reading(path, hdul, kind=kind or reader.KINDS[0])
                    if len(reader.KINDS) > 1 else reading(path, hdul))

    records = all_records()
    while True:
        try:
            record = _named_warnings(path, next, records, None)
        except (ValueError, TypeError, KeyError, IndexError, OSError) as exc:
            if not (isinstance(exc, (OSError, BadValues)) or _raised_by_file_libraries(exc)):
                raise  # surfaces as "unexpected IndexError" naming the file: a bug to report
            # astropy decoding a damaged table, text where numbers belong: still one line
            # naming the file
            raise InputError(f"{path}: cannot read it as {reader.NAME} ({first_line(exc, 160)}); "
                             f"the file may be corrupted or hold non-numeric values") from None
        if record is None:
            return
        yield record


def sniff_kinds(path: str | os.PathLike) -> frozenset[str]:
    """Kinds of spectra a file certainly holds, from its name and headers only; empty when
    unsure (a damaged header, a layout the headers cannot settle).

    Cheap enough to run over every input before a run starts (headers, not data), so that a
    file certainly of the wrong kind for the model stops the run before any work. Only a
    positive sign counts (the Gaia archive's columns, the APOGEE grid, mwm instrument HDUs, a
    wavelength and flux table, a primary spectrum image): a file that shows none is left to
    the reader, which reads it or makes it its own failed row. Never raises.
    """
    path = os.fspath(path)
    try:
        if path.lower().endswith(gaia.TEXT_SUFFIXES):
            names = gaia.text_column_names(path)
            found = gaia.kind_of_columns(names)
            if found:
                return frozenset({found})
            if path.lower().endswith(generic_table.ASCII_SUFFIXES) \
                    and generic_table.usable_columns(list(names)):
                return frozenset(generic_table.KINDS)
            return frozenset()
        if os.path.basename(path).startswith(mwm.FILE_PREFIXES):
            return frozenset(mwm.KINDS)
        if os.path.basename(path).startswith(apstar.FILE_PREFIXES):  # the survey's own name
            return frozenset(apstar.KINDS)
        return _sniff_fits(path)
    except Exception:  # noqa: BLE001 - unsure means: let the reader say what is wrong
        return frozenset()


#: bytes of a file's start that the sniff reads: the primary header and the first extension
#: headers of every layout here (their primary HDUs hold no data, except LAMOST images)
SNIFF_BYTES = 1 << 16


def _headers(head: bytes, limit: int = 6) -> list[dict[str, str]]:
    """The first `limit` complete FITS headers within `head`, as {keyword: raw value text};
    data units are stepped over by their size, as a FITS reader walks the file."""
    text = head.decode("latin-1")  # one char per byte, data bytes included, never fails
    headers: list[dict[str, str]] = []
    pos = 0
    while len(headers) < limit and pos + 2880 <= len(text):
        header: dict[str, str] = {}
        card_at, ended = pos, False
        while card_at + 80 <= len(text):
            card = text[card_at:card_at + 80]
            card_at += 80
            key = card[:8].strip()
            if key == "END":
                ended = True
                break
            if card[8:10] == "= ":
                header[key] = card[10:].split("/")[0].strip().strip("'").strip()
        if not ended or not header:
            break
        headers.append(header)
        try:
            naxis = int(header["NAXIS"])
            if not 0 <= naxis <= 999:  # the FITS limit; a damaged card must not loop for ages
                break
            naxes = [int(header.get(f"NAXIS{i}", "0")) for i in range(1, naxis + 1)]
            size = abs(int(header["BITPIX"])) // 8 * (int(np.prod(naxes)) if naxes else 0)
            size = (size + int(header.get("PCOUNT", "0"))) * int(header.get("GCOUNT", "1"))
        except (KeyError, ValueError):
            break
        pos = -(-card_at // 2880) * 2880 + -(-size // 2880) * 2880
    return headers


def _int(header: dict[str, str], key: str) -> int:
    try:
        return int(header.get(key, "0"))
    except ValueError:
        return -1


def _primary_spectrum(header: dict[str, str]) -> bool:
    """A primary image the BOSS readers take: LAMOST's 2-8 rows, or a 1-D image with a
    CRVAL1/CDELT1 wavelength axis (as lamost_image and image_1d identify them)."""
    if _int(header, "NAXIS") == 2:
        return 2 <= _int(header, "NAXIS2") <= 8 and _int(header, "NAXIS1") > 100
    return (_int(header, "NAXIS") == 1 and _int(header, "NAXIS1") > 1 and "CRVAL1" in header
            and ("CDELT1" in header or "CD1_1" in header))


def _sniff_fits(path: str) -> frozenset[str]:
    import gzip

    with open(path, "rb") as fh:
        magic = fh.read(2)
        fh.seek(0)
        head = gzip.GzipFile(fileobj=fh).read(SNIFF_BYTES) if magic == b"\x1f\x8b" \
            else fh.read(SNIFF_BYTES)
    headers = _headers(head)
    if not headers or headers[0].get("SIMPLE") != "T":
        return frozenset()
    if _primary_spectrum(headers[0]):
        return frozenset({"boss"})
    for index, header in enumerate(headers[1:], start=1):
        if index == 1 and header.get("XTENSION") == "IMAGE" \
                and apstar.looks_like_apstar_header(header):
            return frozenset(apstar.KINDS)
        names = [header.get(f"TTYPE{i}", "")
                 for i in range(1, min(_int(header, "TFIELDS"), 999) + 1)]
        gaia_kind = gaia.kind_of_columns(names)
        if gaia_kind:
            return frozenset({gaia_kind})
        extname = header.get("EXTNAME", "").upper()
        instrument = extname.split("/")[0] if "/" in extname else \
            header.get("INSTRMNT", "").upper()
        if instrument in ("BOSS", "APOGEE"):
            # an mwm file: BOSS and APOGEE HDUs, either model reads its own (maybe none)
            return frozenset(mwm.KINDS)
        if index == 1 and header.get("XTENSION") in ("BINTABLE", "TABLE") \
                and generic_table.usable_columns(names):
            # SDSS spec COADD, LAMOST table, a generic spectrum table: all BOSS readers
            return frozenset({"boss"})
    return frozenset()
