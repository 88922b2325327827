"""Running over millions of files with dask.bag (the `dask` extra).

Each worker process opens its own onnxruntime session once, on first use, and keeps it in a
module-level cache: sessions are never pickled or shipped, only file paths and result rows
cross process boundaries. Seeding by spectrum identity makes the rows identical to a local run.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

from astropy.table import Table

from ..model.session import BossNetModel, open_model
from ..outputs.catalogue import Result, build_table
from .stream import DEFAULT_BATCH_ROWS, StageTimes, iter_results, resolve_inputs, run_metadata

__all__ = ["predict_dask", "predict_partition"]

_SESSIONS: dict[tuple, BossNetModel] = {}


def _worker_model(model_path: str, provider: str, threads: int) -> BossNetModel:
    key = (model_path, provider, threads, os.getpid())
    if key not in _SESSIONS:
        _SESSIONS[key] = open_model(model_path, provider, threads)
    return _SESSIONS[key]


def predict_partition(paths: Iterable[str], model_path: str, provider: str, threads: int,
                      draws: int, seed: int, batch_size: int,
                      recipe: str = "reference") -> list[Result]:
    """Results for one bag partition, using this process's cached session."""
    model = _worker_model(model_path, provider, threads)
    return list(iter_results(list(paths), model, draws=draws, seed=seed, batch_rows=batch_size,
                             times=StageTimes(), recipe=recipe))


def predict_dask(inputs: Iterable[str] | str, *, model: str | os.PathLike | None = None,
                 provider: str = "cpu", draws: int = 20, seed: int = 0,
                 recipe: str = "reference", batch_size: int = DEFAULT_BATCH_ROWS,
                 threads: int = 1, files_per_partition: int = 64, client=None) -> Table:
    """Like `bossnet_onnx.predict`, with files spread over a Dask cluster.

    Pass a `distributed.Client` (LocalCluster, SLURMCluster, ...) or use Dask's current
    scheduler. `threads` is per worker process; give each worker one or two and run many.
    """
    import dask.bag as db

    from ..model.files import resolve_model

    # Resolved here, once: workers get a file path, whatever their environment says.
    model_path = str(resolve_model(model))
    # Validates the model once, up front, and supplies the header provenance.
    local = open_model(model_path, provider, threads)
    paths = resolve_inputs(inputs)
    if not paths:
        return build_table([], meta=run_metadata(local, draws, seed, recipe=recipe))
    npartitions = max(1, -(-len(paths) // max(1, files_per_partition)))
    bag = db.from_sequence(paths, npartitions=npartitions).map_partitions(
        predict_partition, model_path, provider, threads, draws, seed, batch_size, recipe
    )
    results = bag.compute() if client is None else client.compute(bag).result()
    table = build_table(results, meta=run_metadata(local, draws, seed, recipe=recipe))
    table.meta["RUNNER"] = "dask"
    return table
