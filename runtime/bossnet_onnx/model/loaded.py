"""The model object for repeated work: `model = bossnet_onnx.load("boss")`, then
`model.predict(...)` as often as needed without reopening the onnxruntime session.

Its own module because it joins the session (session.py) and the prediction pipeline
(pipeline.py), which itself runs on a session: a method on the session class would make the
two modules import each other.
"""
from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

from ..run.stream import DEFAULT_BATCH_ROWS, predict_with
from .session import BossNetModel, open_model

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["Model", "load"]


class Model(BossNetModel):
    """A loaded BOSS Net model: open it once (`bossnet_onnx.load`), predict many times.

    `model.predict(inputs, ...)` takes everything `bossnet_onnx.predict` takes and reuses the
    open session; `bossnet_onnx.predict(..., model=model)` does too. Use it as a context
    manager (`with bossnet_onnx.load() as model:`) or call `close()` to release the session's
    memory at a known point; a closed model refuses to predict.

    Thread safety: `predict` may be called from several threads at once on one model
    (onnxruntime's `InferenceSession.run` is thread-safe and each call keeps its own state);
    each call already uses `threads` CPU threads, so more threads than cores gain nothing.
    `close()` must not race with running calls.
    """

    def predict(self, inputs: Any, *, draws: int = 20, seed: int = 0, recipe: str = "reference",
                batch_size: int = DEFAULT_BATCH_ROWS, progress: bool = False,
                shard: str | None = None, air: bool = False,
                recursive: bool = False) -> Table:
        """Labels for every spectrum in `inputs`; see `bossnet_onnx.predict` for the arguments."""
        return predict_with(self, inputs, draws=draws, seed=seed, recipe=recipe,
                            batch_size=batch_size, progress=progress, shard=shard, air=air,
                            recursive=recursive)


def load(model: str | os.PathLike | None = None, *, provider: str = "auto",
         threads: int | None = None, precision: str = "fp32") -> Model:
    """Open a model once for many predictions: `model = bossnet_onnx.load("boss")`.

    `model` is a model name (model_files.resolve_model), a path to an .onnx file, or None for
    the default; `provider` auto, cpu, cuda or openvino; `threads` the CPU threads of each call;
    `precision` fp32 (exact), or bf16/int8 within the accuracy budget (precision.py).
    """
    opened = open_model(model, provider, threads, precision)
    return Model(**{f.name: getattr(opened, f.name) for f in dataclasses.fields(opened)})
