"""The run, written once: inputs in, catalogue rows out.

`stream(model, items, options)` is the only place that reads, prepares, batches, runs and makes
rows; `predict` (a table in memory), `to_file.predict_to_file` (`-o`, checkpoints, --resume) and
`distributed` (a Dask cluster) call it and add only what is theirs. `check_run` holds the checks
every run makes before any work (recipe, kinds of the files, the demo-model warning) and
`run_metadata` the provenance every catalogue carries.

Files are read and preprocessed in a background thread while the model runs on the previous
round (onnxruntime releases the GIL), or, when asked for (`readers` > 1), in reader processes
(read_pool.py). Memory is bounded whatever the input:
readers hand over spectra one at a time, a spectrum's Monte-Carlo rows are made in pieces
(rows.prepare_pieces), the background thread runs at most READ_AHEAD_PIECES pieces ahead of
the model and the reader processes at most read_pool.FILES_IN_FLIGHT files each.

Rows do not depend on how they are packed: the engine runs every call with its fixed shape
(`BossNetModel.call_rows`, the last call padded), so a spectrum's labels are the same bits
whatever its neighbours, the batch size, the file order, the shard, the resume point or the
worker that ran it (with several threads onnxruntime's result for a row depends on the call's
batch size, never on the row's position or neighbours).
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import queue
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..errors import DemoModelWarning, MemberMismatchError, ModelError
from ..model.session import BossNetModel
from ..outputs.catalogue import Result, build_table
from ..science.members import KIND_TITLES
from .options import DEFAULT_BATCH_ROWS, RunOptions, options_from
from .reading import FILE_DONE, Skip, StageTimes, read_and_prepare
from .rows import Prepared, error_text, failure_row, result_from_outputs

if TYPE_CHECKING:
    from astropy.table import Table

    from ..model.metadata import ModelMetadata
    from .read_pool import ProcessReadAhead

__all__ = ["predict", "stream", "check_run", "run_metadata", "resolve_inputs", "open_for_run",
           "demo_warning", "StageTimes", "READ_AHEAD_PIECES", "DEFAULT_BATCH_ROWS"]

#: Prepared pieces the background thread may hold ahead of the model (each at most
#: max(batch rows, MIN_PIECE_ROWS) x 3900 float32: 64 pieces of 64 rows are 64 MB).
READ_AHEAD_PIECES = 64

#: Misfit files a refused run names (the count says how many there are in all).
MISFITS_NAMED = 5

def _split(prep: Prepared, k: int) -> tuple[Prepared, Prepared]:
    """The first `k` rows of a piece and the rest, as two pieces of the same spectrum."""
    total = prep.total_rows if prep.total_rows is not None else prep.inputs.shape[0]
    head = dataclasses.replace(prep, inputs=prep.inputs[:k], total_rows=total)
    tail = dataclasses.replace(prep, inputs=prep.inputs[k:], first_row=prep.first_row + k,
                               total_rows=total)
    return head, tail


class _Batcher:
    """Packs prepared pieces into model rounds of whole engine calls.

    A round is a multiple of the engine's call shape (at least `batch_size` rows), so only the
    very last call of a stream is padded; a piece that straddles a round is split. Returns
    (first piece, Result) once all of a spectrum's rows have run.
    """

    def __init__(self, model: BossNetModel, options: RunOptions, times: StageTimes):
        self.model, self.draws, self.times = model, options.draws, times
        self.call = model.call_rows
        self.round = max(self.call, -(-options.batch_size // self.call) * self.call)
        self.pending: deque[Prepared] = deque()
        self.rows = 0
        # spectra whose first pieces ran: (first piece, outputs so far, or the failure)
        self.partial: dict[int, tuple[Prepared, list[np.ndarray] | Result]] = {}

    def add(self, prep: Prepared) -> list[tuple[Prepared, Result]]:
        if prep.error is not None:
            return self._collect(prep, None)
        self.pending.append(prep)
        self.rows += prep.inputs.shape[0]
        if self.rows >= self.round:
            return self._run(self.rows // self.call * self.call)
        return []

    def flush(self) -> list[tuple[Prepared, Result]]:
        return self._run(self.rows) if self.pending else []

    def _run(self, n_rows: int) -> list[tuple[Prepared, Result]]:
        batch: list[Prepared] = []
        taken = 0
        while taken < n_rows:
            prep = self.pending[0]
            k = prep.inputs.shape[0]
            if taken + k <= n_rows:
                batch.append(self.pending.popleft())
                taken += k
            else:
                head, self.pending[0] = _split(prep, n_rows - taken)
                batch.append(head)
                taken = n_rows
        self.rows -= n_rows
        t0 = time.perf_counter()
        try:
            physical = self.model.run_physical(np.concatenate([p.inputs for p in batch]))
        except Exception:  # noqa: BLE001
            # Isolate the culprit: rerun one piece at a time so only its spectrum fails.
            outputs: list[np.ndarray | Result] = [self._run_one(prep) for prep in batch]
        else:
            bounds = np.cumsum([0] + [p.inputs.shape[0] for p in batch])
            outputs = [physical[a:b] for a, b in itertools.pairwise(bounds)]
        self.times.model += time.perf_counter() - t0
        done = []
        for prep, out in zip(batch, outputs):
            done.extend(self._collect(prep, out))
        return done

    def _collect(self, prep: Prepared, out: np.ndarray | Result | None
                 ) -> list[tuple[Prepared, Result]]:
        """Outputs of one piece; the spectrum's Result when it was its last piece."""
        if isinstance(out, np.ndarray) and prep.total_rows is None:
            return [(prep, result_from_outputs(prep, out, self.model.metadata, self.draws))]
        key = id(prep.spectrum)
        first, acc = self.partial.pop(key, (prep, []))
        if out is None:  # a piece that could not be made
            out = failure_row(prep.spectrum, prep.error or "")
        if isinstance(acc, list):
            acc = out if isinstance(out, Result) else [*acc, out]
        if not prep.is_last:
            self.partial[key] = (first, acc)
            return []
        if isinstance(acc, Result):
            return [(first, acc)]
        return [(first, result_from_outputs(first, np.concatenate(acc), self.model.metadata,
                                            self.draws))]

    def _run_one(self, prep: Prepared) -> np.ndarray | Result:
        try:
            return self.model.run_physical(prep.inputs)
        except Exception as exc:  # noqa: BLE001
            return failure_row(prep.spectrum, f"{prep.spectrum.location}: model error: "
                                              f"{error_text(exc)}")


