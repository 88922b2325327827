"""The model object for repeated work: `model = bossnet_onnx.load("boss")`, then
`model.predict(...)` or `model.stream(...)` as often as needed without reopening the engine.

The model owns the run: `stream` is the one sequence (read ahead, prepare, batch, run, make
rows; run/stream.py) that `predict`, the CLI's `-o` path and the distributed runner all call.
It is its own module because it joins the engine-level model (session.py) and the run, which
itself runs on an engine-level model: a method on that class would make the two import each
other.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..run import stream as _run
from ..run.options import RunOptions, options_from
from .session import BossNetModel, open_model

if TYPE_CHECKING:
    from astropy.table import Table

    from ..outputs.catalogue import Result

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

    def predict(self, inputs: Any, options: RunOptions | None = None,
                **settings: Any) -> Table:
        """Labels for every spectrum in `inputs`, as a table; see `bossnet_onnx.predict` for
        the inputs and the options (a RunOptions, or its fields as keywords)."""
        return _run.predict(inputs, model=self, options=options_from(options, settings))

    def stream(self, items: Sequence, options: RunOptions | None = None, **kwargs: Any
               ) -> Iterator[Result]:
        """One catalogue row (`outputs.catalogue.Result`) per spectrum of `items` (paths and
        in-memory records as `run.stream.resolve_inputs` gives them), in input order, each as
        soon as it is done; `kwargs`: skip, times, on_file_done, checked (run.stream.stream)."""
        return _run.stream(self, items, options if options is not None else RunOptions(),
                           **kwargs)


def load(model: str | os.PathLike | None = None, *, provider: str = "auto",
         threads: int | None = None, precision: str = "fp32") -> Model:
    """Open a model once for many predictions: `model = bossnet_onnx.load("boss")`.

    `model` is a model name (model.files.resolve_model), a path to an .onnx file, or None for
    the default; `provider` auto, cpu, cuda or openvino; `threads` the CPU threads of each call;
    `precision` fp32 (exact), or bf16/int8 within the accuracy budget (model/precision.py).
    """
    opened = open_model(model, provider, threads, precision)
    return Model(**{f.name: getattr(opened, f.name) for f in dataclasses.fields(opened)})
