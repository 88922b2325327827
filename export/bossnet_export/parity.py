"""The fatal check after export: does the ONNX graph compute what the PyTorch network computes?

Two kinds of input are used because they exercise different things: standard-normal rows test
the graph over a wide input range; log-scaled, spectrum-like rows (a smooth continuum with
absorption lines and noise, through the runtime's own `log_scale`) test the range real spectra
occupy. Each kind runs at batch 1 and a larger batch, since a frozen batch size is the classic
export bug. The reference side is `BossNet.forward` with torch's own AdaptiveAvgPool1d, so the
pooling-matrix substitution in the graph is checked too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bossnet_onnx.errors import ParityError, first_line
from bossnet_onnx.model.metadata import Preprocessing, reference_grid_numpy
from bossnet_onnx.science.preprocess import log_scale

__all__ = ["PARITY_ATOL", "ParityReport", "parity_inputs", "check_parity", "output_spread",
           "physical_differences"]

#: Largest accepted |ONNX - PyTorch| on the normalised outputs.
PARITY_ATOL = 1e-4


@dataclass
class ParityReport:
    """Per-case max abs differences of the normalised outputs (and of the physical ones)."""

    atol: float
    cases: dict[str, float] = field(default_factory=dict)
    physical_cases: dict[str, float] = field(default_factory=dict)
    output_std: float = 0.0

    @property
    def max_abs_diff(self) -> float:
        return max(self.cases.values()) if self.cases else float("nan")

    def summary(self) -> str:
        worst = max(self.cases, key=lambda case: self.cases[case])
        return (f"max |onnx - torch| = {self.max_abs_diff:.2e} on normalised outputs "
                f"(atol {self.atol:.0e}, worst case {worst}, {len(self.cases)} cases)")


def spectrum_like(n_rows: int, n_pixels: int, rng: np.random.Generator) -> np.ndarray:
    """Log-scaled fake stellar spectra: black-body-ish continuum, lines, noise, reference clip."""
    wave = reference_grid_numpy(n=n_pixels).astype(np.float64)
    rows = np.empty((n_rows, n_pixels), dtype=np.float32)
    for r in range(n_rows):
        teff = rng.uniform(3500.0, 9000.0)
        x = 1.4388e8 / (wave * teff)  # hc/(lambda k T), lambda in Angstrom
        continuum = wave ** -5 / np.expm1(x)
        continuum = continuum / continuum.max() * rng.uniform(5.0, 500.0)
        lines = np.ones_like(wave)
        for centre, depth, width in zip(rng.uniform(wave[0], wave[-1], 40),
                                        rng.uniform(0.05, 0.6, 40), rng.uniform(1.0, 8.0, 40)):
            lines -= depth * np.exp(-0.5 * ((wave - centre) / width) ** 2)
        flux = continuum * np.clip(lines, 0.05, None)
        flux = flux + rng.normal(0.0, 1.0, n_pixels) * flux.mean() / rng.uniform(5.0, 60.0)
        rows[r] = flux
    return log_scale(rows, Preprocessing())


def parity_inputs(n_pixels: int, batches: tuple[int, ...] = (1, 8), seed: int = 0,
                  ) -> dict[str, np.ndarray]:
    """Named float32 input batches: random normal and spectrum-like, at each batch size."""
    rng = np.random.default_rng(seed)
    cases: dict[str, np.ndarray] = {}
    for b in batches:
        cases[f"random-normal-b{b}"] = rng.standard_normal((b, n_pixels)).astype(np.float32)
        cases[f"spectrum-like-b{b}"] = spectrum_like(b, n_pixels, rng)
    return cases


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


def onnx_session(path: Path):
    """A CPU onnxruntime session: the provider every user has, so parity means the same to all."""
    from bossnet_onnx.model.session import import_onnxruntime

    ort = import_onnxruntime()  # the [cpu] or [gpu] extra; a one-line error without either

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


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
            report.cases[name] = _max_abs(normalized, expected)
            # `physical` must be the normalised output through the stats, in STD units.
            report.physical_cases[name] = _max_abs(physical / stds,
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


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    diff = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return float(diff.max()) if np.isfinite(diff).all() else float("inf")
