"""Splitting a run over machines (`--shard K/N`) and merging the shard catalogues back.

Shard K of N takes every N-th input of the *sorted* input list, starting at the K-th (K is
1-based; inside a SLURM job array `--shard auto` takes K and N from the array, see
`slurm_shard`). Draws are seeded by
each spectrum's identity, so the rows a shard writes are identical to the rows of an unsharded
run with the same seed, and `merge` can check that nothing is missing or duplicated.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from astropy.table import MaskedColumn, Table

from ..errors import OutputError
from ..outputs.catalogue import read_catalogue, row_identities, write_catalogue
from ..textsafe import printable, shown
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

    Parts are read one at a time, twice: first for their headers, columns and row identities
    (16-byte digests), all checked before anything is stacked; then each part's rows are copied
    into one table allocated at its final size. Memory is the merged table plus one part, not
    every part plus their stack.
    """
    if not parts:
        raise OutputError("merge: no shard catalogues given")
    check_output(output, overwrite=overwrite)
    with OutputLock(output):
        return _merge(parts, output)


@dataclass
class _Survey:
    """What the first pass keeps of the parts: no rows, only what the checks need."""

    meta: dict
    columns: list[str]
    dtypes: dict[str, np.dtype]
    masked: set[str]
    provenance: list[dict[str, object]]
    shard_ids: list[str]
    rows: list[int]
    digests: list[np.ndarray]


def _read(path: str | os.PathLike) -> Table:
    try:
        return read_catalogue(path)
    except OutputError as exc:
        raise OutputError(f"merge: {exc}") from None


def _digests(table: Table) -> np.ndarray:
    keys = row_identities(table)
    return np.array([hashlib.blake2b(k.encode("utf-8", "surrogatepass"), digest_size=16).digest()
                     for k in keys], dtype="S16")


def _survey(parts: Sequence[str | os.PathLike]) -> _Survey:
    survey: _Survey | None = None
    for path in parts:
        table = _read(path)
        provenance = {key: table.meta.get(key) for key in PROVENANCE_KEYS}
        if survey is None:
            survey = _Survey(meta=dict(table.meta), columns=list(table.colnames),
                             dtypes={n: table[n].dtype for n in table.colnames}, masked=set(),
                             provenance=[], shard_ids=[], rows=[], digests=[])
        elif table.colnames != survey.columns:
            extra = sorted(set(table.colnames) ^ set(survey.columns))
            raise OutputError(
                f"merge: {printable(path)} has other columns than {printable(parts[0])} "
                f"({', '.join(shown(e) for e in extra[:6]) or 'same names, other order'}); "
                f"merge only catalogues written by bossnet-onnx predict with the same version"
            )
        for name in survey.columns:
            try:
                survey.dtypes[name] = np.promote_types(survey.dtypes[name], table[name].dtype)
            except TypeError:
                raise OutputError(f"merge: {printable(path)}: column {shown(name)} holds "
                                  f"{table[name].dtype} where {printable(parts[0])} holds "
                                  f"{survey.dtypes[name]}; the catalogues do not stack") from None
            if getattr(table[name], "mask", None) is not None and np.any(table[name].mask):
                survey.masked.add(name)
        survey.provenance.append(provenance)
        survey.shard_ids.append(str(table.meta.get("SHARD", "") or ""))
        survey.rows.append(len(table))
        survey.digests.append(_digests(table))
        del table
    assert survey is not None
    return survey


def _check_provenance(parts: Sequence[str | os.PathLike], survey: _Survey) -> None:
    """Every part against the first, key by key: a key one part has and another lacks is a
    difference too (checking only the keys of the first part let two models merge)."""
    first = survey.provenance[0]
    for path, provenance in zip(parts, survey.provenance):
        for key in PROVENANCE_KEYS:
            if str(provenance[key]) != str(first[key]):
                raise OutputError(
                    f"merge: {printable(path)} has {_setting(key, provenance[key])} but "
                    f"{printable(parts[0])} has {_setting(key, first[key])}; shards of one "
                    f"catalogue must share model, seed, draws and input list"
                )


def _setting(key: str, value: object) -> str:
    return f"no {key}" if value is None else f"{key}={shown(value)}"


