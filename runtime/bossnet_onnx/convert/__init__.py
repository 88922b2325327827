"""Checkpoints -> verified ONNX files without torch: the published weights on any machine.

`convert_checkpoint` reads the official chunks (or a .pt/.pth) with a restricted, torch-free
reader (`torch_zip`), builds the same fixed-shape graph and metadata as the torch export
(`graph`, `report`), and before anything is installed compares onnxruntime's outputs with an
independent numpy forward pass (`forward`) on probe rows; a mismatch is fatal and names the
largest difference. `choose.export_checkpoint` picks a converter: torch when asked for, or when
it is installed and nothing was asked; this one otherwise. Both record themselves in the file
(`bossnet.exporter["converter"]`).

Like the export package, this imports `onnx` only inside the functions that build files, so
`import bossnet_onnx` stays light.
"""
from __future__ import annotations

import gc
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_atomically
from ..errors import CheckpointError, ExportError, ParityError, first_line
from .config import OFFICIAL_BOSS, BossNetConfig, check_member, infer_member, load_config
from .report import CONVERTERS, ExportReport, exporter_record, means_stds, model_metadata

__all__ = ["CONVERTERS", "CONVERTER_CHOICES", "ROUTE", "convert_checkpoint", "resolve_config",
           "ExportReport"]

ROUTE = "bossnet_onnx.convert: torch-free reader, onnx.helper graph, numpy forward check"
#: `--converter` values: auto picks torch when it is installed.
CONVERTER_CHOICES = ("auto", *CONVERTERS)


def resolve_config(path: Path, config: str | Path | BossNetConfig | None) -> BossNetConfig:
    """`config` if given, else the directory's model_args.yaml, else the official BOSS values."""
    if isinstance(config, BossNetConfig):
        return config
    if config is not None:
        return load_config(config)
    if path.is_dir():
        yaml_path = path / "model_args.yaml"
        if not yaml_path.is_file():
            raise CheckpointError(f"{path}: model_args.yaml missing; the official layout has it "
                                  f"next to the chunks (or pass --config)")
        return load_config(yaml_path)
    return OFFICIAL_BOSS


