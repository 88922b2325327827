"""Long runs to a catalogue file: periodic progress files, clean interruption, --resume.

The catalogue itself only ever appears complete (written atomically at the end). While a run
goes on, finished input files are saved every `checkpoint_seconds` to a progress file beside it
(`cat.fits` -> `cat.partial.fits`, same type, CSV included); SIGINT or SIGTERM saves it once
more and stops. `--resume` reads that file, checks that it was made by the same run (input set,
shard, model, draws, seed: one line naming the first difference otherwise), skips the inputs it
already holds, and on success writes the full catalogue and deletes the progress file.

Nothing computed is lost to a later fault:
- the output path is checked (`output_paths.check_output`) and locked (`output_lock`) before
  any spectrum is read, so a second run on the same `-o` stops at once, naming the holder;
- a failed checkpoint is retried, reported through `on_warning`, and tried again at the next
  interval; the rows stay in memory meanwhile;
- a failed final write (full disk, permissions) saves every row to the progress file (or, if
  that fails too, to the temporary directory) and says how to finish with `--resume`.
"""
from __future__ import annotations

import hashlib
import os
import signal
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from astropy.table import Table, vstack

from ..errors import BossNetError, OutputError, OutputPathError
from ..outputs.catalogue import (
    Result,
    build_table,
    read_catalogue,
    remove_catalogue,
    split_suffix,
    stored_text,
    write_catalogue,
)
from ..textsafe import printable
from ..wording import plural
from .lock import OutputLock
from .options import RunOptions, options_from
from .output_paths import check_output
from .stream import StageTimes, check_run, open_for_run, resolve_inputs, run_metadata, stream

if TYPE_CHECKING:
    from ..model.session import BossNetModel

__all__ = ["predict_to_file", "run_keys", "file_inputs", "partial_path", "Interrupted", "input_set_digest",
           "RESUME_KEYS", "CHECKPOINT_RETRY_DELAYS"]

#: Header keys a progress file must share with the run resuming it (first difference named).
RESUME_KEYS = ("INPUTS", "SHARD", "MODELSHA", "NDRAWS", "SEED", "RECIPE")
#: Pauses before the 2nd and 3rd try of a failed checkpoint (then: next interval).
CHECKPOINT_RETRY_DELAYS = (0.2, 1.0)


class Interrupted(BossNetError):
    """The run was stopped by SIGINT/SIGTERM; the message says how to resume."""


def partial_path(output: str | os.PathLike) -> Path:
    """`cat.fits` -> `cat.partial.fits` (same type, so it can be read back)."""
    stem, suffix = split_suffix(output)  # an unknown suffix is an OutputError naming the file
    return Path(output).with_name(f"{stem}.partial{suffix}")


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


#: Progress-file key: True when the last file in it may be partly done (saved mid-file).
PARTIAL_LAST_KEY = "PARTLAST"


def _resume_plan(paths: list[str], previous: Table, progress_file: Path
                 ) -> tuple[list[str], set[tuple[str, int, int]]]:
    """Inputs still to read, and the spectra of a partly saved file to pass over.

    Checkpoints save every finished spectrum, in input order, so only the last file in the
    progress file can be partly done (a big mwmVisit file checkpointed within itself); such a
    progress file says so (PARTLAST) and that file is read again with its saved spectra
    skipped. Earlier files are skipped whole; a last file that failed as a whole (HDU -1) is
    done too.
    """
    stored = [str(s) for s in previous["path"]]
    if not stored:
        return paths, set()
    last = stored[-1]
    last_rows = [(int(h), int(r)) for s, h, r in zip(previous["path"], previous["hdu"],
                                                    previous["row"]) if str(s) == last]
    partial = bool(previous.meta.get(PARTIAL_LAST_KEY, False)) and all(h >= 0 for h, _ in last_rows)
    done = set(stored) - ({last} if partial else set())
    todo = [p for p in paths if stored_text(p, progress_file) not in done]
    skip = {(p, h, r) for p in todo if stored_text(p, progress_file) == last
            for h, r in last_rows}
    return todo, skip


def input_set_digest(paths: Sequence[str]) -> str:
    """sha256 of the sorted absolute input paths: which files a run was asked to process."""
    text = "\n".join(sorted(os.path.abspath(p) for p in paths))
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _check_same_run(progress_file: Path, previous: dict, meta: dict,
                    keys: Sequence[str]) -> None:
    for key in keys:
        if str(previous.get(key)) != str(meta.get(key)):
            what = {"INPUTS": "the same inputs", "SHARD": "the same --shard",
                    "MODELSHA": "the same model", "NDRAWS": "the same --draws",
                    "SEED": "the same --seed", "RECIPE": "the same --recipe",
                    "PRECISN": "the same --precision"}.get(key, f"the same {key}")
            raise OutputPathError(
                f"{printable(progress_file)}: was made with {key}={previous.get(key)!r}, this run "
                f"has {meta.get(key)!r}; resume with {what} (or pass --overwrite to discard "
                f"the progress file and start over)"
            )


