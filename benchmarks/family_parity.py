"""Parity of every family member with the reference code, on the same files and weights.

    python benchmarks/family_parity.py --reference /tmp/bossnet-ref [--work /tmp/parity]

For each member: seeded He-initialised weights at the published size, written in the official
chunked layout into the reference checkout (`bossnet/model_<x>/`) and exported here; then the
reference CLI (`-u 0`, or its pipeline class where its CLI cannot reach it) and our `predict`
(`--draws 0`) run on the same files. Prints, per member, the max |ours - reference| of each
output divided by that output's STD (the normalised units the network predicts).

Needs torch (the reference and the exporter) and the reference checkout (a clone of
hutchresearch/BOSSNet; nothing of it is copied here). Not run by the test suite: CI has neither.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
REFERENCE_DIRS = {"boss": "model_boss", "apogee": "model_apogee", "gaia-rvs": "model_gaia_rvs",
                  "gaia-xp": "model_gaia_xp"}
#: reference param name -> our catalogue column (and how to compare)
COLUMNS = {"logg": "logg", "logTeff": "log_teff", "FeH": "fe_h", "rv": "bn_v_r"}


def _write_weights(member: str, reference: Path, seed: int) -> tuple[Path, object]:
    from bossnet_export.config import BossNetConfig
    from bossnet_export.random_weights import build_random_model, save_official_layout
    from bossnet_onnx.science.members import OFFICIAL_CONFIGS

    config = BossNetConfig.from_mapping(OFFICIAL_CONFIGS[member])
    model = build_random_model(config, seed=seed, calibration_rows=_calibration_rows(member))
    target = reference / "bossnet" / REFERENCE_DIRS[member]
    saved = target / "model_args.yaml"
    keep = saved.read_text() if saved.exists() else None
    save_official_layout(model, target)
    if keep is not None:
        saved.write_text(keep)  # the reference's own model_args.yaml stays as published
    return target, model


def _calibration_rows(member: str) -> np.ndarray | None:
    """Inputs like the member's own, for the random network's BatchNorm statistics.

    Gaia inputs are not log-scaled: XP coefficients reach 1e5, so statistics measured on
    log-scaled optical spectra would let activations explode and float32 rounding, not the
    port, dominate the comparison (a trained network's statistics match its inputs).
    """
    rng = np.random.default_rng(11)
    if member == "gaia-xp":
        from bossnet_onnx.readers import read_spectra

        real = [s.flux for s in read_spectra(DATA / "gaia-xp-continuous-GaiaXPy-XP_CONTINUOUS_RAW.ecsv")]
        base = np.stack(real).astype(np.float64)
        scales = rng.uniform(0.2, 5.0, (16, 1))
        picks = base[rng.integers(0, len(base), 16)]
        return (picks * scales * (1 + 0.05 * rng.standard_normal(picks.shape))).astype(np.float32)
    if member == "gaia-rvs":
        return (1.0 + 0.05 * rng.standard_normal((16, 2401))).astype(np.float32)
    return None


def _rvs_file(work: Path, n: int = 4) -> Path:
    """A Gaia RVS archive ECSV (no public one could be found): smooth spectra with lines."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test tooling: survey-file writers
    from layouts import write_gaia_table

    rng = np.random.default_rng(7)
    wave = np.linspace(8460, 8700, 2401)
    rows = []
    for i in range(n):
        flux = 1.0 - sum(rng.uniform(0.1, 0.6) * np.exp(-0.5 * ((wave - c) / 1.5) ** 2)
                         for c in (8498.0, 8542.1, 8662.1))
        flux = flux * rng.uniform(0.95, 1.05) + rng.normal(0, 0.01, wave.size)
        flux[rng.integers(0, 2401, 5)] = np.nan
        rows.append({"source_id": 4_000_000_000_000_000_000 + i, "solution_id": 1,
                     "combined_method_id": 1, "flux": flux,
                     "flux_error": np.full(wave.size, 0.01)})
    return write_gaia_table(work / "gaia-rvs-synthetic.ecsv", rows, overwrite=True)


def _run_reference(reference: Path, member: str, inputs: list[Path], out: Path,
                   source: str | None = None) -> float:
    pkg = reference / "bossnet"
    t0 = time.perf_counter()
    if member == "gaia-rvs":
        # The reference CLI cannot select it: DataSource has no GAIARVS member.
        code = ("import sys; sys.path[:0] = ['.', '..'];"
                "from pipeline import GAIARVSPipeline; from utils import Stats, open_yaml;"
                "p = GAIARVSPipeline(file_path=sys.argv[1], stats=Stats(**open_yaml("
                "'stats/gaia_rvs.yaml')), output_file=sys.argv[2], num_uncertainty_draws=0);"
                "p.predict(128, 0)")
        cmd = [sys.executable, "-c", code, str(inputs[0]), str(out)]
    elif source == "lamost_dr8":
        # The reference's -d lamost_dr8 fails under torch 2.13 (its reader returns numpy
        # arrays that boss_collate cannot assign into tensors); run its intended logic: the
        # same reader, its arrays handed over as tensors, through BOSSNETPipeline.
        listing = out.with_suffix(".list")
        listing.write_text("".join(f"{p}\n" for p in inputs))
        code = ("import sys; sys.path[:0] = ['.', '..']; import torch, dataset;"
                "raw = dataset.open_lamost_fitsDR8;"
                "dataset.open_lamost_fitsDR8 = lambda p: tuple(torch.from_numpy(a).float() "
                "for a in raw(p));"
                "from pipeline import BOSSNETPipeline; from utils import Stats, open_yaml;"
                "p = BOSSNETPipeline(spectra_paths=sys.argv[1], data_source='lamost_dr8', "
                "stats=Stats(**open_yaml('stats/boss.yaml')), output_file=sys.argv[2], "
                "num_uncertainty_draws=0); p.predict(128, 0)")
        cmd = [sys.executable, "-c", code, str(listing), str(out)]
    else:
        source = source or {"boss": "boss", "apogee": "apogee", "gaia-xp": "gaia_xp"}[member]
        stats = pkg / "stats" / f"{source}.yaml"
        if not stats.exists():
            # The reference ships no stats/lamost_dr7.yaml (its CLI opens one for -d
            # lamost_dr7); the network is BOSS Net's, so its stats are boss.yaml.
            shutil.copyfile(pkg / "stats" / "boss.yaml", stats)
        if member == "gaia-xp":
            listing = inputs[0]
        else:
            listing = out.with_suffix(".list")
            listing.write_text("".join(f"{p}\n" for p in inputs))
        cmd = [sys.executable, "__main__.py", str(listing), "-d", source, "-u", "0", "-o",
               str(out), "-w", "0"]
    out.unlink(missing_ok=True)
    subprocess.run(cmd, cwd=pkg, check=True, capture_output=True)
    return time.perf_counter() - t0


def _read_reference(out: Path) -> list[dict]:
    with open(out, newline="") as fh:
        return list(csv.DictReader(fh))


def _inputs(member: str, work: Path, copies: int, source: str | None) -> list[Path]:
    """The files both sides read; `copies` > 1 repeats them (under new names) for timing."""
    if member == "apogee":
        base = [p for p in sorted(DATA.glob("apogee-apstar-*.fits"))
                if "2M03290406" not in p.name]  # the reference cannot read 1-D apStar files
    elif member == "gaia-xp":
        base = [DATA / "gaia-xp-continuous-GaiaXPy-XP_CONTINUOUS_RAW.ecsv"]
    elif member == "gaia-rvs":
        base = [_rvs_file(work)]
    elif source == "lamost_dr7":
        base = sorted(DATA.glob("lamost-dr7-*.fits"))
    elif source == "lamost_dr8":
        base = sorted(DATA.glob("lamost-dr9-*.fits.gz"))  # the DR8+ table layout
    else:
        base = sorted(DATA.glob("sdss-spec-*.fits"))
    if copies == 1:
        return base
    if member.startswith("gaia"):
        # one table with the rows repeated: the reference reads one table per run
        from astropy.table import Table, vstack

        table = vstack([Table.read(base[0], format="ascii.ecsv")] * copies)
        target = work / f"{member}-x{copies}.ecsv"
        table.write(target, format="ascii.ecsv", overwrite=True)
        return [target]
    out = []
    for i in range(copies):
        for p in base:
            target = work / "copies" / f"{i}-{p.name}"
            target.parent.mkdir(exist_ok=True)
            if not target.exists():
                target.symlink_to(p)
            out.append(target)
    return out


def compare(member: str, reference: Path, work: Path, seed: int = 0, copies: int = 1,
            source: str | None = None) -> dict:
    from bossnet_export import export_model
    from bossnet_onnx.run.stream import predict
    from bossnet_onnx.science.members import MEMBERS, OFFICIAL_CONFIGS, OFFICIAL_STATS

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench import flops_per_forward

    recipe = MEMBERS[member]
    chunks, model = _write_weights(member, reference, seed)
    onnx_path = work / f"{member}.onnx"
    if not onnx_path.exists() or copies == 1:
        export_model(chunks, onnx_path, member=member, provenance="random-weights")
    inputs = _inputs(member, work, copies, source)
    ref_out = work / f"{member}-{source or 'default'}-reference.csv"
    ref_seconds = _run_reference(reference, member, inputs, ref_out, source)
    ref_rows = _read_reference(ref_out)
    t0 = time.perf_counter()
    table = predict([str(p) for p in inputs], model=onnx_path, draws=0, threads=2)
    ours_seconds = time.perf_counter() - t0
    n_ours = len(table)
    # Our catalogue: one row per spectrum; the reference: one per file (row 0) or per source.
    if member in ("apogee", "boss"):
        table = table[table["row"] <= 0]
    worst = {}
    for name in recipe.parameter_names:
        ref = np.array([float(r[name]) for r in ref_rows])
        ours = np.asarray(table[COLUMNS[name]], dtype=np.float64)
        worst[name] = float(np.max(np.abs(ours - ref)) / OFFICIAL_STATS[member][name]["STD"])
    return {"member": member, "source": source or recipe.reference_source, "n": len(ref_rows),
            "n_ours": n_ours, "max_norm_diff": float(np.max(list(worst.values()))),
            "per_output": worst,
            "reference_s": ref_seconds, "ours_s": ours_seconds,
            "spread": float(np.std(np.asarray(table["log_teff"], dtype=np.float64))),
            "n_parameters": sum(p.numel() for p in model.parameters()),
            "file_mb": onnx_path.stat().st_size / 1e6,
            "gflop": flops_per_forward(OFFICIAL_CONFIGS[member], recipe.n_inputs) / 1e9}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bossnet-family-parity"))
    parser.add_argument("--members",
                        default="boss,lamost_dr7,lamost_dr8,apogee,gaia-rvs,gaia-xp")
    parser.add_argument("--copies", type=int, default=1,
                        help="repeat the inputs N times for the speed columns")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    for item in args.members.split(","):
        member, source = ("boss", item) if item.startswith("lamost") else (item, None)
        r = compare(member, args.reference, args.work, copies=args.copies, source=source)
        per = ", ".join(f"{k} {v:.1e}" for k, v in r["per_output"].items())
        print(f"{member:8s} -d {r['source']:10s} n={r['n']:4d}  max |ours - ref| / STD = "
              f"{r['max_norm_diff']:.2e} ({per}); std(log_teff) {r['spread']:.3f}", flush=True)
        print(f"{'':8s} {r['n_parameters']:,} parameters, {r['file_mb']:.1f} MB, "
              f"{r['gflop']:.3f} GFLOP/forward; reference {r['n'] / r['reference_s']:.1f} "
              f"spectra/s ({r['reference_s']:.1f} s incl. start), ours "
              f"{r['n_ours'] / r['ours_s']:.1f} spectra/s ({r['ours_s']:.1f} s incl. session)",
              flush=True)


if __name__ == "__main__":
    main()
