"""Reduced precision (bf16, int8) offered only inside a measured accuracy budget.

Why: bf16 and int8 run BOSS Net 1.5-2.5x faster, but their errors are not uniform: on the
trained demo model plain bf16 is fine at the median and off by 0.15 dex in log g on a few stars.
A survey catalogue must not carry such outliers silently, so a reduced precision is offered for a
network only after it has been compared with the exact fp32 output (onnxruntime, CPU) on a
held-out set of spectra and stayed within `BUDGET` at the median, the 99.9th percentile and the
maximum, in physical units. The verdict is measured once per model file, engine version,
precision and CPU (bf16 arithmetic differs between AVX-512 BF16 and AMX) and cached as JSON
next to the ORT-format copies (`ort_cache.cache_dir()`), so a published model a user pulled gets
its own verdict on first use and later runs start instantly.

The held-out set is deterministic and needs no data files: `HELDOUT_N` noisy synthetic spectra
from `bossnet_onnx.synthetic` drawn with `HELDOUT_SEED` (a seed the demo training never used),
over its whole label and S/N range. benchmarks/precision.py adds the real spectra in
../shared/data to the same comparison.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol, TypedDict

import numpy as np

from ..errors import ProviderError
from .metadata import ModelMetadata


class BossNetModel(Protocol):
    """What a verdict needs of a model (session.BossNetModel; a Protocol, so that session can
    import this module without this module importing session)."""

    path: Path
    metadata: ModelMetadata
    engine: str
    precision: str
    threads: int
    fp32_path: Path | None

    def run_physical(self, x: np.ndarray) -> np.ndarray: ...

__all__ = ["PRECISIONS", "BUDGET", "Budget", "Verdict", "heldout_inputs", "compare",
           "measure_verdict", "require_within_budget", "int8_sibling"]

PRECISIONS = ("fp32", "bf16", "int8")
HELDOUT_N = 768
HELDOUT_SEED = 160_016
VERDICT_VERSION = 1
#: Physical quantities compared, in catalogue units (teff in K from 10**logTeff).
QUANTITIES = ("logg", "teff", "fe_h", "rv")
UNITS = {"logg": "dex", "teff": "K", "fe_h": "dex", "rv": "km/s"}


@dataclass(frozen=True)
class Budget:
    """Largest |reduced - fp32| allowed, per quantity, in physical units.

    The median may use a tenth of the typical DR19 BOSS Net Monte-Carlo uncertainty (log g
    0.1 dex, Teff 100 K, [Fe/H] 0.05 dex, RV 5 km/s); the 99.9th percentile and the maximum
    may use that uncertainty itself: a reduced precision must never move a star by more than
    the catalogue's own error bar.
    """

    median: Mapping[str, float] = field(default_factory=lambda: {
        "logg": 0.01, "teff": 10.0, "fe_h": 0.005, "rv": 0.5})
    maximum: Mapping[str, float] = field(default_factory=lambda: {
        "logg": 0.1, "teff": 100.0, "fe_h": 0.05, "rv": 5.0})


BUDGET = Budget()


@dataclass
class Verdict:
    """One precision's measured accuracy on one model, engine and CPU, against BUDGET."""

    precision: str
    engine: str
    model_name: str
    n_spectra: int
    median: dict[str, float]
    p999: dict[str, float]
    maximum: dict[str, float]
    budget_median: dict[str, float]
    budget_maximum: dict[str, float]
    misses: list[str]
    key: dict[str, str] = field(default_factory=dict)
    measured_s: float = 0.0
    version: int = VERDICT_VERSION

    @property
    def ok(self) -> bool:
        return not self.misses

    def summary(self) -> str:
        parts = [f"{q} {self.median[q]:.3g}/{self.p999[q]:.3g}/{self.maximum[q]:.3g} {UNITS[q]}"
                 for q in QUANTITIES]
        return f"median/p99.9/max |Δ| over {self.n_spectra} spectra: " + ", ".join(parts)


class Comparison(TypedDict):
    """|Δ| statistics per quantity (physical units) and the budget lines they miss."""

    median: dict[str, float]
    p999: dict[str, float]
    maximum: dict[str, float]
    misses: list[str]


def compare(reference: np.ndarray, reduced: np.ndarray, names: tuple[str, ...],
            budget: Budget = BUDGET) -> Comparison:
    """Median, 99.9th percentile and max |Δ| in physical units, and the budget misses.

    `reference` and `reduced` are physical model outputs (rows x parameters, in `names` order).
    """
    def physical(a: np.ndarray) -> dict[str, np.ndarray]:
        col = {n: a[:, names.index(n)] for n in ("logg", "logTeff", "FeH", "rv")}
        return {"logg": col["logg"], "teff": 10 ** col["logTeff"], "fe_h": col["FeH"],
                "rv": col["rv"]}

    ref, red = physical(np.asarray(reference, np.float64)), physical(np.asarray(reduced, np.float64))
    stats: dict[str, dict[str, float]] = {"median": {}, "p999": {}, "maximum": {}}
    misses: list[str] = []
    for q in QUANTITIES:
        diff = np.abs(red[q] - ref[q])
        if not np.all(np.isfinite(diff)):
            diff = np.where(np.isfinite(diff), diff, np.inf)
        stats["median"][q] = float(np.median(diff))
        stats["p999"][q] = float(np.quantile(diff, 0.999))
        stats["maximum"][q] = float(np.max(diff))
        for which, limit in (("median", budget.median[q]), ("p999", budget.maximum[q]),
                             ("maximum", budget.maximum[q])):
            value = stats[which][q]
            if not value <= limit:
                label = {"median": "median", "p999": "99.9th percentile", "maximum": "max"}[which]
                misses.append(f"{label} |Δ{q}| {value:.3g} {UNITS[q]} > {limit:g}")
    return Comparison(median=stats["median"], p999=stats["p999"], maximum=stats["maximum"],
                      misses=misses)


