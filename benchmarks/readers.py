#!/usr/bin/env python3
"""How fast the run can be fed: reading + preparing spec files (20 draws) with one reading thread
against reader processes, side by side, no model.

Why: on a GPU the model outruns one CPU core's reading and preparing (the H200 figures in
docs/performance.md), and reading threads do not help (the GIL), so a CUDA run reads with
processes (run/read_pool.py). This measures the feed rate each way on this machine, so the
GPU throughput a machine can reach is its model rate or its feed rate, whichever is lower.

    python benchmarks/readers.py [--n-files 256] [--processes 1,2,4] [--repeats 3]

Each way runs the run engine's own reading (`reading.read_and_prepare` in this process, or
`read_pool.ProcessReadAhead`, spawn start included) over the same synthetic spec files; rounds
alternate the order; the figure is the median over rounds, with the spread.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def make_files(folder: Path, n: int) -> list[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # survey-file writers
    from layouts import write_spec

    from bossnet_onnx.science.synthetic import sample_labels, synthesize

    rng = np.random.default_rng(0)
    labels = sample_labels(n, rng)
    files = []
    for i in range(n):
        path = folder / f"spec-1000-59000-{i + 1:04d}.fits"
        if not path.exists():
            wave, flux, ivar = synthesize(labels["teff"][i], labels["logg"][i], labels["fe_h"][i],
                                          labels["rv"][i], max(labels["snr"][i], 10.0), rng)
            write_spec(path, wave, flux, ivar, plate=1000, mjd=59000, fiberid=i + 1)
        files.append(str(path))
    return files


def feed(files: list[str], metadata, options, way: str) -> tuple[float, int]:
    """Seconds to read and prepare every file, and the model rows made."""
    from bossnet_onnx.run.read_pool import ProcessReadAhead
    from bossnet_onnx.run.reading import StageTimes, read_and_prepare
    from bossnet_onnx.run.rows import Prepared

    times = StageTimes()
    t0 = time.perf_counter()
    rows = 0
    if way.startswith("threads:"):
        def one(path: str) -> int:
            pieces = read_and_prepare(path, metadata, options, StageTimes())
            return sum(p.inputs.shape[0] for p in pieces if isinstance(p, Prepared))
        with ThreadPoolExecutor(int(way.split(":")[1])) as pool:
            rows = sum(pool.map(one, files))
    else:
        n = int(way.split(":")[1])
        for piece in ProcessReadAhead(files, metadata, options, times, (), n):
            if isinstance(piece, Prepared):
                rows += piece.inputs.shape[0]
        if times.extra["files_read_here"]:
            raise SystemExit(f"{way}: {times.extra['files_read_here']} files were read in this "
                             f"process (reader processes did not start)")
    return time.perf_counter() - t0, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--n-files", type=int, default=256)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    from bossnet_onnx import load
    from bossnet_onnx.model.session import available_cpus
    from bossnet_onnx.run.options import RunOptions

    folder = args.workdir or Path(tempfile.gettempdir()) / "bossnet-readers-bench"
    folder.mkdir(parents=True, exist_ok=True)
    files = make_files(folder, args.n_files)
    metadata = load(None).metadata  # the bundled model: its grid and recipe are BOSS Net's
    options = RunOptions(draws=20)
    ways = ["threads:1", "threads:2"] + [f"processes:{n}" for n in args.processes.split(",")]
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip()
                   for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"# reading + preparing {len(files)} spec files, 20 draws; cpu: {cpu}; "
          f"cpus usable {available_cpus()} (os: {os.cpu_count()})")
    results: dict[str, list[float]] = {w: [] for w in ways}
    rows = 0
    for r in range(args.repeats):
        for way in (ways if r % 2 == 0 else ways[::-1]):
            seconds, rows = feed(files, metadata, options, way)
            results[way].append(seconds)
    base = float(np.median(results["threads:1"]))
    print(f"{'way':<14}{'seconds':>9}{'spectra/s':>11}{'rows/s':>9}{'vs 1 thread (spread)':>24}")
    for way in ways:
        s = sorted(results[way])
        med = float(np.median(s))
        ratios = sorted(b / x for b, x in zip(results["threads:1"], results[way]))
        print(f"{way:<14}{med:>9.2f}{len(files) / med:>11.1f}{rows / med:>9.0f}"
              f"{f'{base / med:.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f})':>24}")


if __name__ == "__main__":
    main()
