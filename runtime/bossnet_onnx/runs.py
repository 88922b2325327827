"""Long runs to a catalogue file: periodic progress files, clean interruption, --resume.

The catalogue itself only ever appears complete (written atomically at the end). While a run
goes on, finished input files are saved every `checkpoint_seconds` to a progress file beside it
(`cat.fits` -> `cat.partial.fits`); SIGINT or SIGTERM saves it once more and stops.
`--resume` reads that file, skips the inputs it already holds, and on success writes the full
catalogue and deletes the progress file.
"""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from astropy.table import Table, vstack

from .catalogue import (
    SUFFIX_FORMATS,
    Result,
    _format_for,
    build_table,
    read_catalogue,
    write_catalogue,
)
from .errors import BossNetError, OutputError
from .pipeline import (
    DEFAULT_BATCH_ROWS,
    StageTimes,
    resolve_inputs,
    run_metadata,
    start_session,
    stream_results,
)

__all__ = ["predict_to_file", "partial_path", "Interrupted"]


class Interrupted(BossNetError):
    """The run was stopped by SIGINT/SIGTERM; the message says how to resume."""


def partial_path(output: str | os.PathLike) -> Path:
    """`cat.fits` -> `cat.partial.fits` (same type, so it can be read back)."""
    output = Path(output)
    _format_for(output)  # an unknown suffix is an OutputError naming the file
    name = output.name
    suffix = next(s for s in sorted(SUFFIX_FORMATS, key=len, reverse=True)
                  if name.lower().endswith(s))
    return output.with_name(name[: -len(suffix)] + ".partial" + name[-len(suffix):])


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (batch schedulers' stop) behaves like Ctrl-C for the duration of a run."""
    try:
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _completed_groups(results: list[Result], final: bool) -> list[Result]:
    """Results of whole input files only (the last file may still be running)."""
    if final or not results:
        return results
    last = results[-1].source
    cut = len(results)
    while cut > 0 and results[cut - 1].source == last:
        cut -= 1
    return results[:cut]


def predict_to_file(inputs: Iterable[str] | str, output: str | os.PathLike, *,
                    model=None, provider: str = "auto", draws: int = 20, seed: int = 0,
                    batch_size: int = DEFAULT_BATCH_ROWS, threads: int | None = None,
                    shard: str | None = None, recipe: str = "reference",
                    resume: bool = False, progress: bool = False,
                    checkpoint_seconds: float = 60.0, times: StageTimes | None = None,
                    precision: str = "fp32") -> Table:
    """Run `predict` into `output`, resumable; returns the full catalogue table."""
    output = Path(output)
    progress_file = partial_path(output)
    paths = resolve_inputs(inputs, shard)
    previous: Table | None = None
    if resume and progress_file.exists():
        previous = read_catalogue(progress_file)
        done = {str(s) for s in previous["path"]}
        paths = [p for p in paths if p not in done]
    elif resume and output.exists():
        raise OutputError(f"{output}: already complete; nothing to resume (remove it to rerun)")
    session, times = start_session(model, provider, threads, draws, batch_size, times,
                                   precision)
    meta = run_metadata(session, draws, seed, shard, recipe)
    if previous is not None:
        for key in ("MODELSHA", "NDRAWS", "SEED", "RECIPE", "PRECISN"):
            if str(previous.meta.get(key)) != str(meta[key]):
                raise OutputError(
                    f"{progress_file}: was made with {key}={previous.meta.get(key)!r}, this run "
                    f"has {meta[key]!r}; resume with the same model, --draws, --seed and --recipe"
                )
    results: list[Result] = []
    last_save = time.monotonic()

    def with_previous(kept: list[Result]) -> Table:
        """This run's rows after those a resumed progress file already holds."""
        table = build_table(kept, meta=meta)
        if previous is not None:
            table = vstack([previous, table], join_type="exact", metadata_conflicts="silent")
            table.meta = dict(meta)
        return table

    def save_progress(final: bool) -> int:
        table = with_previous(_completed_groups(results, final))
        write_catalogue(table, progress_file)
        return len(table)

    with _sigterm_as_interrupt():
        try:
            for res in stream_results(paths, session, draws=draws, seed=seed,
                                      batch_rows=batch_size, times=times, progress=progress,
                                      recipe=recipe):
                results.append(res)
                if time.monotonic() - last_save > checkpoint_seconds:
                    save_progress(final=False)
                    last_save = time.monotonic()
        except KeyboardInterrupt:
            n = save_progress(final=False)
            raise Interrupted(
                f"interrupted: {n} spectra saved to {progress_file}; no catalogue written to "
                f"{output}. Rerun the same command with --resume to continue"
            ) from None
    t0 = time.perf_counter()
    table = with_previous(results)
    write_catalogue(table, output)
    times.write += time.perf_counter() - t0
    if progress_file.exists():
        progress_file.unlink()
    return table
