"""Checkpoint -> verified ONNX: the torch-free converter against the torch export, in one run.

Both convert the same official-layout checkpoint (model_args.yaml + 10 chunks; by default the
full 290 MB BOSS network with random He-initialised weights), each in a fresh process so that
neither inherits the other's memory. Reported per converter: wall time of the whole conversion
(read, build, write, fatal parity check, install) and peak resident memory (VmHWM, which
restarts at exec), both absolute and above the process's size after its imports; then the
ratios numpy / torch and the peak above imports as a multiple of the weights' bytes (the goal:
no slower, at most 2.5x the weights).

    python benchmarks/convert.py                  # full BOSS network, random weights
    python benchmarks/convert.py --checkpoint DIR # any official-layout directory

Making the random checkpoint and the torch side need torch (the export extra).
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
def peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
side, checkpoint, output = sys.argv[1:4]
import numpy, onnx, onnxruntime  # both sides need these; imports are not the conversion
if side == "torch":
    import torch
    from bossnet_export import export_model as convert
    torch.set_num_threads(int(sys.argv[4]))
else:
    from bossnet_onnx.convert import convert_checkpoint as convert
from bossnet_onnx.convert import architecture, forward, graph, torch_zip  # noqa: F401
base = peak_mib()
start = time.perf_counter()
report = convert(checkpoint, output, member="boss", provenance="random-weights")
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_mib": peak_mib(), "base_mib": base,
                  "parity": report.parity.summary(), "bytes": report.file_bytes}))
"""


def make_checkpoint(folder: Path) -> Path:
    from bossnet_export import OFFICIAL_BOSS
    from bossnet_export.random_weights import build_random_model, save_official_layout

    return save_official_layout(build_random_model(OFFICIAL_BOSS, seed=3), folder / "model_boss")


def run_side(side: str, checkpoint: Path, out: Path, threads: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, side, str(checkpoint), str(out),
                           str(threads)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{side} conversion failed: {proc.stderr.strip().splitlines()[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cpu_model() -> tuple[str, bool]:
    name, avx512 = platform.processor() or "unknown", False
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return name, avx512
    for line in text.splitlines():
        if line.startswith("model name"):
            name = line.split(":", 1)[1].strip()
            break
    return name, " avx512f" in text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="official-layout directory (default: random full BOSS network)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bossnet-convert-") as tmp:
        work = Path(tmp)
        checkpoint = args.checkpoint or make_checkpoint(work)
        weights = sum(p.stat().st_size for p in checkpoint.glob("model_chunk_*"))
        results = {side: run_side(side, checkpoint, work / f"{side}.onnx", args.threads)
                   for side in ("numpy", "torch")}
    name, avx512 = cpu_model()
    doc = {"cpu": name, "avx512": avx512, "weights_mib": weights / 2**20, **results,
           "time_ratio": results["numpy"]["seconds"] / results["torch"]["seconds"],
           "peak_ratio": results["numpy"]["peak_mib"] / results["torch"]["peak_mib"]}
    for side in ("numpy", "torch"):
        above = results[side]["peak_mib"] - results[side]["base_mib"]
        doc[f"{side}_peak_over_weights"] = above / (weights / 2**20)
    if args.json:
        print(json.dumps(doc, indent=1))
        return
    print(f"checkpoint: {weights / 2**20:.0f} MiB of weights; CPU: {name} "
          f"(AVX-512: {'yes' if avx512 else 'no'})")
    print(f"{'converter':<10} {'time s':>8} {'peak MiB':>9} {'imports MiB':>12} "
          f"{'peak-imports / weights':>23}")
    for side in ("numpy", "torch"):
        r = results[side]
        print(f"{side:<10} {r['seconds']:>8.1f} {r['peak_mib']:>9.0f} {r['base_mib']:>12.0f} "
              f"{doc[f'{side}_peak_over_weights']:>23.2f}")
    print(f"numpy / torch: time {doc['time_ratio']:.2f}x, peak memory {doc['peak_ratio']:.2f}x")
    for side in ("numpy", "torch"):
        print(f"{side} parity: {results[side]['parity']}")


if __name__ == "__main__":
    main()
