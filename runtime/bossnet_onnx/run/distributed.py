"""The distributed mode: the same run as a local one, spread over a Dask cluster (`dask` extra).

    bossnet-onnx predict INPUTS -o cat.fits --dask local:4          # a LocalCluster, 4 workers
    bossnet-onnx predict INPUTS -o cat.fits --dask tcp://host:8786  # an existing scheduler
    bossnet-onnx predict INPUTS -o cat.fits --dask scheduler.json   # e.g. dask-jobqueue's

The client does what every run does before any work (options, output check and lock, the
input set and its shard, `check_run`: recipe, kinds, the demo warning), then cuts the inputs
into parts of consecutive files. Each worker runs the ordinary run to a file
(`to_file`, checkpoints included) on its part, writing `cat.fits.parts/part-00003.fits`
atomically beside the output, and returns only a count: rows never travel to the client
until it merges. The merge reads the parts in input order and writes the catalogue atomically
with the same provenance header as a local run. Rows are bit for bit those of a local run
(seeds come from each spectrum's identity, and the engine's fixed call shape makes a row's
labels independent of what it was batched with).

A part that is written is done; `--resume` skips it, resumes a part whose progress file a
worker saved (within the part), and reruns the others. A worker killed mid-run loses at most
its part's unsaved rows; Dask reruns the task on another worker, which resumes the part.
"""
from __future__ import annotations

import os
import shutil
import stat
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astropy.table import Table, vstack

from ..errors import BossNetError, OptionError, OutputPathError
from ..model.session import BossNetModel, available_cpus, open_model
from ..outputs.catalogue import read_catalogue, split_suffix, write_catalogue
from ..textsafe import printable
from .lock import OutputLock
from .options import RunOptions, options_from
from .output_paths import check_output
from .stream import StageTimes, check_run, open_for_run, run_metadata
from .to_file import _FileRun, file_inputs, input_set_digest, partial_path, run_keys

__all__ = ["predict_distributed", "parse_cluster", "parts_folder", "Cluster",
           "run_part"]

#: Parts per worker when the part size is not given: enough for the workers to balance
#: uneven files, few enough that each part spreads the bookkeeping over many files.
PARTS_PER_WORKER = 4
#: Most files in one part (a killed worker loses at most one part's unsaved rows).
MAX_FILES_PER_PART = 64
#: The parts folder's record of how the inputs were cut, so --resume cuts them the same way
#: whatever the cluster it resumes on.
MANIFEST = "parts.json"


@dataclass(frozen=True)
class Cluster:
    """Where to run: `local` workers on this machine, or an existing scheduler's address or
    scheduler file."""

    local_workers: int | None = None
    address: str | None = None
    scheduler_file: str | None = None

    def describe(self) -> str:
        if self.local_workers:
            return f"local:{self.local_workers}"
        return self.address or str(self.scheduler_file)


def parse_cluster(text: str) -> Cluster:
    """`local:N`, `tcp://HOST:PORT` (any Dask scheme) or a scheduler JSON file; OptionError
    (--dask) otherwise, before any work."""
    text = (text or "").strip()
    if text.startswith("local:") or text == "local":
        count = text.partition(":")[2] or str(max(1, available_cpus()))
        if not count.isdigit() or int(count) < 1:
            raise OptionError(f"--dask {text!r}: expected local:N with N >= 1 workers",
                              option="--dask", usage=f"{text!r}: expected local:N, N >= 1")
        return Cluster(local_workers=int(count))
    if "://" in text:
        return Cluster(address=text)
    if text.endswith(".json"):
        if not os.path.isfile(text):
            raise OptionError(f"--dask {text!r}: scheduler file not found", option="--dask",
                              usage=f"{text!r}: scheduler file not found")
        return Cluster(scheduler_file=text)
    raise OptionError(f"--dask {text!r}: expected local:N, a scheduler address such as "
                      f"tcp://host:8786, or a scheduler .json file", option="--dask",
                      usage=f"{text!r} is not local:N, tcp://HOST:PORT or a scheduler .json")


def parts_folder(output: str | os.PathLike) -> Path:
    """`cat.fits` -> `cat.fits.parts/`, where the workers write their parts."""
    output = Path(output)
    return output.with_name(output.name + ".parts")


def _part_path(folder: Path, output: Path, index: int) -> Path:
    return folder / f"part-{index:05d}{split_suffix(output)[1]}"


#: Models opened in this (worker) process, by how they were opened: each worker opens a model
#: once and keeps it for every part it runs. Sessions never cross processes.
_MODELS: dict[tuple, BossNetModel] = {}


