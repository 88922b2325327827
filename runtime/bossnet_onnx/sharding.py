"""Splitting a run over machines (`--shard K/N`) and merging the shard catalogues back.

Shard K of N takes every N-th input of the *sorted* input list, starting at the K-th (K is
1-based, so SLURM's `--array=1-N` maps to `--shard $SLURM_ARRAY_TASK_ID/N`). Draws are seeded by
each spectrum's identity, so the rows a shard writes are identical to the rows of an unsharded
run with the same seed, and `merge` can check that nothing is missing or duplicated.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from astropy.table import Table, vstack

from .catalogue import read_catalogue, write_catalogue
from .errors import OutputError

__all__ = ["Shard", "parse_shard", "select_shard", "merge_catalogues", "PROVENANCE_KEYS"]

#: Header keys that must agree between shards for a merge to make sense.
PROVENANCE_KEYS = ("MODEL", "MODELSHA", "NDRAWS", "SEED", "PREPROC", "RECIPE")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """'K/N' with 1 <= K <= N; ValueError with the fix otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match:
        raise ValueError(f"--shard {text!r}: expected K/N, e.g. 3/8 (K from 1 to N)")
    k, n = int(match.group(1)), int(match.group(2))
    if n < 1 or not 1 <= k <= n:
        raise ValueError(f"--shard {text!r}: K must be between 1 and N (got K={k}, N={n})")
    return Shard(k, n)


def select_shard(paths: Sequence[str], shard: Shard | None) -> list[str]:
    """This shard's inputs: sorted, then every N-th starting at K-1."""
    if shard is None:
        return list(paths)
    return sorted(paths)[shard.index - 1::shard.count]


def merge_catalogues(parts: Sequence[str | os.PathLike], output: str | os.PathLike) -> Table:
    """Concatenate shard catalogues, refusing mixed provenance, duplicates and missing shards."""
    if not parts:
        raise OutputError("merge: no shard catalogues given")
    tables = [read_catalogue(p) for p in parts]
    first = tables[0].meta
    for path, table in zip(parts, tables):
        for key in PROVENANCE_KEYS:
            if key in first and str(table.meta.get(key)) != str(first.get(key)):
                raise OutputError(
                    f"merge: {path} has {key}={table.meta.get(key)!r} but {parts[0]} has "
                    f"{first.get(key)!r}; shards of one catalogue must share model, seed, draws"
                )
    shard_ids = [str(t.meta.get("SHARD", "")) for t in tables]
    if all(shard_ids):
        counts = {s.split("/")[1] for s in shard_ids}
        if len(counts) != 1:
            raise OutputError(f"merge: shards come from different splits: {sorted(set(shard_ids))}")
        n = int(counts.pop())
        seen = [int(s.split("/")[0]) for s in shard_ids]
        repeated = sorted({k for k in seen if seen.count(k) > 1})
        if repeated:
            raise OutputError(f"merge: shard(s) {', '.join(f'{k}/{n}' for k in repeated)} given twice")
        missing = sorted(set(range(1, n + 1)) - set(seen))
        if missing:
            raise OutputError(
                f"merge: missing shard(s) {', '.join(f'{k}/{n}' for k in missing)}; run them "
                f"(or pass their catalogues) before merging"
            )
    merged = vstack(tables, join_type="exact", metadata_conflicts="silent")
    keys = [f"{os.path.basename(str(s))}|{h}|{r}" for s, h, r in
            zip(merged["path"], merged["hdu"], merged["row"])]
    uniq, n_seen = np.unique(keys, return_counts=True)
    dups = uniq[n_seen > 1]
    if len(dups):
        raise OutputError(f"merge: {len(dups)} spectra appear more than once, e.g. {dups[0]}")
    merged.sort(["path", "hdu", "row"])
    merged.meta = {k: v for k, v in first.items() if k != "SHARD"}
    merged.meta["NSHARDS"] = len(tables)
    write_catalogue(merged, output)
    return merged
