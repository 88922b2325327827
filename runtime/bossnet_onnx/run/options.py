"""The options of a run, as one frozen object validated once.

Every way of running BOSS Net (`bossnet_onnx.predict`, `Model.predict`, the CLI with or without
`-o`, the distributed mode) takes one `RunOptions`, so an option is added, checked and documented
in exactly one place and reaches every path without being threaded through signatures. A bad
value is an `OptionError` (a ValueError) naming the option; the CLI turns it into a usage error
(exit 2) with the same words.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import OptionError
from ..model.engines import PROVIDERS
from ..model.precision import PRECISIONS
from ..science.preprocess import RECIPES
from ..science.uncertainty import check_draws

__all__ = ["RunOptions", "DEFAULT_BATCH_ROWS", "options_from"]

#: Model rows gathered per model round. The full BOSS network needs ~4 MB of activations per
#: row; 32 rows run as fast as 256 (measured: 4.7 vs 5.0 ms/row on 2 cores) at a fifth of the
#: memory. The engine runs them in calls of its fixed shape (BossNetModel.call_rows).
DEFAULT_BATCH_ROWS = 32


def _choice(option: str, name: str, value: object, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise OptionError(f"{name} must be one of {', '.join(choices)}, got {value!r}",
                          option=option, usage=f"{value!r} is not one of {', '.join(choices)}")
    return value.lower()


def _integer(option: str, name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise OptionError(f"{name} must be >= {minimum}, got {value!r}", option=option,
                          usage=f"{value!r} is not an integer >= {minimum}")
    return int(value)


@dataclass(frozen=True)
class RunOptions:
    """How to run: the same object drives a local, a to-file and a distributed run.

    draws: Monte-Carlo draws per spectrum for the e_* columns (0, or 2 to 10000; DR19: 20).
    seed: seed of the draws, combined with each spectrum's identity, so rows do not depend on
        batch size, file order, shards, resume points or workers.
    recipe: "reference" (hutchresearch/BOSSNet) or "astra" (SDSS DR19's production code).
    air: the inputs' wavelengths are in air; convert them to vacuum.
    batch_size: model rows gathered per model round (memory ~ rows; results do not depend on it).
    shard: "K/N" (or "auto" in a SLURM job array): only that slice of the sorted input files.
    recursive: search directories recursively.
    provider, threads, precision: how the model is opened (auto|cpu|cuda|openvino; CPU threads,
        None for all this process may use; fp32, or bf16/int8 within the accuracy budget).
    progress: a progress bar on stderr.
    readers: processes reading and preparing the input files while the model runs; None: one
        reading thread beside the model, on every engine (what measured fastest, on the CPU
        and on an H200; run/read_pool.py). The rows do not depend on it.
    """

    draws: int = 20
    seed: int = 0
    recipe: str = "reference"
    air: bool = False
    batch_size: int = DEFAULT_BATCH_ROWS
    shard: str | None = None
    recursive: bool = False
    provider: str = "auto"
    threads: int | None = None
    precision: str = "fp32"
    progress: bool = False
    readers: int | None = None

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        try:
            put("draws", check_draws(self.draws))
        except ValueError as exc:
            raise OptionError(str(exc), option="--draws", usage=str(exc)) from None
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise OptionError(f"seed must be an integer, got {self.seed!r}", option="--seed",
                              usage=f"{self.seed!r} is not an integer")
        put("seed", int(self.seed))
        put("recipe", _choice("--recipe", "recipe", self.recipe, RECIPES))
        put("batch_size", _integer("--batch-size", "batch_size", self.batch_size, 1))
        if self.threads is not None:
            put("threads", _integer("--threads", "threads", self.threads, 1))
        if self.readers is not None:
            put("readers", _integer("--readers", "readers", self.readers, 1))
        put("provider", _choice("--provider", "provider", self.provider, PROVIDERS))
        put("precision", _choice("--precision", "precision", self.precision, PRECISIONS))
        if self.shard is not None:
            from .sharding import parse_shard

            try:
                shard = parse_shard(str(self.shard))
            except ValueError as exc:
                raise OptionError(str(exc), option="--shard", usage=str(exc)) from None
            put("shard", f"{shard.index}/{shard.count}")
        for name in ("air", "recursive", "progress"):
            put(name, bool(getattr(self, name)))

    def replace(self, **changes: Any) -> RunOptions:
        """A copy with `changes` applied (and validated)."""
        return dataclasses.replace(self, **changes)


_FIELDS = frozenset(f.name for f in dataclasses.fields(RunOptions))


def options_from(options: RunOptions | None, settings: Mapping[str, Any]) -> RunOptions:
    """`options` (or the defaults) with keyword `settings` applied: what `predict(...,
    draws=20, seed=3)` passes. An unknown keyword is a TypeError naming the known ones."""
    unknown = sorted(set(settings) - _FIELDS)
    if unknown:
        raise TypeError(f"unknown option{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(unknown)}; RunOptions takes {', '.join(sorted(_FIELDS))}")
    base = options if options is not None else RunOptions()
    if not isinstance(base, RunOptions):
        raise TypeError(f"options must be a RunOptions, got {type(base).__name__}")
    return base.replace(**settings) if settings else base
