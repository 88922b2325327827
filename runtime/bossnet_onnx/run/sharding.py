"""Splitting a run over machines (`--shard K/N`) and merging the shard catalogues back.

Shard K of N takes every N-th input of the *sorted* input list, starting at the K-th (K is
1-based; inside a SLURM job array `--shard auto` takes K and N from the array, see
`slurm_shard`). Draws are seeded by
each spectrum's identity, so the rows a shard writes are identical to the rows of an unsharded
run with the same seed, and `merge` can check that nothing is missing or duplicated.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from astropy.table import Table, vstack

from ..errors import OutputError
from ..outputs.catalogue import read_catalogue, row_identities, write_catalogue
from ..textsafe import printable
from ..wording import plural
from .lock import OutputLock
from .output_paths import check_output

__all__ = ["Shard", "parse_shard", "slurm_shard", "SLURM_VARIABLES", "select_shard",
           "merge_catalogues", "PROVENANCE_KEYS"]

#: Header keys that must agree between shards for a merge to make sense.
PROVENANCE_KEYS = ("MODEL", "MODELSHA", "NDRAWS", "SEED", "PREPROC", "RECIPE", "NINPUTS", "PRECISN")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


#: SLURM job-array variables `--shard auto` reads (sbatch sets them in every array task)
SLURM_VARIABLES = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT")


def parse_shard(text: str, environ: Mapping[str, str] | None = None) -> Shard:
    """'K/N' with 1 <= K <= N, or 'auto' (K and N from a SLURM job array, `slurm_shard`);
    ValueError with the fix otherwise.

    Callers keep `str(parse_shard(text))`, never the text: the SHARD header of a catalogue is
    always K/N, so that `merge` can check the shards whatever the command line said.
    """
    if (text or "").strip().lower() == "auto":
        return slurm_shard(os.environ if environ is None else environ)
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match:
        raise ValueError(f"--shard {text!r}: expected K/N, e.g. 3/8 (K from 1 to N), or auto "
                         f"(inside a SLURM job array)")
    k, n = int(match.group(1)), int(match.group(2))
    if n < 1 or not 1 <= k <= n:
        raise ValueError(f"--shard {text!r}: K must be between 1 and N (got K={k}, N={n})")
    return Shard(k, n)


def slurm_shard(environ: Mapping[str, str]) -> Shard:
    """This array task's shard: N = SLURM_ARRAY_TASK_COUNT, K = its position in the array
    ((SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP + 1), so
    `--array=0-7`, `--array=1-8` and `--array=10-24:2` all give shards 1/8 .. 8/8. An array
    whose ids are not one evenly spaced range (`--array=1,4,9`) is refused: its tasks could not
    say which shard they are, and a merge would find shards missing."""
    missing = [name for name in SLURM_VARIABLES if not str(environ.get(name, "")).strip()]
    if missing:
        raise ValueError(f"--shard auto: {', '.join(missing)} not set; it takes K and N from a "
                         f"SLURM job array (sbatch --array=1-N, docs/clusters.md); outside one "
                         f"give --shard K/N")
    try:
        task, low, count = (int(str(environ[name]).strip()) for name in SLURM_VARIABLES)
        step = int(str(environ.get("SLURM_ARRAY_TASK_STEP", "") or "1").strip())
    except ValueError:
        shown = ", ".join(f"{n}={environ.get(n)!r}" for n in (*SLURM_VARIABLES,
                                                             "SLURM_ARRAY_TASK_STEP"))
        raise ValueError(f"--shard auto: SLURM variables are not whole numbers ({shown})") \
            from None
    offset = task - low
    if count < 1 or step < 1 or offset < 0 or offset % step or offset // step >= count:
        raise ValueError(f"--shard auto: array task {task} is not one of {count} evenly spaced "
                         f"tasks from {low} in steps of {step}; submit the array as one range "
                         f"(sbatch --array=1-N) or give --shard K/N")
    return Shard(offset // step + 1, count)


def select_shard(paths: Sequence[str], shard: Shard | None) -> list[str]:
    """This shard's inputs: sorted, then every N-th starting at K-1."""
    if shard is None:
        return list(paths)
    return sorted(paths)[shard.index - 1::shard.count]


def _shard_of(path: str | os.PathLike, text: str) -> Shard:
    try:
        return parse_shard(text)
    except ValueError:
        raise OutputError(f"merge: {printable(path)} has SHARD={text!r}, not K/N") from None


def merge_catalogues(parts: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                     overwrite: bool = False) -> Table:
    """Concatenate shard catalogues, refusing mixed provenance, duplicates and missing shards.

    `output` is checked (and locked) before any part is read; an existing one is replaced only
    with `overwrite`. Every problem with a part is an OutputError naming it.
    """
    if not parts:
        raise OutputError("merge: no shard catalogues given")
    check_output(output, overwrite=overwrite)
    with OutputLock(output):
        return _merge(parts, output)


def _merge(parts: Sequence[str | os.PathLike], output: str | os.PathLike) -> Table:
    resolved_out = os.path.realpath(output)
    for path in parts:
        if os.path.realpath(path) == resolved_out:
            raise OutputError(f"merge: {printable(path)} is also the output; choose another -o")
    tables = []
    for path in parts:
        try:
            tables.append(read_catalogue(path))
        except OutputError as exc:
            raise OutputError(f"merge: {exc}") from None
    first = tables[0].meta
    columns = tables[0].colnames
    for path, table in zip(parts, tables):
        if table.colnames != columns:
            extra = sorted(set(table.colnames) ^ set(columns))
            raise OutputError(
                f"merge: {printable(path)} has other columns than {printable(parts[0])} "
                f"({', '.join(extra[:6]) or 'same names, other order'}); merge only catalogues "
                f"written by bossnet-onnx predict with the same version"
            )
        for key in PROVENANCE_KEYS:
            if key in first and str(table.meta.get(key)) != str(first.get(key)):
                raise OutputError(
                    f"merge: {printable(path)} has {key}={table.meta.get(key)!r} but "
                    f"{printable(parts[0])} has {first.get(key)!r}; shards of one catalogue must "
                    f"share model, seed, draws and input list"
                )
    shard_ids = [str(t.meta.get("SHARD", "") or "") for t in tables]
    if any(shard_ids) and not all(shard_ids):
        lone = next(p for p, s in zip(parts, shard_ids) if not s)
        raise OutputError(f"merge: {printable(lone)} is not a shard (no SHARD in its header) "
                          f"but other parts are")
    if all(shard_ids):
        shards = [_shard_of(p, s) for p, s in zip(parts, shard_ids)]
        counts = {s.count for s in shards}
        if len(counts) != 1:
            raise OutputError(f"merge: shards come from different splits: {sorted(set(shard_ids))}")
        n = counts.pop()
        seen = [s.index for s in shards]
        repeated = sorted({k for k in seen if seen.count(k) > 1})
        if repeated:
            raise OutputError(f"merge: shard(s) {', '.join(f'{k}/{n}' for k in repeated)} given twice")
        missing = sorted(set(range(1, n + 1)) - set(seen))
        if missing:
            raise OutputError(
                f"merge: missing shard(s) {', '.join(f'{k}/{n}' for k in missing)}; run them "
                f"(or pass their catalogues) before merging"
            )
    try:
        merged = vstack(tables, join_type="exact", metadata_conflicts="silent")
    except Exception as exc:  # noqa: BLE001 - e.g. a column of another type in one part
        raise OutputError(f"merge: the catalogues do not stack ({printable(exc)})") from None
    keys = row_identities(merged)
    uniq, n_seen = np.unique(keys, return_counts=True)
    dups = uniq[n_seen > 1]
    if len(dups):
        what = plural(len(dups), "spectrum appears", "spectra appear")
        raise OutputError(f"merge: {what} more than once, e.g. {printable(dups[0])}")
    merged.sort(["path", "hdu", "row"])
    merged.meta = {k: v for k, v in first.items() if k != "SHARD"}
    merged.meta["NSHARDS"] = len(tables)
    write_catalogue(merged, output)
    return merged