def _rescue_path(progress_file: Path) -> Path:
    return Path(tempfile.gettempdir()) / f"{os.getpid()}-{progress_file.name}"


def predict_to_file(inputs: Any, output: str | os.PathLike, options: RunOptions | None = None,
                    *, model: str | os.PathLike | BossNetModel | None = None,
                    resume: bool = False, overwrite: bool = False,
                    checkpoint_seconds: float = 60.0, times: StageTimes | None = None,
                    on_warning: Callable[[str], None] | None = None, **settings: Any) -> Table:
    """Run `predict` into `output`, resumable; returns the full catalogue table.

    `options` (a RunOptions) and keyword `settings` as in `bossnet_onnx.predict`. Refuses before
    any work (OutputPathError) an output that exists (unless `overwrite`), that cannot be
    written, or whose progress file from an interrupted run would be discarded (pass
    `resume=True` to continue it, `overwrite=True` to start over). OutputLockedError if another
    run is writing `output`. Checkpoint failures are reported to `on_warning` (default:
    `warnings.warn`) and are not fatal.
    """
    options = options_from(options, settings)
    output = Path(output)
    check_output(output, overwrite=overwrite, allow_existing=resume)
    run = _FileRun(output, options, resume=resume, overwrite=overwrite,
                   checkpoint_seconds=checkpoint_seconds,
                   warn=on_warning or (lambda text: warnings.warn(text, RuntimeWarning,
                                                                  stacklevel=4)))
    with OutputLock(output):
        paths, all_paths = run.plan(inputs)
        opened = open_for_run(model, options, times)
        return run.execute(opened, paths, all_paths, times)


def run_keys(all_paths: Sequence[str], options: RunOptions) -> dict:
    """Header keys that tie a catalogue (or progress file) to its input set and shard."""
    keys: dict[str, Any] = {"INPUTS": input_set_digest(all_paths), "NINPUTS": len(all_paths)}
    if options.shard:
        keys["SHARD"] = options.shard
    return keys


def file_inputs(inputs: Any, options: RunOptions, own: Sequence[Path]) -> list[str]:
    """All input paths of a run to a file (before its shard is taken): files only, none of
    them the run's own output or progress files."""
    all_paths = resolve_inputs(inputs, options, shard=False)
    if not all(isinstance(p, str) for p in all_paths):
        raise TypeError("predict_to_file reads files (its progress file records their paths); "
                        "for spectra in memory call predict() and write the table")
    real = {os.path.realpath(p) for p in own}
    clash = next((p for p in all_paths if os.path.realpath(p) in real), None)
    if clash is not None:
        raise OutputPathError(f"{printable(clash)} is both an input and this run's output (or "
                              f"progress file); narrow the inputs (a glob such as *.fits matches "
                              f"the catalogue too) or write elsewhere")
    return all_paths