def _check_shards(parts: Sequence[str | os.PathLike], shard_ids: list[str]) -> None:
    if any(shard_ids) and not all(shard_ids):
        lone = next(p for p, s in zip(parts, shard_ids) if not s)
        raise OutputError(f"merge: {printable(lone)} is not a shard (no SHARD in its header) "
                          f"but other parts are")
    if not all(shard_ids):
        return
    shards = [_shard_of(p, s) for p, s in zip(parts, shard_ids)]
    counts = {s.count for s in shards}
    if len(counts) != 1:
        raise OutputError(f"merge: shards come from different splits: "
                          f"{', '.join(sorted({str(s) for s in shards}))}")
    n = counts.pop()
    seen = Counter(s.index for s in shards)
    repeated = sorted(k for k, c in seen.items() if c > 1)
    if repeated:
        raise OutputError(f"merge: shard(s) {', '.join(f'{k}/{n}' for k in repeated[:10])} "
                          f"given twice")
    if len(seen) < n:
        # Only as many numbers as parts are looked at: a header may claim a billion shards.
        first = list(itertools.islice((k for k in itertools.count(1) if k not in seen), 5))
        more = n - len(seen) - len(first)
        raise OutputError(
            f"merge: missing shard(s) {', '.join(f'{k}/{n}' for k in first)}"
            + (f" and {more:,} more" if more > 0 else "")
            + "; run them (or pass their catalogues) before merging"
        )


def _stack(parts: Sequence[str | os.PathLike], survey: _Survey) -> Table:
    """One table of the final size, filled part by part (second read of each part)."""
    total = sum(survey.rows)
    merged: Table | None = None
    start = 0
    for path, rows in zip(parts, survey.rows):
        table = _read(path)
        if len(table) != rows:
            raise OutputError(f"merge: {printable(path)} changed while merging "
                              f"({rows} rows, now {len(table)})")
        if merged is None and (rows or total == 0):
            # Row 0 repeated: the final size with every column's class, unit and format.
            merged = table[np.zeros(total, dtype=np.intp)]
            for name in survey.columns:
                column = merged[name]
                if column.dtype != survey.dtypes[name]:
                    column = column.astype(survey.dtypes[name])
                if name in survey.masked and not isinstance(column, MaskedColumn):
                    column = MaskedColumn(column)
                if isinstance(column, MaskedColumn):
                    column.mask = np.zeros(total, dtype=bool)
                if column is not merged[name]:
                    merged.replace_column(name, column)
        if rows:
            assert merged is not None
            for name in survey.columns:
                merged[name][start:start + rows] = table[name]
            start += rows
        del table
    assert merged is not None
    return merged


def _merge(parts: Sequence[str | os.PathLike], output: str | os.PathLike) -> Table:
    resolved_out = os.path.realpath(output)
    for path in parts:
        if os.path.realpath(path) == resolved_out:
            raise OutputError(f"merge: {printable(path)} is also the output; choose another -o")
    survey = _survey(parts)
    _check_provenance(parts, survey)
    _check_shards(parts, survey.shard_ids)
    digests = np.concatenate(survey.digests) if survey.digests else np.array([], dtype="S16")
    uniq, n_seen = np.unique(digests, return_counts=True)
    if np.any(n_seen > 1):
        dups = set(uniq[n_seen > 1].tolist())
        example = _first_duplicate(parts, survey, dups)
        what = plural(int(np.sum(n_seen > 1)), "spectrum appears", "spectra appear")
        raise OutputError(f"merge: {what} more than once, e.g. {printable(example)}")
    del uniq, n_seen, digests
    merged = _stack(parts, survey)
    merged.sort(["path", "hdu", "row"])
    merged.meta = {k: v for k, v in survey.meta.items() if k != "SHARD"}
    merged.meta["NSHARDS"] = len(parts)
    write_catalogue(merged, output)
    return merged


def _first_duplicate(parts: Sequence[str | os.PathLike], survey: _Survey, dups: set) -> str:
    """The identity of one duplicated row, for the message (re-read from its part)."""
    for path, digests in zip(parts, survey.digests):
        hits = [i for i, d in enumerate(digests.tolist()) if d in dups]
        if hits:
            return row_identities(_read(path)[hits[:1]])[0]
    return "?"