def _check(state: dict[str, np.ndarray], config: BossNetConfig, path: Path, *,
           n_pixels: int, batch: int | None, means: np.ndarray, stds: np.ndarray, seed: int,
           where: str) -> Any:
    """ONNX (onnxruntime, CPU) against the numpy forward pass; ParityError on any mismatch."""
    from .forward import forward
    from .probes import PARITY_ATOL, ParityReport, max_abs, onnx_session, parity_inputs

    cases = parity_inputs(n_pixels, (batch,) if batch is not None else (1, 4), seed)
    expected = {name: forward(state, config, rows) for name, rows in cases.items()}
    state.clear()  # the weights are in the file now; let them go before onnxruntime loads it
    gc.collect()
    report = ParityReport(atol=PARITY_ATOL, reference="numpy")
    every = np.concatenate(list(expected.values()))
    report.output_std = float(every.std(axis=0).mean())
    if not report.output_std > 0:
        raise ParityError(f"{where}: the network's outputs do not change over "
                          f"{every.shape[0]} probe rows, so the check cannot tell a wrong graph "
                          f"from a right one; are the weights all zero? nothing was kept")
    worst = (0.0, "", 0, 0)
    try:
        session = onnx_session(path)
        for name, rows in cases.items():
            normalized, physical = session.run(["normalized", "physical"], {"flux": rows})
            want = expected[name]
            if normalized.shape != want.shape or physical.shape != want.shape:
                raise ParityError(f"{where}: case {name} gave outputs {normalized.shape}/"
                                  f"{physical.shape}, expected {want.shape}; nothing was kept")
            diff = np.abs(normalized.astype(np.float64) - want)
            diff[~np.isfinite(diff)] = np.inf
            report.cases[name] = max_abs(normalized, want)
            report.physical_cases[name] = max_abs(physical / stds, (want * stds + means) / stds)
            row, col = (int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
            if diff[row, col] > worst[0] or not worst[1]:
                worst = (float(diff[row, col]), name, row, col)
    except ParityError:
        raise
    except Exception as exc:  # onnxruntime raises its own pybind types  # noqa: BLE001
        raise ParityError(f"{where}: onnxruntime cannot run the built graph "
                          f"({first_line(exc, 200)}); nothing was kept") from None
    failed = [k for k, v in report.cases.items() if not v < report.atol]
    failed += [f"physical {k}" for k, v in report.physical_cases.items() if not v < report.atol]
    if failed:
        value, case, row, col = worst
        raise ParityError(f"{where}: ONNX output differs from the numpy forward pass by "
                          f"{value:.2e} > atol {report.atol:.0e} (largest: case {case}, row "
                          f"{row}, output {col}; {len(failed)} failing cases); the conversion is "
                          f"not faithful, nothing was kept")
    return report


def convert_checkpoint(checkpoint: str | Path, output: str | Path, *,
                       config: str | Path | BossNetConfig | None = None,
                       stats: str | Path | Mapping[str, Mapping[str, float]] | None = None,
                       name: str | None = None, opset: int = 18, batch: int | None = None,
                       provenance: str = "user-weights", description: str = "",
                       source: Mapping[str, Any] | None = None, member: str | None = None,
                       seed: int = 0) -> ExportReport:
    """Convert a BOSS Net family checkpoint into a verified ONNX file, without torch.

    Arguments as `bossnet_export.export_model` (less `quantize`). Raises CheckpointError for
    unusable or hostile files (nothing is read past the first problem) and ParityError when
    the built graph disagrees with the numpy forward pass; `output` is written only after the
    check passed.
    """
    from .graph import build_skeleton, checkable, weight_tensors, write_model
    from .torch_zip import read_state

    start = time.perf_counter()
    path = Path(checkpoint)
    output = Path(output)
    if opset != 18:
        raise ExportError(f"--opset {opset}: the torch-free converter writes opset 18 "
                          f"(onnxruntime >= 1.14 reads it); use 18 or --converter torch")
    if not output.parent.is_dir():
        raise ExportError(f"{output}: folder {output.parent} does not exist; create it first")
    cfg = resolve_config(path, config)
    loaded = read_state(path, cfg)
    if member is None:
        member = infer_member(name or checkpoint, cfg)
    check_member(member, cfg, str(checkpoint))
    if name is None:
        name = path.name if path.is_dir() else path.stem
    import onnx

    metadata = model_metadata(
        cfg, member=member, weights_sha256=loaded.weights_sha256,
        exporter=exporter_record("numpy", ROUTE, onnx=onnx.__version__, numpy=np.__version__),
        opset=opset, stats=stats, name=name, batch=batch, provenance=provenance,
        description=description or f"exported from {path.name} ({loaded.layout})",
        source=source)
    means, stds = means_stds(metadata)
    state = loaded.state
    del loaded
    n_parameters = sum(int(v.size) for k, v in state.items() if "running_" not in k
                       and k != "pos_enc.inv_freq")
    inv_freq = float(state["pos_enc.inv_freq"].reshape(-1)[0]) if cfg.pos_enc else 1.0
    skeleton, constants = build_skeleton(cfg, metadata, inv_freq=inv_freq, opset=opset)
    tensors = [*weight_tensors(state, cfg), *constants.items()]
    try:
        onnx.checker.check_model(checkable(skeleton, tensors), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{output}: onnx.checker rejects the graph "
                          f"({first_line(exc, 200)})") from None
    reports: list[Any] = []

    def write(tmp: str) -> None:
        write_model(tmp, skeleton, tensors)
        tensors.clear()  # only `state` holds the weights now, and `_check` lets them go
        reports.append(_check(state, cfg, Path(tmp), n_pixels=metadata.n_pixels, batch=batch,
                              means=means, stds=stds, seed=seed, where=str(output)))

    write_atomically(output, write, suffix=".onnx.tmp")
    return ExportReport(output=output, metadata=metadata, parity=reports[0],
                        n_parameters=n_parameters, file_bytes=output.stat().st_size,
                        seconds=time.perf_counter() - start,
                        output_spread=reports[0].output_std, converter="numpy")
