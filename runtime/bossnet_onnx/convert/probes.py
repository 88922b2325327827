"""The inputs a converted model is checked on, shared by both converters' fatal checks.

Two kinds of input, because they exercise different things: standard-normal rows test the
graph over a wide input range; log-scaled, spectrum-like rows (a smooth continuum with
absorption lines and noise, through the runtime's own `log_scale`) test the range real spectra
occupy. Each kind runs at batch 1 and a larger batch, since a frozen batch size is the classic
export bug.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..model.metadata import Preprocessing, reference_grid_numpy
from ..science.preprocess import log_scale

__all__ = ["PARITY_ATOL", "ParityReport", "spectrum_like", "parity_inputs", "max_abs",
           "onnx_session"]

#: Largest accepted |ONNX - reference| on the normalised outputs, for either converter.
PARITY_ATOL = 1e-4


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


@dataclass
class ParityReport:
    """Per-case max abs differences of the normalised outputs (and of the physical ones)."""

    atol: float
    cases: dict[str, float] = field(default_factory=dict)
    physical_cases: dict[str, float] = field(default_factory=dict)
    output_std: float = 0.0
    #: what the ONNX outputs were compared with: "torch" or "numpy" (the numpy forward pass)
    reference: str = "torch"

    @property
    def max_abs_diff(self) -> float:
        return max(self.cases.values()) if self.cases else float("nan")

    def summary(self) -> str:
        worst = max(self.cases, key=lambda case: self.cases[case])
        return (f"max |onnx - {self.reference}| = {self.max_abs_diff:.2e} on normalised outputs "
                f"(atol {self.atol:.0e}, worst case {worst}, {len(self.cases)} cases)")


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| in float64; inf when either holds a NaN or inf (never a silent pass)."""
    diff = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return float(diff.max()) if np.isfinite(diff).all() else float("inf")


def onnx_session(path: Path) -> Any:
    """A CPU onnxruntime session: the provider every user has, so parity means the same to all."""
    from ..model.session import import_onnxruntime

    ort = import_onnxruntime()  # the [cpu] or [gpu] extra; a one-line error without either

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