def _worker_model(model_path: str, options: RunOptions) -> BossNetModel:
    key = (model_path, options.provider, options.threads, options.precision, os.getpid())
    if key not in _MODELS:
        _MODELS[key] = open_model(model_path, options.provider, options.threads,
                                  options.precision)
    return _MODELS[key]


def run_part(paths: Sequence[str], part: str, model_path: str, options: RunOptions,
             checkpoint_seconds: float) -> int:
    """On a worker: the ordinary run to a file over one part's inputs (resuming the part's
    own progress file if a killed worker left one). Returns the number of rows written."""
    output = Path(part)
    check_output(output, allow_existing=True)
    run = _FileRun(output, options, resume=True, overwrite=False,
                   checkpoint_seconds=checkpoint_seconds,
                   warn=lambda text: warnings.warn(text, RuntimeWarning, stacklevel=2))
    with OutputLock(output):
        todo, all_paths = run.plan(list(paths))
        model = _worker_model(model_path, options)
        # The client ran the run's checks (kinds, recipe, demo warning) on all the inputs.
        table = run.execute(model, todo, all_paths, StageTimes(), checked=True)
    return len(table)


@contextmanager
def _client(cluster: Cluster) -> Iterator[Any]:
    """A connected distributed.Client (and the LocalCluster it owns, closed afterwards)."""
    try:
        import distributed
    except ImportError:
        raise OptionError("--dask needs the dask extra: pip install 'bossnet-onnx[dask]'",
                          option="--dask", usage="needs the dask extra: "
                                                 "pip install 'bossnet-onnx[dask]'") from None
    if cluster.local_workers:
        local = distributed.LocalCluster(n_workers=cluster.local_workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None)
        try:
            with distributed.Client(local) as client:
                yield client
        finally:
            local.close()
    elif cluster.address:
        with distributed.Client(cluster.address, timeout="30s") as client:
            yield client
    else:
        with distributed.Client(scheduler_file=cluster.scheduler_file, timeout="30s") as client:
            yield client


def _prepare_folder(folder: Path, resume: bool, overwrite: bool) -> None:
    """The parts folder: a real directory of ours (never a planted link), emptied for a new
    run, kept for --resume."""
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        folder.mkdir()
        return
    if not stat.S_ISDIR(info.st_mode):
        raise OutputPathError(f"{printable(folder)}: exists and is not a directory (a link or a "
                              f"file); remove it, the parts of a distributed run go there")
    if resume:
        return
    if not overwrite and any(folder.iterdir()):
        raise OutputPathError(f"{printable(folder)} holds the parts of an interrupted "
                              f"distributed run; rerun with --resume to continue it, or "
                              f"--overwrite to discard them and start over")
    shutil.rmtree(folder)
    folder.mkdir()