def heldout_inputs(model: BossNetModel, n: int | None = None,
                   seed: int | None = None) -> np.ndarray:
    """Model input rows of `n` held-out noisy synthetic spectra, preprocessed for `model`."""
    n = HELDOUT_N if n is None else n
    seed = HELDOUT_SEED if seed is None else seed
    from ..science.preprocess import model_inputs
    from ..science.synthetic import sample_labels, synthesize_batch

    rng = np.random.default_rng(seed)
    labels = sample_labels(n, rng)
    meta = model.metadata
    rows: list[np.ndarray] = []
    for a in range(0, n, 256):
        s = slice(a, min(n, a + 256))
        wave, flux, _ = synthesize_batch(labels["teff"][s], labels["logg"][s],
                                         labels["fe_h"][s], labels["rv"][s], labels["snr"][s],
                                         rng, ebv=labels["ebv"][s])
        rows.extend(model_inputs(wave, f, meta.grid, meta.preprocessing)[0] for f in flux)
    return np.concatenate(rows).astype(np.float32)


def int8_sibling(path: Path) -> Path:
    """Where `bossnet-onnx export --quantize int8` puts the int8 copy of `path`."""
    return path.with_name(path.stem + ".int8.onnx")


def _cpu_tag() -> str:
    """CPU features that change reduced-precision arithmetic (ort_cache.cpu_tag, one home)."""
    from .ort_cache import cpu_tag

    return cpu_tag()


def _engine_version(engine: str) -> str:
    if engine == "openvino":
        from .engine_openvino import version

        return version()
    import onnxruntime as ort

    return str(ort.__version__)


def _verdict_key(model: BossNetModel, precision: str) -> dict[str, str]:
    from .ort_cache import cache_dir, content_sha256

    meta = model.metadata
    folder = cache_dir()
    content = content_sha256(model.path, folder) if folder is not None else None
    return {"weights_sha256": meta.weights_sha256, "model_sha256": str(content),
            "exporter": json.dumps(dict(meta.exporter), sort_keys=True),
            "engine": model.engine, "engine_version": _engine_version(model.engine),
            "precision": precision, "cpu": _cpu_tag(), "heldout": f"{HELDOUT_N}@{HELDOUT_SEED}",
            "budget": json.dumps(asdict(BUDGET), sort_keys=True)}


def _cache_file(key: dict[str, str]) -> Path | None:
    from .ort_cache import cache_dir

    folder = cache_dir()
    if folder is None:
        return None
    import hashlib

    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return folder / "precision" / f"{key['precision']}-{key['engine']}-{digest}.json"


def _load_cached(path: Path | None, key: dict[str, str]) -> Verdict | None:
    if path is None or not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        verdict = Verdict(**doc)
    except (OSError, ValueError, TypeError):
        return None  # unreadable or older layout: measure again
    return verdict if verdict.key == key and verdict.version == VERDICT_VERSION else None


def _store(path: Path | None, verdict: Verdict) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(verdict), indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only means measuring again next time


def measure_verdict(model: BossNetModel, reference: BossNetModel,
                    inputs: np.ndarray | None = None) -> Verdict:
    """Compare `model` (reduced precision) with `reference` (the same network opened exact,
    fp32 on onnxruntime's CPU provider) on the held-out set."""
    t0 = time.perf_counter()
    x = heldout_inputs(reference) if inputs is None else inputs
    got = compare(reference.run_physical(x), model.run_physical(x),
                  model.metadata.parameter_names, budget=BUDGET)
    return Verdict(precision=model.precision, engine=model.engine,
                   model_name=model.metadata.model_name, n_spectra=int(x.shape[0]),
                   median=got["median"], p999=got["p999"], maximum=got["maximum"],
                   budget_median=dict(BUDGET.median), budget_maximum=dict(BUDGET.maximum),
                   misses=list(got["misses"]), key=_verdict_key(model, model.precision),
                   measured_s=time.perf_counter() - t0)


def require_within_budget(model: BossNetModel,
                          open_reference: Callable[[], BossNetModel]) -> Verdict:
    """The cached or freshly measured verdict for `model`; ProviderError if over budget.

    `open_reference` opens the exact fp32 model, only when a verdict has to be measured.
    """
    if model.metadata.member != "boss":
        raise ProviderError(
            f"--precision {model.precision}: the accuracy budget is measured on held-out BOSS "
            f"spectra, and {model.path.name} is the {model.metadata.member} member; use "
            f"--precision fp32"
        )
    key = _verdict_key(model, model.precision)
    cache = _cache_file(key)
    verdict = _load_cached(cache, key)
    if verdict is None:
        verdict = measure_verdict(model, open_reference())
        _store(cache, verdict)
    if not verdict.ok:
        raise ProviderError(
            f"--precision {model.precision} is not offered for "
            f"{(model.fp32_path or model.path).name} on "
            f"{model.engine}: on {verdict.n_spectra} held-out spectra it misses the accuracy "
            f"budget ({'; '.join(verdict.misses[:3])}); use --precision fp32"
        )
    return verdict
