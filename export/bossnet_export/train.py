"""Train a small BOSS Net on synthetic spectra and export it as the bundled demonstration model.

Why: the published weights cannot be shipped or fetched everywhere, yet `bossnet-onnx predict`
must work out of the box. This trains the same blocks with smaller dimensions on spectra from
`bossnet_onnx.science.synthetic` and hands the result to the normal export path (parity check,
metadata with provenance "synthetic-demo"). Everything is seeded and configured in one YAML file:

    python -m bossnet_export.train --config export/bossnet_export/configs/demo.yaml --out models/

The network sees exactly what the runtime will feed it: the runtime's own preprocessing
(`bossnet_onnx.science.preprocess`) applied to native-grid spectra, noise drawn from the spectrum's sigma
(as the runtime's Monte-Carlo copies are), and masked segments (flux 0, as bad BOSS pixels).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bossnet_onnx.model.metadata import DEFAULT_PARAMETER_NAMES, DEFAULT_STATS, Preprocessing
from bossnet_onnx.science.preprocess import log_scale, plan_interpolation
from bossnet_onnx.science.synthetic import noise_sigma, noiseless_batch, sample_labels

from .config import BossNetConfig
from .exporter import export_module, reference_grid
from .network import BossNet
from .weights_hash import tensors_sha256

__all__ = ["TrainConfig", "load_train_config", "labels_to_targets", "targets_to_labels",
           "SpectraInputs", "train", "main"]

DESCRIPTION = ("demonstration model trained on synthetic spectra; "
               "for science, export the published weights")


@dataclass
class TrainConfig:
    """The YAML training recipe, with defaults for anything left out."""

    name: str
    seed: int
    threads: int
    model: dict[str, Any]
    data: dict[str, Any]
    augment: dict[str, Any]
    train: dict[str, Any]
    source: str = ""

    @property
    def network(self) -> BossNetConfig:
        return BossNetConfig.from_mapping(self.model, source=f"{self.source}: model")


def load_train_config(path: str | Path) -> TrainConfig:
    import yaml

    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    missing = [k for k in ("name", "seed", "model", "data", "train") if k not in doc]
    if missing:
        raise ValueError(f"{path}: training config lacks {missing}; see configs/demo.yaml")
    return TrainConfig(name=str(doc["name"]), seed=int(doc["seed"]),
                       threads=int(doc.get("threads", 1)), model=dict(doc["model"]),
                       data=dict(doc["data"]), augment=dict(doc.get("augment", {})),
                       train=dict(doc["train"]), source=str(path))


# ----------------------------------------------------------------------------- labels
def labels_to_targets(labels: dict[str, np.ndarray]) -> np.ndarray:
    """(N, 4) normalised targets in the network's output order (logg, logTeff, FeH, rv)."""
    physical = {"logg": labels["logg"], "logTeff": np.log10(labels["teff"]),
                "FeH": labels["fe_h"], "rv": labels["rv"]}
    cols = [(physical[p] - DEFAULT_STATS[p]["MEAN"]) / DEFAULT_STATS[p]["STD"]
            for p in DEFAULT_PARAMETER_NAMES]
    return np.stack(cols, axis=1).astype(np.float32)


def targets_to_labels(normalized: np.ndarray) -> dict[str, np.ndarray]:
    """Inverse of labels_to_targets, in generator units (teff in K)."""
    out = {}
    for j, p in enumerate(DEFAULT_PARAMETER_NAMES):
        out[p] = normalized[:, j] * DEFAULT_STATS[p]["STD"] + DEFAULT_STATS[p]["MEAN"]
    return {"logg": out["logg"], "teff": 10 ** out["logTeff"], "fe_h": out["FeH"],
            "rv": out["rv"]}


