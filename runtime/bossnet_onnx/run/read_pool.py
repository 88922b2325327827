"""Reading and preparing the input files in worker processes (`--readers N`), for a machine
where one reading thread cannot feed the engine and processes are cheap to start and talk to.

A second reading *thread* does not help, because the GIL serialises the Python parts of reading
a FITS file, so `stream` can hand whole files to `readers` processes and take their pieces back
in input order. Whether that pays depends on the machine, so it is not the default: on the one
GPU machine measured (an H200 with 16 Xeon cores, under gVisor; 256 spec files, 20 draws),
feeding alone ran at 1 thread 86.6 spectra/s, 4 processes 0.94x and 8 processes 1.05x of that,
and whole CUDA runs with 4 processes took 0.70x (64 files) and 0.93x (256 files) of the
spectra/s of one reading thread; on 2 cores of an Intel Xeon, 2 processes fed 1.33x.
`benchmarks/readers.py` measures it on any machine.

- Rows do not depend on it: a worker runs the same `reading.read_and_prepare` on the same file,
  and the Monte-Carlo draws are seeded by each spectrum's identity, not by who prepares it.
- At most FILES_IN_FLIGHT x `readers` files are in flight (each whole: a file's rows are
  ~330 kB per spectrum with 20 draws), so memory stays bounded whatever the number of inputs.
- Workers are spawned (no fork of a process that holds onnxruntime's threads); they ignore
  Ctrl-C, which the run handles, and end with it.
- A worker that cannot start or dies never costs a row: its file and every later one are read in
  this process instead. This is what happens inside a daemonic process (a Dask worker may not
  have children) and in a script that lacks the `if __name__ == "__main__":` guard that every
  spawned process needs (its workers fail to start; the run goes on, slower).
"""
from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from .reading import FILE_DONE, StageTimes, read_and_prepare

if TYPE_CHECKING:
    from ..model.metadata import ModelMetadata
    from .options import RunOptions
    from .reading import Skip

__all__ = ["ProcessReadAhead"]

#: Files handed to each reader process ahead of the run, so that a worker has its next file
#: while the run takes the pieces of the last one (on 2 cores, one process took 4.3 s for 256
#: spec files with 2 files in flight and 4.5 s with 4: no measurable difference there).
FILES_IN_FLIGHT = 4

_WORKER: dict[str, Any] = {}


def _start_worker(metadata: ModelMetadata, options: RunOptions, skip: Skip) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle
    _WORKER.update(metadata=metadata, options=options, skip=skip)


def _read_file(path: str) -> tuple[list, float, float]:
    """One file's pieces and failure rows (a worker's task), with its read and prepare seconds."""
    times = StageTimes()
    out = list(read_and_prepare(path, _WORKER["metadata"], _WORKER["options"], times,
                                 _WORKER["skip"]))
    return out, times.read, times.preprocess


class ProcessReadAhead:
    """The pieces of `items` (paths) from `workers` reader processes, in input order, each file
    followed by stream's file-done marker; read here once the workers are unusable."""

    def __init__(self, items: Sequence[str], metadata: ModelMetadata, options: RunOptions,
                 times: StageTimes, skip: Skip, workers: int):
        self.items, self.metadata, self.options, self.times, self.skip = \
            list(items), metadata, options, times, skip
        self.window = FILES_IN_FLIGHT * workers
        # who read what (times.extra): the files the reader processes read, and those read in
        # this process because the processes could not start or died
        times.extra.update(reader_processes=workers, files_read_by_processes=0,
                           files_read_here=0)
        self.pending: deque[tuple[str, Future]] = deque()
        self.next = 0
        self.pool: ProcessPoolExecutor | None
        try:
            self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_start_worker,
                                            initargs=(metadata, options, skip))
        except Exception:  # noqa: BLE001  # no processes here: read in this one
            self.pool = None
        self._submit()

    def _submit(self) -> None:
        while self.pool is not None and len(self.pending) < self.window \
                and self.next < len(self.items):
            path = self.items[self.next]
            try:
                future = self.pool.submit(_read_file, path)
            except (BrokenProcessPool, AssertionError, OSError):
                # a dead worker, a daemonic process (no children allowed), no processes left.
                # Not RuntimeError: a spawned process re-running a script that lacks the main
                # guard raises it here, and must die rather than run the whole run itself.
                self._stop_pool()
                return
            self.pending.append((path, future))
            self.next += 1

    def _stop_pool(self, wait: bool = False) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=wait, cancel_futures=True)
            self.pool = None

    def _here(self, path: str) -> list:
        self.times.extra["files_read_here"] += 1
        return list(read_and_prepare(path, self.metadata, self.options, self.times, self.skip))

    def __iter__(self) -> Iterator:
        try:
            while self.pending or self.next < len(self.items):
                if self.pending:
                    path, future = self.pending.popleft()
                    try:
                        out, read_s, prepare_s = future.result()
                    except Exception:  # noqa: BLE001  # a worker died or never started
                        self._stop_pool()
                        out = self._here(path)
                    else:
                        self.times.extra["files_read_by_processes"] += 1
                        self.times.read += read_s
                        self.times.preprocess += prepare_s
                        self._submit()
                else:
                    path = self.items[self.next]
                    self.next += 1
                    out = self._here(path)
                yield from out
                yield FILE_DONE
        finally:
            self._stop_pool(wait=not self.pending)

    def close(self) -> None:
        """Stop reading ahead (Ctrl-C / SIGTERM): files in flight are dropped."""
        self.pending.clear()
        self._stop_pool()
