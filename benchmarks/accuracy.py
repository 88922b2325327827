"""Accuracy of a BOSS Net ONNX model on held-out synthetic spectra, plus its view of real stars.

Why: the bundled model is a demonstration trained on synthetic spectra; this says honestly how
well it recovers the labels of spectra it has not seen (median absolute error by S/N bin and by
Teff range) and what it makes of the real survey spectra in ../shared/data, next to their survey
classes, without any tuning to them. Runs on the runtime only (onnxruntime, no torch).

    python benchmarks/accuracy.py [--model models/X.onnx] [--n 3000] [--seed 777] [--markdown]
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

from bossnet_onnx.model.session import open_model
from bossnet_onnx.science.preprocess import model_inputs
from bossnet_onnx.science.synthetic import POPULATIONS, sample_labels, synthesize_batch

TARGETS = {"teff_pct": 5.0, "logg": 0.3, "fe_h": 0.25, "rv": 15.0}
SNR_BINS = [(5, 10), (10, 30), (30, 60), (60, 200.01)]
TEFF_BINS = [(3000, 4000), (4000, 5500), (5500, 7500), (7500, 10000), (10000, 20000),
             (20000, 30001)]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def heldout(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Held-out labels and noisy spectra (a seed the training never used)."""
    rng = np.random.default_rng(seed)
    labels = sample_labels(n, rng)
    fluxes, ivars = [], []
    wave = None
    for a in range(0, n, 500):
        s = slice(a, min(n, a + 500))
        wave, f, iv = synthesize_batch(labels["teff"][s], labels["logg"][s], labels["fe_h"][s],
                                       labels["rv"][s], labels["snr"][s], rng,
                                       ebv=labels["ebv"][s])
        fluxes.append(f)
        ivars.append(iv)
    return labels, wave, np.concatenate(fluxes), np.concatenate(ivars)


def predict_point(model, wave: np.ndarray, flux: np.ndarray) -> dict[str, np.ndarray]:
    """Point estimates (noise-free row only) through the runtime preprocessing."""
    meta = model.metadata
    rows = np.concatenate([model_inputs(wave, f, meta.grid, meta.preprocessing)[0] for f in flux])
    phys = model.run_physical(rows)
    col = {p: phys[:, meta.index(p)] for p in meta.parameter_names}
    return {"teff": 10 ** col["logTeff"], "logg": col["logg"], "fe_h": col["FeH"],
            "rv": col["rv"]}


def errors(labels: dict[str, np.ndarray], pred: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"teff_pct": 100 * np.abs(pred["teff"] - labels["teff"]) / labels["teff"],
            "logg": np.abs(pred["logg"] - labels["logg"]),
            "fe_h": np.abs(pred["fe_h"] - labels["fe_h"]),
            "rv": np.abs(pred["rv"] - labels["rv"])}


def _row(name: str, err: dict[str, np.ndarray], m: np.ndarray) -> list[str]:
    if not m.any():
        return [name, "0", "-", "-", "-", "-"]
    return [name, str(int(m.sum()))] + [f"{np.median(err[k][m]):.3g}" for k in TARGETS]


def table(err: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> list[list[str]]:
    rows = [["subset", "N", "Teff %", "logg dex", "[Fe/H] dex", "RV km/s"]]
    snr, teff = labels["snr"], labels["teff"]
    for lo, hi in SNR_BINS:
        rows.append(_row(f"S/N {lo}-{hi:.0f}", err, (snr >= lo) & (snr < hi)))
    good = snr >= 30
    rows.append(_row("S/N >= 30, all", err, good))
    for lo, hi in TEFF_BINS:
        rows.append(_row(f"S/N >= 30, Teff {lo}-{hi - (hi % 10):.0f} K", err,
                         good & (teff >= lo) & (teff < hi)))
    for i, pop in enumerate(POPULATIONS):
        rows.append(_row(f"S/N >= 30, {pop}", err, good & (labels["population"] == i)))
    return rows


def render(rows: list[list[str]], markdown: bool) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    if markdown:
        out = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join("---" for _ in rows[0]) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        return "\n".join(out)
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                               enumerate(zip(r, widths))) for r in rows)


def targets_met(err: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> list[str]:
    good = labels["snr"] >= 30
    lines = []
    for k, limit in TARGETS.items():
        value = float(np.median(err[k][good]))
        lines.append(f"{k}: median {value:.3g} vs target < {limit} -> "
                     f"{'met' if value < limit else 'NOT met'}")
    return lines


def real_stars(model, data: Path) -> list[list[str]]:
    """Model point estimates for the real spectra in `data`, next to MANIFEST.tsv."""
    try:
        from bossnet_onnx.readers import read_spectra
    except ImportError:
        return [["(bossnet_onnx.readers not available: real stars skipped)"]]
    manifest = {}
    with open(data / "MANIFEST.tsv", encoding="utf-8") as fh:
        for rec in csv.DictReader(fh, delimiter="\t"):
            manifest[rec["local_name"]] = rec
    rows = [["file", "class", "survey Teff/logg/[Fe/H]/RV", "model Teff", "logg", "[Fe/H]",
             "RV"]]
    for name, rec in manifest.items():
        survey = "/".join(rec.get(k) or "-" for k in ("teff", "logg", "feh", "rv_kms"))
        cls = f"{rec['class']} {rec['subclass']}".strip()
        try:
            spectra = [s for s in read_spectra(str(data / name)) if hasattr(s, "flux")]
            spec = spectra[0]
            pred = predict_point(model, spec.wavelength, spec.flux[None, :])
            rows.append([name[:40], cls[:16], survey, f"{pred['teff'][0]:.0f}",
                         f"{pred['logg'][0]:.2f}", f"{pred['fe_h'][0]:.2f}",
                         f"{pred['rv'][0]:.1f}"])
        except Exception as exc:  # a benchmark reports, it does not stop on one file
            rows.append([name[:40], cls[:16], survey, f"error: {str(exc)[:60]}", "", "", ""])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None,
                        help="installed model name or ONNX file (default: the bundled one)")
    parser.add_argument("--n", type=int, default=3000, help="held-out spectra")
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default=str(SHARED), help="folder of real spectra")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    model = open_model(args.model, provider="cpu", threads=args.threads)
    meta = model.metadata
    print(f"model: {model.path.name} ({meta.model_name}, provenance {meta.provenance})")
    t0 = time.perf_counter()
    labels, wave, flux, _ = heldout(args.n, args.seed)
    pred = predict_point(model, wave, flux)
    err = errors(labels, pred)
    print(f"{args.n} held-out synthetic spectra (seed {args.seed}), median absolute error, "
          f"{time.perf_counter() - t0:.0f} s\n")
    print(render(table(err, labels), args.markdown))
    print("\ntargets at S/N >= 30:")
    for line in targets_met(err, labels):
        print("  " + line)
    data = Path(args.data)
    if (data / "MANIFEST.tsv").is_file():
        print(f"\nreal spectra in {data} (point estimates, no tuning):\n")
        print(render(real_stars(model, data), args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