_PRODUCER_DONE = object()


class _ReadAhead:
    """A background thread reading and preparing the inputs, at most READ_AHEAD_PIECES ahead."""

    def __init__(self, items: Sequence, metadata: ModelMetadata, options: RunOptions,
                 times: StageTimes, skip: Skip = ()):
        self.queue: queue.Queue = queue.Queue(maxsize=READ_AHEAD_PIECES)
        self.stop = threading.Event()
        self.items, self.metadata, self.options, self.times, self.skip = \
            list(items), metadata, options, times, skip
        self.thread = threading.Thread(target=self._produce, name="bossnet-read", daemon=True)
        self.thread.start()

    def _put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self.items:
                for prepared in read_and_prepare(item, self.metadata, self.options, self.times,
                                                 self.skip):
                    if not self._put(prepared):
                        return
                if not self._put(FILE_DONE):
                    return
        except BaseException as exc:  # noqa: BLE001  # a bug: hand it to the consumer, no hang
            self._put(exc)
        self._put(_PRODUCER_DONE)

    def __iter__(self) -> Iterator:
        while True:
            item = self.queue.get()
            if item is _PRODUCER_DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop reading ahead (Ctrl-C / SIGTERM): what was read ahead is dropped."""
        self.stop.set()


def _read_ahead(items: Sequence, model: BossNetModel, options: RunOptions, times: StageTimes,
                skip: Skip) -> _ReadAhead | ProcessReadAhead:
    """The inputs' pieces in input order, each file followed by FILE_DONE: from reader
    processes when `options.readers` asks for more than one and every input is a path, else
    from one thread beside the model (the default on every engine: on an H200 one reading
    thread fed CUDA runs faster than 4 or 8 processes; read_pool.py has the figures)."""
    from .read_pool import ProcessReadAhead

    workers = options.readers or 1
    if workers > 1 and len(items) > 1 and all(isinstance(item, str) for item in items):
        return ProcessReadAhead(items, model.metadata, options, times, skip, workers)
    return _ReadAhead(items, model.metadata, options, times, skip)


def stream(model: BossNetModel, items: Sequence, options: RunOptions, *, skip: Skip = (),
           times: StageTimes | None = None, on_file_done: Callable[[int], None] | None = None,
           checked: bool = False) -> Iterator[Result]:
    """One catalogue row per spectrum of `items` (resolve_inputs' output), in input order.

    Each row is yielded as soon as it and every spectrum before it are done (within a file
    too, so a caller can save the finished part of a big file). Spectra whose (source, hdu,
    row) is in `skip` (the rows of a progress file) are read but neither prepared nor run.
    Unless `checked` (the caller ran `check_run` on all the inputs already, e.g. a Dask
    client before it sent partitions to workers), the run's checks come first.
    """
    if model.closed:
        raise ModelError(f"{model.path}: model was closed; load it again (bossnet_onnx.load) "
                         f"to predict")
    if not checked:
        check_run(model, items, options)
    if options.progress and on_file_done is None:
        yield from _with_progress_bar(model, items, options, skip, times)
        return
    times = times if times is not None else StageTimes()
    batcher = _Batcher(model, options, times)
    # Spectra wait in `order` (as their first piece) until the model has run all their rows,
    # so failures that never reach the model still come out in input order.
    order: deque[Result | Prepared] = deque()
    finished: dict[int, Result] = {}

    def drain(done: list[tuple[Prepared, Result]]) -> Iterator[Result]:
        for prep, res in done:
            finished[id(prep.spectrum)] = res
        while order:
            head = order[0]
            if isinstance(head, Result):
                yield head
                order.popleft()
            elif id(head.spectrum) in finished:
                order.popleft()
                yield finished.pop(id(head.spectrum))
            else:
                break

    reader = _read_ahead(items, model, options, times, skip)
    try:
        for item in reader:
            if item is FILE_DONE:
                times.n_files += 1
                if on_file_done:
                    on_file_done(1)
                continue
            if isinstance(item, Result):
                times.n_spectra += 1
                order.append(item)
                yield from drain([])
                continue
            if item.first_row == 0:
                times.n_spectra += 1
                order.append(item)
            yield from drain(batcher.add(item))
    finally:
        # On Ctrl-C / SIGTERM do not wait for the files read ahead: drop them.
        reader.close()
    yield from drain(batcher.flush())


def _with_progress_bar(model: BossNetModel, items: Sequence, options: RunOptions, skip: Skip,
                       times: StageTimes | None) -> Iterator[Result]:
    """`stream` with a rich progress bar over files (on stderr)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("[bold]BOSS Net"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("files"), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("predict", total=len(items))
        yield from stream(model, items, options, skip=skip, times=times, checked=True,
                          on_file_done=lambda n: bar.advance(task, n))


def check_run(model: BossNetModel, items: Sequence, options: RunOptions) -> None:
    """The checks every run makes before any work, whichever way it runs.

    The recipe must be one the model's member defines (`astra` is DR19's BOSS Net production
    code; other members run the reference recipe). A file whose spectra the member cannot
    read is a MemberMismatchError naming it: `readers.sniff_kinds` looks at file names and
    headers only, so a run of APOGEE files given to the BOSS model stops before any spectrum
    is read or any row written; files it cannot tell, and in-memory records (checked one by
    one in `rows.prepare_spectrum`), are left to the readers. Last, a model that is not an
    export of the published weights issues a DemoModelWarning.
    """
    from ..readers import sniff_kinds

    member = model.metadata.family_member
    if options.recipe not in member.recipes:
        raise MemberMismatchError(
            f"{model.path.name}: --recipe {options.recipe} is not defined for {member.title} "
            f"(member {member.name}); it takes --recipe {' or '.join(member.recipes)}")
    misfits = [(path, kinds) for path in items if isinstance(path, str)
               for kinds in [sniff_kinds(path)] if kinds and member.spectrum_kind not in kinds]
    if len(misfits) == 1:
        path, kinds = misfits[0]
        found = " or ".join(KIND_TITLES.get(k, k) for k in sorted(kinds))
        raise MemberMismatchError(
            f"{path}: is {found} but the model {model.path.name} is {member.title} "
            f"(member {member.name}), which reads {member.reads}; use a model of the "
            f"matching member (bossnet-onnx info shows a model's member)")
    if misfits:
        shown = ", ".join(str(path) for path, _ in misfits[:MISFITS_NAMED])
        more = len(misfits) - MISFITS_NAMED
        raise MemberMismatchError(
            f"{len(misfits)} files are not {member.reads}, which the model {model.path.name} "
            f"({member.title}, member {member.name}) reads: {shown}"
            f"{f' and {more} more' if more > 0 else ''}; use a model of the matching member, "
            f"or --model auto to send each file to its member's model")
    note = demo_warning(model)
    if note:
        warnings.warn(note, DemoModelWarning, stacklevel=_caller_outside_package())


def _caller_outside_package() -> int:
    """The stacklevel of the first frame outside bossnet_onnx, so the warning points at the
    user's line (their predict call, or the CLI)."""
    import sys

    frame, level = sys._getframe(1), 1
    package = __name__.split(".")[0]
    while frame is not None and (frame.f_globals.get("__name__") or "").startswith(package):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level


def demo_warning(model: BossNetModel) -> str | None:
    """The warning every prediction with a model that is not the published weights carries."""
    meta = model.metadata
    if not meta.is_demo:
        return None
    return (f"model {meta.model_name} is {meta.provenance}, not an export of the published "
            f"BOSS Net weights: its labels are for trying the software, not for science "
            f"(README: 'Science models')")


def run_metadata(model: BossNetModel, options: RunOptions) -> dict:
    """Provenance for the catalogue header (SHARD only for a `--shard K/N` run)."""
    meta = model.metadata
    header = {
        "MODEL": meta.model_name,
        "MODELSHA": meta.weights_sha256,
        "PROVNC": meta.provenance,
        "PROVIDER": model.provider,
        "ENGINE": model.engine,
        "PRECISN": model.precision,
        "FORMULN": model.formulation,
        "NDRAWS": options.draws,
        "SEED": options.seed,
        "BNVERS": __version__,
        "PREPROC": meta.preprocessing.version,
        "RECIPE": options.recipe,
        "MEMBER": meta.member,
        "DATE": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
    }
    if meta.source:
        # Which published set produced the rows (models pull); the blob ids are in the model.
        header["MODELREG"] = meta.source["registry_name"]
        header["MODELREP"] = meta.source["repository"]
        header["MODELCOM"] = meta.source["commit"]
    if options.shard:
        header["SHARD"] = options.shard
    return header


def resolve_inputs(inputs: Any, options: RunOptions, *, shard: bool = True) -> list:
    """Expanded input paths (globs, dirs, @lists), restricted to the options' shard unless
    `shard` is False (to-file runs record the whole input set, then take their slice).

    In-memory objects (readers.in_memory) among the inputs become tuples of Spectrum records
    in their place; anything else is a TypeError before any work. Shards split files only.
    """
    from ..readers.in_memory import resolve_items, split_inputs
    from ..readers.paths import expand_inputs
    from .sharding import parse_shard, select_shard

    items = split_inputs(inputs)
    if all(isinstance(p, (str, os.PathLike)) for p in items):
        paths = expand_inputs([os.fspath(p) for p in items], recursive=options.recursive)
        if shard and options.shard:
            return select_shard(paths, parse_shard(options.shard))
        return paths
    if options.shard is not None:
        raise ValueError("shard: --shard splits input files; spectra in memory cannot be "
                         "sharded (split them yourself)")
    out: list = []
    seen: set[str] = set()
    for item in resolve_items(items):
        if isinstance(item, str):
            for path in expand_inputs([item], recursive=options.recursive):
                if path not in seen:
                    seen.add(path)
                    out.append(path)
        else:
            out.append(item)
    return out


def open_for_run(model: str | os.PathLike | BossNetModel | None, options: RunOptions,
                 times: StageTimes | None = None) -> BossNetModel:
    """The model a run uses: `model` itself when it is open already, else opened with the
    options' provider, threads and precision (the cold start timed into `times.session`)."""
    if isinstance(model, BossNetModel):
        return model
    from ..model.session import open_model

    t0 = time.perf_counter()
    opened = open_model(model, options.provider, options.threads, options.precision)
    if times is not None:
        times.session = time.perf_counter() - t0
    return opened


def predict(inputs: Any, *, model: str | os.PathLike | BossNetModel | None = None,
            options: RunOptions | None = None, times: StageTimes | None = None,
            **settings: Any) -> Table:
    """Predict BOSS Net labels for every spectrum in `inputs`.

    `inputs`: paths (files, globs, directories, @lists), `bossnet_onnx.Spectrum` records,
    specutils spectra, astropy tables, `(wavelength, flux, ivar)` arrays, or a list mixing them
    (see readers/in_memory.py); anything else is a TypeError. `model`: a model name, an .onnx
    path, a loaded model (`bossnet_onnx.load`, reused without reopening) or None for the
    default. `options`: a `RunOptions`; keyword `settings` (draws=20, seed=3, recipe="astra",
    air=True, batch_size, shard, recursive, provider, threads, precision, progress, readers)
    override its fields.

    Returns an astropy Table (DR19 column names, one row per spectrum; failed spectra are rows
    with result_flags bit 0 and an `error` text) whose `meta` holds the run's provenance.
    `draws` noisy copies per spectrum give e_* as their scatter (ddof=1); `seed` with each
    spectrum's identity fixes them, whatever the batch size, file order or shard ("K/N").
    A model that is not an export of the published weights issues a DemoModelWarning.
    (`bossnet_onnx.predict` is run.mixed.predict: this, or `model="auto"` for mixed folders.)
    """
    options = options_from(options, settings)
    items = resolve_inputs(inputs, options)
    opened = open_for_run(model, options, times)
    results = list(stream(opened, items, options, times=times))
    return build_table(results, meta=run_metadata(opened, options))
