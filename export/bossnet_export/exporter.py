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

import datetime as _dt
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bossnet_onnx.atomic import publish
from bossnet_onnx.errors import ExportError, first_line
from bossnet_onnx.model.metadata import PROVENANCES, ModelMetadata, Preprocessing

from .checkpoint import load_checkpoint
from .config import BossNetConfig, check_member, infer_member, load_stats
from .network import N_PIXELS, BossNet, ExportGraph
from .parity import ParityReport, check_parity

__all__ = ["ExportReport", "export_model", "export_module", "reference_grid", "DEFAULT_OPSET"]

DEFAULT_OPSET = 18
MIN_OPSET = 18
ROUTE = "torch.onnx.export(dynamo=True), adaptive pool as constant gather + weighted sum"


@dataclass
class ExportReport:
    """What was written and how faithful it is."""

    output: Path
    metadata: ModelMetadata
    parity: ParityReport
    n_parameters: int
    file_bytes: int
    seconds: float
    output_spread: float
    quantized: Any = None  # QuantizeReport when --quantize was asked

    @property
    def max_abs_diff(self) -> float:
        return self.parity.max_abs_diff

    def summary(self) -> str:
        lines = [
            f"wrote {self.output} ({self.file_bytes / 1e6:.1f} MB, {self.n_parameters:,} "
            f"parameters, opset {self.metadata.opset}, batch "
            f"{self.metadata.batch_size or 'dynamic'}) in {self.seconds:.1f} s",
            f"parity: {self.parity.summary()}",
        ]
        if self.quantized is not None:
            lines.append(self.quantized.summary())
        return "\n".join(lines)


def reference_grid(n_pixels: int = N_PIXELS) -> np.ndarray:
    """The exact float32 grid of the reference preprocessing: torch.linspace(3800, 8900, n)."""
    import torch

    from bossnet_onnx.science.members import BOSS_GRID_START, BOSS_GRID_STOP

    return torch.linspace(BOSS_GRID_START, BOSS_GRID_STOP, n_pixels,
                          dtype=torch.float32).numpy().copy()


def _versions(route: str) -> dict[str, Any]:
    import onnx
    import torch

    from bossnet_onnx import __version__

    try:
        import onnxscript

        onnxscript_version = onnxscript.__version__
    except ImportError:  # pragma: no cover - dynamo export needs it, kept for the record
        onnxscript_version = None
    return {
        "package": "bossnet-onnx",
        "version": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxscript": onnxscript_version,
        "route": route,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


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

    from bossnet_onnx.science.members import MEMBERS, OFFICIAL_STATS, input_grid

    if member not in MEMBERS:
        raise ExportError(f"--member {member!r} is not a family member; choose one of "
                          f"{', '.join(MEMBERS)}")
    recipe = MEMBERS[member]
    if n_pixels is None:
        n_pixels = recipe.n_inputs
    elif member != "boss" and n_pixels != recipe.n_inputs:
        raise ExportError(f"{recipe.title} reads {recipe.n_inputs} inputs, not {n_pixels}")

    start = time.perf_counter()
    output = Path(output)
    if provenance not in PROVENANCES:
        raise ExportError(f"provenance {provenance!r} is not one of {PROVENANCES}")
    if batch is not None and batch < 1:
        raise ExportError(f"--batch is {batch}; expected a positive integer or none (dynamic)")
    if opset < MIN_OPSET:
        raise ExportError(f"--opset {opset} is too old: the dynamo exporter writes opset "
                          f">= {MIN_OPSET} (onnxruntime >= 1.14 reads it); use {DEFAULT_OPSET}")
    if quantize not in (None, "int8"):
        raise ExportError(f"--quantize {quantize!r} is not supported; the only choice is int8")
    if not (isinstance(weights_sha256, str) and len(weights_sha256) == 64):
        raise ExportError(f"weights_sha256 {weights_sha256!r} is not a 64-digit hex sha256")
    config: BossNetConfig = model.config
    names = recipe.parameter_names
    if config.num_targets != len(names):
        raise ExportError(f"the network predicts {config.num_targets} values; {recipe.title} "
                          f"models predict {len(names)} ({', '.join(names)})")
    if not output.parent.is_dir():
        raise ExportError(f"{output}: folder {output.parent} does not exist; create it first")
    stats_doc = load_stats(OFFICIAL_STATS[member] if stats is None else stats, names)
    means = np.array([stats_doc[p]["MEAN"] for p in names], dtype=np.float64)
    stds = np.array([stats_doc[p]["STD"] for p in names], dtype=np.float64)
    model.eval()
    graph = ExportGraph(model, means.tolist(), stds.tolist(), n_pixels).eval()
    proto = _to_onnx(graph, opset, batch)
    opset_found = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if opset_found != opset:
        raise ExportError(f"asked for opset {opset} but the exporter wrote {opset_found}; "
                          f"use --opset {opset_found}")
    metadata = ModelMetadata(
        model_name=name or "bossnet",
        provenance=provenance,
        parameter_names=names,
        stats=stats_doc,
        grid=reference_grid(n_pixels) if member == "boss" else input_grid(recipe),
        preprocessing=Preprocessing(version=recipe.preprocessing_version),
        weights_sha256=weights_sha256,
        exporter=_versions(ROUTE),
        opset=int(opset_found),
        input_name="flux",
        input_rank=2,
        batch_size=batch,
        description=description,
        model_config=config.to_dict(),
        source=dict(source) if source is not None else None,
        member=member,
    )
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, metadata.to_props())
    proto.producer_name = "bossnet-onnx"
    proto.doc_string = (f"{recipe.title} {metadata.model_name} (member {member}): "
                        f"flux[batch,{n_pixels}] ({recipe.reads}, "
                        f"{recipe.input_layout['kind']}) -> normalized, physical "
                        f"({', '.join(names)})")
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