# ----------------------------------------------------------------------------- inputs
class SpectraInputs:
    """Noise-free native spectra -> noisy, augmented model inputs, via the runtime recipe.

    All synthetic spectra share the BOSS wavelength grid and have no NaN pixels, so one
    interpolation plan serves the whole batch; each output row equals what
    `bossnet_onnx.science.preprocess.model_inputs` gives for that spectrum alone.
    """

    def __init__(self, wavelength: np.ndarray, grid: np.ndarray,
                 pre: Preprocessing = Preprocessing()) -> None:
        self.wavelength = wavelength
        self.grid = grid
        self.pre = pre
        self.plan = plan_interpolation(wavelength, np.ones_like(wavelength), grid)

    def preprocess(self, flux: np.ndarray) -> np.ndarray:
        rows = self.plan.apply(np.asarray(flux, dtype=np.float32))
        rows = np.nan_to_num(rows, nan=self.pre.flux_floor, posinf=np.finfo(np.float32).max,
                             neginf=self.pre.flux_floor)
        return log_scale(rows, self.pre)

    def noisy(self, clean: np.ndarray, snr: np.ndarray, rng: np.random.Generator,
              augment: dict[str, Any] | None = None) -> np.ndarray:
        """Observed-like flux (noise at `snr`), then the augmentations; float32 (N, P)."""
        sigma = noise_sigma(self.wavelength, clean, snr)
        flux = clean + sigma * rng.standard_normal(clean.shape)
        if augment:
            extra = rng.random(len(flux)) < float(augment.get("sigma_noise_prob", 0.0))
            flux[extra] += sigma[extra] * rng.standard_normal((int(extra.sum()), flux.shape[1]))
            masked = np.nonzero(rng.random(len(flux)) < float(augment.get("mask_prob", 0.0)))[0]
            lo_n, hi_n = augment.get("mask_segments", [1, 3])
            lo_l, hi_l = augment.get("mask_length_px", [5, 150])
            for i in masked:
                for _ in range(int(rng.integers(lo_n, hi_n + 1))):
                    length = int(rng.integers(lo_l, hi_l + 1))
                    start = int(rng.integers(0, flux.shape[1] - length))
                    flux[i, start:start + length] = 0.0
        return flux.astype(np.float32)


