"""Checkpoint -> verified, self-describing, fixed-shape ONNX file.

Route: `torch.onnx.export(dynamo=True)` on `ExportGraph`, whose adaptive pool is a constant
gather + weighted sum over each bin and whose positional channel is a constant. The TorchScript
exporter refuses torch's AdaptiveAvgPool1d for non-integer ratios (1950 -> 1024) and is
deprecated; the dynamo exporter on the plain network depends on how the pool is decomposed.
Constant indices and weights export identically under any exporter and run exactly in every
ONNX runtime.

The file is written to a temporary name next to the target, checked with `onnx.checker`,
compared with PyTorch, and only then moved into place: a failed export leaves nothing behind.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bossnet_onnx.atomic import publish
from bossnet_onnx.convert import architecture
from bossnet_onnx.convert.graph import DEFAULT_OPSET, model_doc_string
from bossnet_onnx.convert.report import (
    ExportReport,
    exporter_record,
    means_stds,
    model_metadata,
)
from bossnet_onnx.errors import ExportError, first_line

from .checkpoint import load_checkpoint
from .config import BossNetConfig, check_member, infer_member
from .network import N_PIXELS, BossNet, ExportGraph
from .parity import check_parity

__all__ = ["ExportReport", "export_model", "export_module", "reference_grid", "DEFAULT_OPSET"]

MIN_OPSET = 18
ROUTE = "torch.onnx.export(dynamo=True), adaptive pool as constant gather + weighted sum"


def reference_grid(n_pixels: int = N_PIXELS) -> np.ndarray:
    """The exact float32 grid of the reference preprocessing (torch.linspace(3800, 8900, n))."""
    return architecture.reference_grid(n_pixels)


def _versions(route: str) -> dict[str, Any]:
    import onnx
    import torch

    try:
        import onnxscript

        onnxscript_version = onnxscript.__version__
    except ImportError:  # pragma: no cover - dynamo export needs it, kept for the record
        onnxscript_version = None
    return exporter_record("torch", route, torch=torch.__version__, onnx=onnx.__version__,
                           onnxscript=onnxscript_version)


def _to_onnx(graph: ExportGraph, opset: int, batch: int | None):
    """Run the dynamo exporter quietly; return the ModelProto."""
    import torch

    example = torch.zeros(batch or 2, graph.n_pixels)
    dynamic = None if batch is not None else {"flux": {0: torch.export.Dim("batch")}}
    quiet = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo")]
    levels = [lg.level for lg in quiet]
    try:
        for lg in quiet:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                graph, (example,), None, input_names=["flux"],
                output_names=["normalized", "physical"], opset_version=opset, dynamo=True,
                dynamic_shapes=dynamic, external_data=False, verbose=False, optimize=True,
            )
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"torch.onnx.export failed for the BOSS Net graph ({first_line(exc)}); "
                          f"check that torch >= 2.5 and onnxscript are installed") from None
    finally:
        for lg, level in zip(quiet, levels):
            lg.setLevel(level)
    if program is None:
        raise ExportError("torch.onnx.export returned no program for the BOSS Net graph")
    return program.model_proto


def _check_graph(proto, batch: int | None, n_pixels: int, where: str) -> None:
    """The contract the runtime relies on: one input, fixed length, the named outputs."""
    import onnx

    inputs = list(proto.graph.input)
    if [i.name for i in inputs] != ["flux"]:
        raise ExportError(f"{where}: graph inputs are {[i.name for i in inputs]}, expected ['flux']")
    dims = inputs[0].type.tensor_type.shape.dim
    length = dims[-1]
    if len(dims) != 2 or not length.HasField("dim_value") or length.dim_value != n_pixels:
        raise ExportError(f"{where}: input 'flux' has shape {dims}, expected [batch, {n_pixels}]")
    if batch is not None and dims[0].dim_value != batch:
        raise ExportError(f"{where}: batch axis is not fixed to {batch}")
    outputs = [o.name for o in proto.graph.output]
    if outputs != ["normalized", "physical"]:
        raise ExportError(f"{where}: graph outputs are {outputs}, expected normalized, physical")
    try:
        onnx.checker.check_model(proto, full_check=False)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{where}: onnx.checker rejects the graph "
                          f"({first_line(exc, 200)})") from None


def _temp_path(output: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    os.close(fd)
    return Path(name)


def export_module(model: BossNet, output: str | Path, *, weights_sha256: str,
                  stats: str | Path | Mapping[str, Mapping[str, float]] | None = None,
                  name: str | None = None, opset: int = DEFAULT_OPSET,
                  batch: int | None = None, quantize: str | None = None,
                  quantized_output: str | Path | None = None,
                  provenance: str = "user-weights", description: str = "",
                  n_pixels: int | None = None, seed: int = 0,
                  source: Mapping[str, Any] | None = None,
                  member: str = "boss") -> ExportReport:
    """Export an in-memory BossNet (e.g. just trained) and verify it; see `export_model`.

    `weights_sha256` identifies the weights in the model's metadata (for a trained model,
    the sha256 of the saved state dict). `source` records which published set the weights
    are (`models pull` passes registry name, repository, commit and blob ids). The model is
    switched to eval mode. `member` names the family member (members.py): its input length,
    grid, output names, default stats and preprocessing version go into the metadata;
    `n_pixels` may differ from the member's only for BOSS Net (which interpolates onto
    whatever grid it was trained on).
    """
    import onnx

    start = time.perf_counter()
    output = Path(output)
    if opset < MIN_OPSET:
        raise ExportError(f"--opset {opset} is too old: the dynamo exporter writes opset "
                          f">= {MIN_OPSET} (onnxruntime >= 1.14 reads it); use {DEFAULT_OPSET}")
    if quantize not in (None, "int8"):
        raise ExportError(f"--quantize {quantize!r} is not supported; the only choice is int8")
    config: BossNetConfig = model.config
    metadata = model_metadata(
        config, member=member, weights_sha256=weights_sha256, exporter=_versions(ROUTE),
        opset=opset, stats=stats, name=name, batch=batch, provenance=provenance,
        description=description, n_pixels=n_pixels, source=source)
    if not output.parent.is_dir():
        raise ExportError(f"{output}: folder {output.parent} does not exist; create it first")
    means, stds = means_stds(metadata)
    model.eval()
    graph = ExportGraph(model, means.tolist(), stds.tolist(), metadata.n_pixels).eval()
    proto = _to_onnx(graph, opset, batch)
    opset_found = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if opset_found != opset:
        raise ExportError(f"asked for opset {opset} but the exporter wrote {opset_found}; "
                          f"use --opset {opset_found}")
    n_pixels = metadata.n_pixels
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, metadata.to_props())
    proto.producer_name = "bossnet-onnx"
    proto.doc_string = model_doc_string(metadata)
    _check_graph(proto, batch, n_pixels, str(output))
    tmp = _temp_path(output)
    try:
        onnx.save_model(proto, str(tmp))
        del proto
        parity = check_parity(model, tmp, means, stds, n_pixels=n_pixels, seed=seed,
                              fixed_batch=batch, label=str(output))
        publish(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    report = ExportReport(
        output=output, metadata=metadata, parity=parity,
        n_parameters=sum(p.numel() for p in model.parameters()),
        file_bytes=output.stat().st_size, seconds=0.0,
        output_spread=parity.output_std,
    )
    if quantize == "int8":
        from .quantize import quantize_int8

        target = Path(quantized_output) if quantized_output else \
            output.with_name(output.stem + ".int8.onnx")
        report.quantized = quantize_int8(output, target, model, metadata, seed=seed)
    report.seconds = time.perf_counter() - start
    return report


def export_model(checkpoint: str | Path, output: str | Path, *,
                 config: str | Path | BossNetConfig | None = None,
                 stats: str | Path | Mapping[str, Mapping[str, float]] | None = None,
                 name: str | None = None, opset: int = DEFAULT_OPSET,
                 batch: int | None = None, quantize: str | None = None,
                 quantized_output: str | Path | None = None,
                 provenance: str = "user-weights", description: str = "",
                 source: Mapping[str, Any] | None = None,
                 member: str | None = None) -> ExportReport:
    """Convert a BOSS Net checkpoint into a verified ONNX file (the `export` command).

    `member` is the family member (boss, apogee, gaia-rvs, gaia-xp); by default it is inferred
    from `name` or the checkpoint's name (model_apogee, ...) or its model_args.yaml, and checked
    against the network's outputs. `checkpoint` is the official directory (model_args.yaml +
    model_chunk_*), a .pt/.pth state dict, or a file holding {'state_dict': ...}. `config`
    overrides model_args.yaml (official BOSS values otherwise); `stats` overrides the member's
    published normalisation statistics. `batch` fixes the batch axis (dynamic by default).
    Raises CheckpointError for unusable weights and ParityError (after deleting the output)
    when ONNX and PyTorch disagree.
    """
    loaded = load_checkpoint(checkpoint, config)
    if member is None:
        member = infer_member(name or checkpoint, loaded.config)
    check_member(member, loaded.config, str(checkpoint))
    if name is None:
        given = Path(checkpoint)
        name = given.name if given.is_dir() else given.stem
    return export_module(loaded.model, output, weights_sha256=loaded.weights_sha256,
                         stats=stats, name=name, opset=opset, batch=batch, quantize=quantize,
                         quantized_output=quantized_output, provenance=provenance,
                         source=source,
                         description=description or f"exported from {Path(checkpoint).name} "
                                                    f"({loaded.layout})", member=member)