class _FileRun:
    """One run into one catalogue file, once its path is checked and locked: the plan (which
    inputs, what a progress file already holds) and the execution (stream, checkpoints,
    interruption, the final atomic write)."""

    def __init__(self, output: Path, options: RunOptions, *, resume: bool, overwrite: bool,
                 checkpoint_seconds: float, warn: Callable[[str], None]):
        self.output, self.options = output, options
        self.resume, self.overwrite = resume, overwrite
        self.checkpoint_seconds, self.warn = checkpoint_seconds, warn
        self.progress_file = partial_path(output)
        self.previous: Table | None = None
        self.skip: set[tuple[str, int, int]] = set()
        self.keys: dict[str, Any] = {}

    def plan(self, inputs: Any) -> tuple[list[str], list[str]]:
        """(this run's paths, all input paths); reads a progress file when resuming."""
        from .sharding import parse_shard, select_shard

        options, progress_file, output = self.options, self.progress_file, self.output
        all_paths = file_inputs(inputs, options, [output, progress_file])
        paths = select_shard(all_paths, parse_shard(options.shard) if options.shard else None)
        self.keys = run_keys(all_paths, options)
        if progress_file.exists() and not self.resume and not self.overwrite:
            raise OutputPathError(
                f"{printable(progress_file)} holds the rows of an interrupted run; rerun with "
                f"--resume to continue it, or --overwrite to discard it and start over"
            )
        if self.resume and progress_file.exists():
            self.previous = read_catalogue(progress_file)
            _check_same_run(progress_file, self.previous.meta,
                            {"SEED": options.seed, "NDRAWS": options.draws, **self.keys},
                            [k for k in RESUME_KEYS if k not in ("MODELSHA", "RECIPE")])
            paths, self.skip = _resume_plan(paths, self.previous, progress_file)
        elif self.resume and output.exists():
            raise OutputPathError(f"{printable(output)}: already complete; nothing to resume "
                                  f"(pass --overwrite without --resume to rerun)")
        return paths, all_paths

    def execute(self, session: BossNetModel, paths: list[str], all_paths: list[str],
                times: StageTimes | None, checked: bool = False) -> Table:
        """Stream `paths` into the catalogue, checkpointing; the table written. `checked`:
        the caller ran `check_run` on the whole input set already (a distributed run)."""
        options, progress_file, output = self.options, self.progress_file, self.output
        previous, checkpoint_seconds, warn = self.previous, self.checkpoint_seconds, self.warn
        times = times if times is not None else StageTimes()
        if not checked:
            check_run(session, paths, options)
        meta = {**run_metadata(session, options), **self.keys}
        if previous is not None:
            _check_same_run(progress_file, previous.meta, meta, ["MODELSHA", "RECIPE", "PRECISN"])
        results: list[Result] = []
        saved = {"rows": len(previous) if previous is not None else 0, "error": ""}
        last_save = time.monotonic()

        def with_previous(kept: list[Result]) -> Table:
            """This run's rows after those a resumed progress file already holds."""
            table = build_table(kept, meta=meta)
            if previous is not None:
                table = vstack([previous, table], join_type="exact", metadata_conflicts="silent")
                table.meta = dict(meta)
            return table

        def save_progress() -> int | None:
            """Rows now in the progress file, or None when every try failed (reported)."""
            table = with_previous(results)  # every finished spectrum: big files too
            table.meta[PARTIAL_LAST_KEY] = not finished
            for delay in (0.0, *CHECKPOINT_RETRY_DELAYS):
                time.sleep(delay)
                try:
                    write_catalogue(table, progress_file)
                except OutputError as exc:
                    saved["error"] = str(exc)
                    continue
                saved["rows"], saved["error"] = len(table), ""
                return len(table)
            warn(f"checkpoint failed after {1 + len(CHECKPOINT_RETRY_DELAYS)} tries: "
                 f"{saved['error']}; {plural(len(table), 'spectrum', 'spectra')} kept in memory, "
                 f"{printable(progress_file)} holds {saved['rows']}; next try in "
                 f"{checkpoint_seconds:.0f} s")
            return None

        def where_saved() -> str:
            if saved["error"]:
                return (f"saving progress failed ({saved['error']}); {printable(progress_file)} "
                        f"holds {saved['rows']} spectra from the last checkpoint")
            return (f"{plural(int(str(saved['rows'])), 'spectrum', 'spectra')} saved to "
                    f"{printable(progress_file)}")

        finished = False
        with _sigterm_as_interrupt():
            try:
                for res in stream(session, paths, options, skip=self.skip, times=times,
                                      checked=True):
                    results.append(res)
                    if time.monotonic() - last_save > checkpoint_seconds:
                        save_progress()
                        last_save = time.monotonic()
                t0 = time.perf_counter()
                table = with_previous(results)
                finished = True
                write_catalogue(table, output)
            except KeyboardInterrupt:
                save_progress()
                raise Interrupted(
                    f"interrupted: {where_saved()}; no catalogue written to {printable(output)}. "
                    f"Rerun the same command with --resume to continue"
                ) from None
            except Exception as exc:
                if finished and isinstance(exc, OutputError):
                    # The final write failed: every row is computed, keep them all for --resume.
                    raise OutputError(f"{exc}; {_keep_for_resume(table, progress_file, output)}"
                                      ) from exc
                # A fault after the work started: keep what was computed before reporting it.
                save_progress()
                if isinstance(exc, BossNetError):
                    exc.args = (f"{exc}; {where_saved()}: rerun the same command with --resume to "
                                f"continue",)
                raise
        times.write += time.perf_counter() - t0
        try:
            remove_catalogue(progress_file)  # CSV: with its provenance sidecar
        except FileNotFoundError:
            pass
        except OSError as exc:
            warn(f"could not remove {printable(progress_file)} ({exc.strerror or exc}); "
                 f"{printable(output)} is complete, remove it by hand")
        return table


def _keep_for_resume(table: Table, progress_file: Path, output: Path) -> str:
    """Save every computed row where --resume finds it (or, failing that, in the temp dir);
    the text says where they are and how to finish."""
    try:
        write_catalogue(table, progress_file)
        return (f"all {len(table)} spectra are saved in {printable(progress_file)}: fix the cause "
                f"(free space, permissions) and rerun the same command with --resume to write "
                f"{printable(output)}")
    except OutputError as exc:
        first = str(exc)
    rescue = _rescue_path(progress_file)
    try:
        write_catalogue(table, rescue)
    except OutputError:
        return (f"saving the rows failed too ({first}); the progress file, if any, holds the "
                f"last checkpoint: rerun with --resume once the cause is fixed")
    return (f"saving them beside it failed too ({first}); all {len(table)} spectra are saved in "
            f"{printable(rescue)}: move it to {printable(progress_file)} and rerun the same "
            f"command with --resume")
