"""The fatal check after export: does the ONNX graph compute what the PyTorch network computes?

The inputs (`bossnet_onnx.convert.probes`, shared with the torch-free converter) are
standard-normal and spectrum-like rows at batch 1 and a larger batch. The reference side is
`BossNet.forward` with torch's own AdaptiveAvgPool1d, so the pooling-matrix substitution in the
graph is checked too.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bossnet_onnx.convert.probes import (
    PARITY_ATOL,
    ParityReport,
    max_abs,
    onnx_session,
    parity_inputs,
    spectrum_like,
)
from bossnet_onnx.errors import ParityError, first_line

__all__ = ["PARITY_ATOL", "ParityReport", "parity_inputs", "spectrum_like", "check_parity",
           "output_spread", "physical_differences"]


def torch_outputs(model, rows: np.ndarray) -> np.ndarray:
    """Normalised outputs of the reference PyTorch forward (eval mode, float32)."""
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(rows).unsqueeze(1)).numpy()


def output_spread(model, n_pixels: int, seed: int = 0) -> float:
    """Mean over outputs of the std across different spectra: ~0 means the net ignores input."""
    rows = parity_inputs(n_pixels, batches=(8,), seed=seed)
    outs = np.concatenate([torch_outputs(model, r) for r in rows.values()])
    return float(outs.std(axis=0).mean())


def physical_differences(a: np.ndarray, b: np.ndarray, names: tuple[str, ...]
                         ) -> dict[str, float]:
    """Max abs difference per parameter in the units people quote (Teff in K, not dex)."""
    out: dict[str, float] = {}
    for j, name in enumerate(names):
        if name == "logTeff":
            out["Teff"] = float(np.max(np.abs(10.0 ** a[:, j].astype(np.float64)
                                              - 10.0 ** b[:, j].astype(np.float64))))
        else:
            out[name] = float(np.max(np.abs(a[:, j].astype(np.float64)
                                            - b[:, j].astype(np.float64))))
    return out


def check_parity(model, onnx_path: str | Path, means: np.ndarray, stds: np.ndarray, *,
                 n_pixels: int = 3900, batches: tuple[int, ...] = (1, 8), seed: int = 0,
                 atol: float | None = None, fixed_batch: int | None = None,
                 label: str | None = None) -> ParityReport:
    """Compare the ONNX file with `model`; raise ParityError naming the file if any case fails.

    A fixed-batch graph is checked at its own batch size only. `label` is the name used in
    messages (the export target, when the file checked is still a temporary one).
    """
    onnx_path = Path(onnx_path)
    where = label or str(onnx_path)
    report = ParityReport(atol=PARITY_ATOL if atol is None else atol)
    sizes = (fixed_batch,) if fixed_batch is not None else batches
    outputs = []
    try:
        session = onnx_session(onnx_path)
        for name, rows in parity_inputs(n_pixels, sizes, seed).items():
            expected = torch_outputs(model, rows)
            normalized, physical = session.run(["normalized", "physical"], {"flux": rows})
            if normalized.shape != expected.shape or physical.shape != expected.shape:
                raise ParityError(f"{where}: case {name} gave outputs {normalized.shape}/"
                                  f"{physical.shape}, expected {expected.shape}")
            report.cases[name] = max_abs(normalized, expected)
            # `physical` must be the normalised output through the stats, in STD units.
            report.physical_cases[name] = max_abs(physical / stds,
                                                   (expected * stds + means) / stds)
            outputs.append(expected)
    except ParityError:
        raise
    except Exception as exc:  # onnxruntime raises its own pybind types for bad graphs  # noqa: BLE001
        raise ParityError(f"{where}: onnxruntime cannot run the exported graph "
                          f"({first_line(exc, 200)}); nothing was kept") from None
    report.output_std = float(np.concatenate(outputs).std(axis=0).mean())
    failed = {k: v for k, v in report.cases.items() if not v < report.atol}
    failed.update({f"physical {k}": v for k, v in report.physical_cases.items()
                   if not v < report.atol})
    if failed:
        shown = ", ".join(f"{k}: {v:.2e}" for k, v in failed.items())
        raise ParityError(f"{where}: ONNX output differs from PyTorch by more than "
                          f"atol={report.atol:.0e} ({shown}); the export is not faithful, "
                          f"nothing was kept")
    return report
