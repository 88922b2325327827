"""What proving the model's content costs at start-up, side by side in one run.

Each figure is the median of `--repeat` fresh processes (imports excluded), so the page cache is
warm but nothing in the process is:

  hash      sha256 of the .onnx and its external data (what every start would pay without memo)
  memo      the content check as run: memo hit (files unchanged since hashed)
  open      open_model on CPU: content check + proven ORT copy mapped + output probe
  open-rehash  the same after `os.utime` of the model (ctime moved: the memo re-hashes)
  direct    open_model with BOSSNET_ONNX_CACHE=off (the .onnx parsed and copied)
  probe     the output probe alone (3 forwards), part of `open`

    python benchmarks/cold_start.py                    # full 290 MB network, random weights
    python benchmarks/cold_start.py --model model.onnx # any exported model

Building the full network needs torch (the export extra); an existing model does not.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, os, sys, time
import onnxruntime
from bossnet_onnx.model import ort_cache
from bossnet_onnx.model.content import model_content_sha256
from bossnet_onnx.model.session import check_outputs, open_model
from pathlib import Path
path, what = Path(sys.argv[1]), sys.argv[2]
if what == "open-rehash":
    os.utime(path)
t = time.perf_counter()
if what == "hash":
    model_content_sha256(path)
elif what == "memo":
    ort_cache.content_sha256(path, ort_cache.cache_dir())
elif what == "probe":
    m = open_model(path, provider="cpu")
    m.probed.clear()
    ort_cache.remembered = lambda kind, key: False  # time the probe's forwards, not its memo
    t = time.perf_counter()
    check_outputs(m)
else:
    open_model(path, provider="cpu")
print(json.dumps(time.perf_counter() - t))
"""


def build_full_model(workdir: Path) -> Path:
    from bossnet_export import OFFICIAL_BOSS, export_model
    from bossnet_export.random_weights import build_random_model, save_official_layout

    ckpt = workdir / "checkpoint"
    ckpt.mkdir(parents=True, exist_ok=True)
    save_official_layout(build_random_model(OFFICIAL_BOSS, seed=0), ckpt)
    path = workdir / "model.onnx"
    export_model(ckpt, path, name="cold-start-random-official", provenance="random-weights")
    return path


def timed(path: Path, what: str, env: dict) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), what], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an exported .onnx (default: build the full "
                                                   "network with random weights)")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bossnet-cold-"))
    workdir.mkdir(parents=True, exist_ok=True)
    path = args.model or build_full_model(workdir)
    env = dict(os.environ, BOSSNET_ONNX_CACHE=str(workdir / "ort-cache"))
    env.pop("BOSSNET_ONNX_SHARED_CACHE", None)
    size = path.stat().st_size
    t = time.perf_counter()
    timed(path, "open", env)  # builds the ORT copy once
    build_s = time.perf_counter() - t
    time.sleep(3.5)  # past the memo's racy window, so the next start writes the memo
    timed(path, "open", env)
    load = os.getloadavg()[0]
    print(f"# cold start of {path.name} ({size / 1e6:.0f} MB), median of {args.repeat} fresh "
          f"processes; load average {load:.1f} on {os.cpu_count()} cpus")
    print(f"one-time ORT copy build (first open): {build_s:.2f} s")
    results = {}
    for what in ("hash", "memo", "probe", "open", "open-rehash"):
        results[what] = statistics.median(timed(path, what, env) for _ in range(args.repeat))
        if what == "open-rehash":
            time.sleep(3.5)
    direct_env = dict(env, BOSSNET_ONNX_CACHE="off")
    results["direct"] = statistics.median(timed(path, "open", direct_env)
                                          for _ in range(args.repeat))
    for what, seconds in results.items():
        print(f"{what:<13}{seconds:8.3f} s")
    print(f"content check share of open: {results['memo'] / results['open']:.1%} with memo, "
          f"{results['hash'] / results['open-rehash']:.0%} when re-hashing; "
          f"open vs direct: {results['direct'] / results['open']:.1f}x faster")
    print(json.dumps({k: round(v, 4) for k, v in results.items()}))


if __name__ == "__main__":
    main()