def _part_size(folder: Path, paths: Sequence[str], files_per_part: int | None,
               cluster: Cluster) -> int:
    """Files per part: the manifest's when resuming, else `files_per_part` or the default;
    recorded in the manifest before any part is run."""
    import json

    manifest = folder / MANIFEST
    digest = input_set_digest(paths)
    if manifest.exists():
        try:
            record = json.loads(manifest.read_text(encoding="utf-8"))
            size, inputs = int(record["files_per_part"]), str(record["inputs"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise OutputPathError(f"{printable(manifest)}: unreadable ({exc}); pass --overwrite "
                                  f"to start over") from None
        if inputs != digest or size < 1:
            raise OutputPathError(f"{printable(manifest)}: the interrupted run had other inputs; "
                                  f"resume with the same inputs, or --overwrite")
        return size
    if files_per_part is None:
        workers = cluster.local_workers or 8
        files_per_part = min(MAX_FILES_PER_PART,
                             max(1, -(-len(paths) // (workers * PARTS_PER_WORKER))))
    from ..atomic import write_atomically

    text = json.dumps({"files_per_part": files_per_part, "inputs": digest})

    def write(tmp: str) -> None:
        Path(tmp).write_text(text, encoding="utf-8")

    write_atomically(manifest, write)
    return files_per_part


def _done(part: Path, paths: Sequence[str]) -> bool:
    """Whether `part` is a finished part for exactly these inputs (a part made from other
    inputs is an error: the input set changed since the interrupted run)."""
    if not part.exists():
        return False
    meta = read_catalogue(part).meta
    if str(meta.get("INPUTS")) != input_set_digest(paths):
        raise OutputPathError(f"{printable(part)}: was made from other inputs than this run's "
                              f"part; resume with the same inputs, or --overwrite")
    return True


def predict_distributed(inputs: Any, output: str | os.PathLike,
                        options: RunOptions | None = None, *,
                        model: str | os.PathLike | None = None, dask: str | Cluster = "local:2",
                        resume: bool = False, overwrite: bool = False,
                        files_per_part: int | None = None,
                        on_progress: Callable[[int, int], None] | None = None,
                        **settings: Any) -> Table:
    """`predict_to_file` with the parts of the input set run on a Dask cluster; returns the
    merged catalogue table (the rows of `output`).

    `dask`: "local:N", "tcp://HOST:PORT" or a scheduler .json file (see module docstring).
    `options`/`settings`, `resume`, `overwrite` as in predict_to_file; `options.threads` is
    per worker (default: this machine's CPUs shared among local workers, else 1).
    `files_per_part`: files per part (default: about PARTS_PER_WORKER parts per worker, at
    most MAX_FILES_PER_PART files each; a resumed run keeps the interrupted run's cut).
    `on_progress(parts done, parts)` is called as parts finish.
    """
    options = options_from(options, settings)
    cluster = dask if isinstance(dask, Cluster) else parse_cluster(dask)
    if files_per_part is not None and files_per_part < 1:
        raise OptionError(f"files_per_part must be >= 1, got {files_per_part}",
                          option="--files-per-part", usage=f"{files_per_part} is not >= 1")
    if options.threads is None:
        share = available_cpus() // cluster.local_workers if cluster.local_workers else 1
        options = options.replace(threads=max(1, share))
    output = Path(output)
    check_output(output, overwrite=overwrite, allow_existing=resume)
    folder = parts_folder(output)
    with OutputLock(output):
        progress_file = partial_path(output)
        all_paths = file_inputs(inputs, options, [output, progress_file])
        from .sharding import parse_shard, select_shard

        paths = select_shard(all_paths, parse_shard(options.shard) if options.shard else None)
        if resume and output.exists() and not folder.exists():
            raise OutputPathError(f"{printable(output)}: already complete; nothing to resume "
                                  f"(pass --overwrite without --resume to rerun)")
        from ..model.files import resolve_model

        model_path = str(resolve_model(model))
        # Opened here once: the run's checks and its provenance come from the same model the
        # workers open, and a model that cannot be opened fails before any worker starts.
        local = open_for_run(model_path, options)
        try:
            check_run(local, paths, options)
            meta = {**run_metadata(local, options), **run_keys(all_paths, options)}
        finally:
            local.close()
        _prepare_folder(folder, resume, overwrite)
        size = _part_size(folder, paths, files_per_part, cluster)
        parts = [paths[i:i + size] for i in range(0, len(paths), size)]
        names = [_part_path(folder, output, i) for i in range(len(parts))]
        todo = [i for i, part in enumerate(parts) if not _done(names[i], part)]
        part_options = options.replace(shard=None, progress=False)
        if todo:
            _run_parts(cluster, [(parts[i], names[i]) for i in todo], model_path, part_options,
                       len(parts), on_progress)
        table = _merge_parts(names, meta)
        write_catalogue(table, output)
        shutil.rmtree(folder, ignore_errors=True)
    return table


def _run_parts(cluster: Cluster, jobs: list[tuple[list[str], Path]], model_path: str,
               options: RunOptions, n_parts: int,
               on_progress: Callable[[int, int], None] | None) -> None:
    """Every part on the cluster; the first failure is raised once all parts have ended (so
    the finished ones are saved for --resume)."""
    import distributed

    with _client(cluster) as client:
        futures = [client.submit(run_part, list(paths), str(part), model_path, options, 60.0,
                                 key=f"bossnet-part-{part.name}-{os.getpid()}", pure=False)
                   for paths, part in jobs]
        failures: list[BaseException] = []
        done = n_parts - len(jobs)
        for future in distributed.as_completed(futures):
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001  # reported after the other parts end
                failures.append(exc)
            else:
                done += 1
                if on_progress:
                    on_progress(done, n_parts)
        if failures:
            first = failures[0]
            text = str(first) if isinstance(first, BossNetError) else \
                f"unexpected {type(first).__name__}: {first}"
            raise BossNetError(f"{len(failures)} of {len(jobs)} parts failed ({text}); the "
                               f"finished parts are kept: rerun the same command with --resume")


def _merge_parts(names: Sequence[Path], meta: dict) -> Table:
    """The parts, in input order, as one table with the run's header."""
    tables = [read_catalogue(name) for name in names]
    if not tables:
        from ..outputs.catalogue import build_table

        return build_table([], meta=meta)
    table = vstack(tables, join_type="exact", metadata_conflicts="silent") \
        if len(tables) > 1 else tables[0]
    table.meta = dict(meta)
    return table