def make_pool(n: int, rng: np.random.Generator, chunk: int = 500
              ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """n labelled noise-free spectra (float32) on the BOSS grid, generated in chunks."""
    labels = sample_labels(n, rng)
    flux = np.empty((n, 4648), dtype=np.float32)
    scale = 10 ** rng.uniform(np.log10(2.0), 2.0, n)
    telluric = rng.uniform(0.5, 2.0, n)
    wave = np.empty(0)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        wave, flux[a:b] = noiseless_batch(
            labels["teff"][a:b], labels["logg"][a:b], labels["fe_h"][a:b], labels["rv"][a:b],
            ebv=labels["ebv"][a:b], telluric=telluric[a:b], flux_scale=scale[a:b])
    return wave, labels, flux


# ----------------------------------------------------------------------------- training
def _lr_at(epoch: int, cfg: dict[str, Any]) -> float:
    lr0, lr1, epochs = float(cfg["lr"]), float(cfg.get("lr_final", cfg["lr"])), int(cfg["epochs"])
    return lr1 + 0.5 * (lr0 - lr1) * (1.0 + math.cos(math.pi * epoch / max(1, epochs - 1)))


def _evaluate(net: BossNet, x: np.ndarray, y: np.ndarray, batch: int = 256) -> tuple[float, np.ndarray]:
    net.eval()
    with torch.no_grad():
        preds = [net(torch.from_numpy(x[a:a + batch]).unsqueeze(1)).numpy()
                 for a in range(0, len(x), batch)]
    pred = np.concatenate(preds)
    return float(np.mean((pred - y) ** 2)), pred


def train(config: TrainConfig, out_dir: str | Path, work_dir: str | Path,
          log=print) -> dict[str, Any]:
    """Train, keep the best epoch (validation MSE), export it; return a summary dict."""
    out_dir, work_dir = Path(out_dir), Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    val_rng = np.random.default_rng(config.seed + 1)
    t0 = time.perf_counter()

    wave, labels, pool = make_pool(int(config.data["n_train"]), rng)
    _vwave, vlabels, vpool = make_pool(int(config.data["n_val"]), val_rng)
    log(f"pool: {len(pool)} train + {len(vpool)} val spectra in {time.perf_counter() - t0:.0f} s")
    inputs = SpectraInputs(wave, reference_grid())
    x_val = inputs.preprocess(inputs.noisy(vpool, vlabels["snr"], val_rng))
    y_val = labels_to_targets(vlabels)
    y_train = labels_to_targets(labels)

    net = BossNet(config.network)
    tcfg = config.train
    if str(tcfg.get("optimizer", "adamax")).lower() != "adamax":
        raise ValueError(f"{config.source}: optimizer {tcfg['optimizer']!r}; only adamax is used")
    opt = torch.optim.Adamax(net.parameters(), lr=float(tcfg["lr"]))
    lo_snr, hi_snr = config.data.get("snr_range", [5.0, 200.0])
    batch = int(tcfg["batch_size"])
    budget = float(tcfg.get("time_budget_s", float("inf")))
    best = {"val_mse": float("inf"), "epoch": -1}
    best_state = None
    history = []
    n = len(pool)
    for epoch in range(int(tcfg["epochs"])):
        for group in opt.param_groups:
            group["lr"] = _lr_at(epoch, tcfg)
        net.train()
        order = rng.permutation(n)
        snr = 10 ** rng.uniform(np.log10(lo_snr), np.log10(hi_snr), n)
        losses = []
        te = time.perf_counter()
        for a in range(0, n - batch + 1, batch):
            idx = order[a:a + batch]
            x = inputs.preprocess(inputs.noisy(pool[idx], snr[idx], rng, config.augment))
            pred = net(torch.from_numpy(x).unsqueeze(1))
            loss = torch.mean((pred - torch.from_numpy(y_train[idx])) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if len(losses) % 200 == 0:
                log(f"  epoch {epoch} batch {len(losses)}: mean MSE {np.mean(losses[-200:]):.4f} "
                    f"({time.perf_counter() - te:.0f} s)")
        val_mse, _ = _evaluate(net, x_val, y_val)
        record = {"epoch": epoch, "lr": opt.param_groups[0]["lr"],
                  "train_mse": float(np.mean(losses)), "val_mse": val_mse,
                  "epoch_s": round(time.perf_counter() - te, 1),
                  "elapsed_s": round(time.perf_counter() - t0, 1)}
        history.append(record)
        log(json.dumps(record))
        if val_mse < best["val_mse"]:
            best = {"val_mse": val_mse, "epoch": epoch}
            best_state = copy.deepcopy(net.state_dict())
            torch.save({"state_dict": best_state, "config": config.network.to_dict()},
                       work_dir / "best.pt")
        if time.perf_counter() - t0 > budget:
            log(f"time budget {budget:.0f} s spent after epoch {epoch}; keeping epoch "
                f"{best['epoch']}")
            break

    assert best_state is not None, "at least one epoch ran"
    net.load_state_dict(best_state)
    net.eval()
    sha = tensors_sha256(best_state)
    onnx_path = out_dir / f"{config.name}.onnx"
    report = export_module(net, onnx_path, weights_sha256=sha, name=config.name,
                           provenance="synthetic-demo", description=DESCRIPTION,
                           seed=config.seed)
    summary = {
        "name": config.name, "seed": config.seed, "config_file": config.source,
        "network": config.network.to_dict(), "data": config.data, "augment": config.augment,
        "train": config.train, "best_epoch": best["epoch"], "best_val_mse": best["val_mse"],
        "epochs_run": len(history), "wall_s": round(time.perf_counter() - t0, 1),
        "weights_sha256": sha, "onnx": onnx_path.name, "history": history,
        "export": _report_dict(report),
    }
    (work_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    log(f"exported {onnx_path} (best epoch {best['epoch']}, val MSE {best['val_mse']:.4f})")
    return summary


def _report_dict(report: Any) -> dict[str, Any]:
    try:
        from dataclasses import asdict

        return asdict(report)
    except TypeError:
        return {"repr": repr(report)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bossnet_export.train", description=__doc__
                                     .split("\n\n")[0])
    parser.add_argument("--config", required=True, help="training YAML (configs/demo.yaml)")
    parser.add_argument("--out", default="models", help="folder for the exported .onnx")
    parser.add_argument("--work", default="build/train-demo",
                        help="folder for the best checkpoint and summary.json")
    args = parser.parse_args(argv)
    config = load_train_config(args.config)
    train(config, args.out, args.work, log=lambda s: print(s, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
