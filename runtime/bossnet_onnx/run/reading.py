"""Reading and preparing one input: what the run's reading thread and its reader processes
(stream.py, read_pool.py) both do, file by file."""
from __future__ import annotations

import time
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..outputs.catalogue import Result
from ..spectrum import ReadFailure, Spectrum
from .options import RunOptions
from .rows import MIN_PIECE_ROWS, Prepared, error_text, failure_row, in_vacuum, prepare_pieces

if TYPE_CHECKING:
    from ..model.metadata import ModelMetadata

__all__ = ["FILE_DONE", "Skip", "StageTimes", "read_and_prepare"]

#: Follows the last piece of each input in a reader's output.
FILE_DONE = object()

#: Spectra already saved, by (source, hdu, row): read but neither prepared nor run again.
Skip = Container[tuple[str, int, int]]


@dataclass
class StageTimes:
    """Seconds spent per stage (read and preprocess run in a background thread, or in reader
    processes: then their seconds summed over the processes, and `extra` says who read what)."""

    read: float = 0.0
    preprocess: float = 0.0
    model: float = 0.0
    write: float = 0.0
    session: float = 0.0
    n_spectra: int = 0
    n_files: int = 0
    extra: dict = field(default_factory=dict)


def read_and_prepare(item: str | Sequence[Spectrum | ReadFailure], meta: ModelMetadata,
                     options: RunOptions, times: StageTimes, skip: Skip = ()
                     ) -> Iterator[Prepared | Result]:
    """Everything for one input path (or one in-memory object's records), piece by piece;
    never raises (failures become Result rows)."""
    from ..readers import iter_spectra

    piece_rows = max(options.batch_size, MIN_PIECE_ROWS)
    t0 = time.perf_counter()
    records = iter_spectra(item, kind=meta.family_member.spectrum_kind) \
        if isinstance(item, str) else iter(item)
    while True:
        try:
            rec = next(records, None)
        except Exception as exc:  # one bad file must not lose the others  # noqa: BLE001
            times.read += time.perf_counter() - t0
            yield failure_row(str(item), error_text(exc, str(item)))
            return
        t1 = time.perf_counter()
        times.read += t1 - t0
        if rec is None:
            return
        if skip and (rec.source, rec.hdu, rec.row) in skip:
            t0 = time.perf_counter()
            continue
        if isinstance(rec, ReadFailure):
            if options.recipe != "astra" or rec.spectrum is None:
                yield failure_row(rec, rec.error)
                t0 = time.perf_counter()
                continue
            rec = rec.spectrum  # DR19 predicts degenerate spectra too
        try:
            if options.air and not rec.converted_from_air:
                rec = in_vacuum(rec)
            pieces = prepare_pieces(rec, meta, options.draws, options.seed, piece_rows,
                                    options.recipe)
            first = next(pieces)
        except Exception as exc:  # noqa: BLE001
            times.preprocess += time.perf_counter() - t1
            yield failure_row(rec, error_text(exc, rec.location))
        else:
            times.preprocess += time.perf_counter() - t1
            yield first
            t2 = time.perf_counter()
            for piece in pieces:
                times.preprocess += time.perf_counter() - t2
                yield piece
                t2 = time.perf_counter()
        t0 = time.perf_counter()
