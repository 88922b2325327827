#!/usr/bin/env python3
"""The distributed mode against a local run, side by side in one run, whole processes.

    python benchmarks/distributed.py                       # 64 files, 20 draws; 10,000 spectra
    python benchmarks/distributed.py --files 16 --spectra 2000   # quicker

1. Throughput: `bossnet-onnx predict @files -o X` without and with `--dask local:N` on the same
   BOSS files (bundled demo model, 20 draws): spectra per second and their ratio, and whether
   the two catalogues are equal in every numeric column.
2. Client memory: the peak RSS of the process the user started (the client; the Dask workers
   are other processes) on a run of `--spectra` spectra (mwmVisit files of 100 spectra each),
   next to the peak RSS of the local run on the same files.

Prints the CPU (model name, AVX-512 or not) first: figures from different machines differ.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # test tooling: survey-file writers

#: Runs the CLI in this process and prints its own peak RSS (the client's, not its workers').
_CLIENT = """
import resource, sys
from bossnet_onnx.cli import main
sys.argv = ["bossnet-onnx", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("PEAK_RSS_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, file=sys.stderr)
sys.exit(code)
"""


def cpu_line() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "CPU: unknown (no lscpu)"
    model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines()
                  if ln.startswith("Model name")), "unknown")
    flags = text.split("Flags:", 1)[-1]
    return (f"CPU: {model}; {os.cpu_count()} CPUs; AVX-512: "
            f"{'yes' if 'avx512f' in flags else 'no'}; bf16: "
            f"{'yes' if 'avx512_bf16' in flags else 'no'}")


def write_spec_files(folder: Path, n: int, seed: int = 1) -> list[str]:
    import layouts

    from bossnet_onnx.science.synthetic import sample_labels, synthesize

    rng = np.random.default_rng(seed)
    labels = sample_labels(n, rng)
    files = []
    for i in range(n):
        wave, flux, ivar = synthesize(float(labels["teff"][i]), float(labels["logg"][i]),
                                      float(labels["fe_h"][i]), float(labels["rv"][i]),
                                      float(labels["snr"][i]), rng)
        path = folder / f"spec-5000-59000-{i + 1:04d}.fits"
        layouts.write_spec(path, wave, flux.astype(np.float32), ivar.astype(np.float32),
                           plate=5000, mjd=59000, fiberid=i + 1)
        files.append(str(path))
    return files


def write_visit_files(folder: Path, n_spectra: int, per_file: int = 100) -> list[str]:
    import layouts

    from bossnet_onnx.science.synthetic import sample_labels, synthesize

    rng = np.random.default_rng(2)
    files = []
    for start in range(0, n_spectra, per_file):
        count = min(per_file, n_spectra - start)
        labels = sample_labels(count, rng)
        rows = []
        for i in range(count):
            _, flux, ivar = synthesize(float(labels["teff"][i]), float(labels["logg"][i]),
                                       float(labels["fe_h"][i]), float(labels["rv"][i]),
                                       float(labels["snr"][i]), rng)
            rows.append({"flux": flux.astype(np.float32), "ivar": ivar.astype(np.float32)})
        path = folder / f"mwmVisit-0.6.0-{start // per_file + 1}.fits"
        layouts.write_mwm(path, rows, kind="visit")
        files.append(str(path))
    return files


def run_cli(args: list[str]) -> tuple[float, float, str]:
    """(wall seconds, client peak RSS MB, stderr) of one whole CLI process."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CLIENT, *args], capture_output=True,
                          text=True, check=False, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"bossnet-onnx {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    peak = next(float(ln.split()[1]) for ln in done.stderr.splitlines()
                if ln.startswith("PEAK_RSS_MB"))
    return wall, peak, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=64)
    parser.add_argument("--spectra", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--draws", type=int, default=20)
    args = parser.parse_args()
    from bossnet_onnx.outputs.catalogue import read_catalogue

    print(cpu_line())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "spec").mkdir()
        files = write_spec_files(work / "spec", args.files)
        listing = work / "files.txt"
        listing.write_text("\n".join(files) + "\n")
        common = ["predict", f"@{listing}", "--draws", str(args.draws), "--seed", "1", "-q",
                  "--provider", "cpu"]
        local_s, local_mb, _ = run_cli([*common, "-o", str(work / "local.fits")])
        dask_s, dask_mb, _ = run_cli([*common, "--dask", f"local:{args.workers}", "-o",
                                      str(work / "dask.fits")])
        a, b = read_catalogue(work / "local.fits"), read_catalogue(work / "dask.fits")
        numeric = [n for n in a.colnames if a[n].dtype.kind in "fiu"]
        same = all(np.array_equal(np.asarray(a[n]), np.asarray(b[n]), equal_nan=True)
                   for n in numeric)
        n = len(a)
        print(f"\n1. throughput, {n} spectra in {args.files} files, {args.draws} draws, "
              f"bundled demo model, whole processes")
        print(f"   local run        {local_s:7.1f} s  {n / local_s:7.1f} spectra/s")
        print(f"   --dask local:{args.workers}   {dask_s:7.1f} s  {n / dask_s:7.1f} spectra/s   "
              f"ratio dask/local {local_s / dask_s:.2f}x")
        print(f"   rows equal in all {len(numeric)} numeric columns: {same}")

        (work / "visit").mkdir()
        visits = write_visit_files(work / "visit", args.spectra)
        listing.write_text("\n".join(visits) + "\n")
        small = ["predict", f"@{listing}", "--draws", "2", "--seed", "1", "-q",
                 "--provider", "cpu"]
        local_s, local_mb, _ = run_cli([*small, "-o", str(work / "v-local.fits")])
        dask_s, dask_mb, _ = run_cli([*small, "--dask", f"local:{args.workers}", "-o",
                                      str(work / "v-dask.fits")])
        rows = len(read_catalogue(work / "v-dask.fits"))
        print(f"\n2. client memory, {rows} spectra in {len(visits)} mwmVisit files, 2 draws")
        print(f"   local run: peak RSS {local_mb:6.0f} MB ({local_s:.1f} s)")
        print(f"   dask client: peak RSS {dask_mb:6.0f} MB ({dask_s:.1f} s); ratio "
              f"{dask_mb / local_mb:.2f}x of the local run's")
        print(json.dumps({"local_s": local_s, "dask_s": dask_s, "local_mb": local_mb,
                          "client_mb": dask_mb, "spectra": rows}))


if __name__ == "__main__":
    main()
