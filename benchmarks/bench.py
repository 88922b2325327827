#!/usr/bin/env python3
"""Side-by-side benchmark: PyTorch (reference-style pipeline) vs bossnet-onnx, same work.

    python benchmarks/bench.py                    # 64 spec files, 20 draws, official BOSS config
    python benchmarks/bench.py --n-files 8 --draws 5 --config small   # quick look

Workload: the official BOSS Net configuration with random (He-initialised) weights saved in the
official chunked layout, exported through `bossnet_export`; N `spec-*.fits` files written by the
synthetic generator; D Monte-Carlo draws per spectrum.

(a) PyTorch, the way the reference pipeline works: files read in batches, per-spectrum
    interpolation (np.interp) and torch.quantile log-scaling, one batched forward for the
    noise-free spectra and one per draw.
(b) bossnet-onnx end to end: `predict_to_file` (read -> preprocess -> onnxruntime -> FITS).

Each side runs in its own subprocess so its peak RSS is its own. Printed: spectra/s, ratio,
stage times, cold start, peak RSS, FLOPs per forward, achieved GFLOP/s of the model stage
against this machine's measured float32 matmul peak, and int8 accuracy/speed.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------- setup
def make_workload(workdir: Path, n_files: int, config_name: str, seed: int = 0) -> dict:
    """Random official-layout checkpoint, its ONNX export (+ int8), and synthetic spec files."""
    from bossnet_export import OFFICIAL_BOSS, export_model
    from bossnet_export.random_weights import SMALL_CONFIG, build_random_model, save_official_layout
    from bossnet_onnx.synthetic.layouts import write_spec
    from bossnet_onnx.synthetic.spectra import sample_labels, synthesize

    config = OFFICIAL_BOSS if config_name == "official" else SMALL_CONFIG
    ckpt = workdir / "checkpoint"
    ckpt.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    save_official_layout(build_random_model(config, seed=seed), ckpt)
    onnx_path = workdir / "model.onnx"
    report = export_model(ckpt, onnx_path, name=f"bench-random-{config_name}",
                          provenance="random-weights", quantize="int8",
                          quantized_output=workdir / "model.int8.onnx")
    export_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    labels = sample_labels(n_files, rng)
    files = []
    for i in range(n_files):
        wave, flux, ivar = synthesize(labels["teff"][i], labels["logg"][i], labels["fe_h"][i],
                                      labels["rv"][i], max(labels["snr"][i], 10.0), rng)
        path = workdir / "spectra" / f"spec-{1000 + i // 500:04d}-59000-{i % 500 + 1:04d}.fits"
        path.parent.mkdir(exist_ok=True)
        write_spec(path, wave, flux, ivar, plate=1000 + i // 500, mjd=59000, fiberid=i % 500 + 1)
        files.append(str(path))
    chunk_bytes = sum(p.stat().st_size for p in ckpt.glob("model_chunk_*"))
    return {"checkpoint": str(ckpt), "onnx": str(onnx_path), "onnx_int8": str(workdir / "model.int8.onnx"),
            "files": files, "export_s": export_s, "weights_bytes": chunk_bytes,
            "parity_max_abs": report.max_abs_diff,
            "int8_report": report.quantized.summary() if report.quantized else "",
            "config": config.to_dict()}


def flops_per_forward(config: dict, n_pixels: int = 3900) -> float:
    """Multiply-adds x 2 of convolutions, the bin averages of the pool and the linear layers."""
    k = config["kernel_size"]
    dims = [config["model_dim"] * m for m in config["dim_mults"]]
    length = (n_pixels + 2 * (k // 2) - k + 1) // 2
    flops = 2.0 * 2 * dims[0] * k * (n_pixels + 2 * (k // 2) - k + 1)
    for cin, cout in itertools.pairwise(dims):
        flops += 2.0 * cin * cout * k * length + 2.0 * cout * cout * k * length
    pool = config["adapt_pool_output_dim"]
    flops += 2.0 * dims[-1] * pool * 3  # gather + weighted sum over bins of <= 3 pixels
    width = dims[-1] * pool
    for _ in range(config["num_linear"]):
        flops += 2.0 * width * config["linear_dim"]
        width = config["linear_dim"]
    flops += 2.0 * width * config["num_targets"]
    return flops


def matmul_peak(threads: int, n: int = 2048, repeat: int = 5) -> float:
    """Measured float32 GEMM GFLOP/s (onnxruntime MatMul with `threads`: same kernels family)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "mm",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]),
                               helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    sess.run(None, {"a": a, "b": a})
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        sess.run(None, {"a": a, "b": a})
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best / 1e9


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it restarts at exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def operator_profile(onnx_path: str, threads: int, rows: int = 32) -> dict[str, float]:
    """Share of kernel time per ONNX operator type (onnxruntime's profiler), for the 'why'."""
    import collections

    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.enable_profiling = True
    opts.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ortprof")
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((rows, 3900)).astype(np.float32)
    for _ in range(3):
        sess.run(None, {"flux": x})
    events = json.loads(Path(sess.end_profiling()).read_text())
    totals: collections.Counter = collections.Counter()
    for ev in events:
        if ev.get("cat") == "Node" and ev.get("name", "").endswith("_kernel_time"):
            totals[ev["args"]["op_name"]] += ev["dur"]
    whole = sum(totals.values()) or 1
    return {op: t / whole for op, t in totals.most_common()}


# ----------------------------------------------------------------------------- sides
def side_torch(work: dict, draws: int, threads: int, batch_files: int = 128) -> dict:
    """The reference pipeline's structure, in our code: per-draw batched forwards."""
    import torch

    from bossnet_export import load_checkpoint
    from bossnet_onnx.preprocess import sigma_from_ivar
    from bossnet_onnx.readers import read_spectra

    torch.set_num_threads(threads)
    times = {"read": 0.0, "preprocess": 0.0, "model": 0.0, "write": 0.0}
    t0 = time.perf_counter()
    model = load_checkpoint(work["checkpoint"]).model.eval()
    with torch.no_grad():  # warm-up (oneDNN kernel selection) counts as cold start
        model(torch.zeros(2, 1, 3900))
    cold = time.perf_counter() - t0
    grid = torch.linspace(3800, 8900, 3900)
    from bossnet_onnx.metadata import DEFAULT_PARAMETER_NAMES, DEFAULT_STATS

    means = torch.tensor([DEFAULT_STATS[p]["MEAN"] for p in DEFAULT_PARAMETER_NAMES])
    stds = torch.tensor([DEFAULT_STATS[p]["STD"] for p in DEFAULT_PARAMETER_NAMES])

    def prepare(flux_b, wave_b):
        out = torch.zeros(flux_b.shape[0], 3900)
        for i in range(flux_b.shape[0]):
            keep = ~torch.isnan(flux_b[i])
            out[i] = torch.from_numpy(np.interp(grid, wave_b[i][keep], flux_b[i][keep]))
        for i in range(out.shape[0]):
            x = torch.log(torch.clip(out[i], min=1e-6))
            out[i] = torch.clip(x, max=torch.quantile(x, 0.95) + 1)
        return out

    rows = []
    n_spectra = 0
    total0 = time.perf_counter()
    files = work["files"]
    for start in range(0, len(files), batch_files):
        t = time.perf_counter()
        specs = [s for f in files[start:start + batch_files] for s in read_spectra(f)]
        n = max(len(s.flux) for s in specs)
        flux = torch.full((len(specs), n), float("nan"))
        err = torch.full((len(specs), n), float("nan"))
        wave = torch.full((len(specs), n), float("nan"))
        for i, s in enumerate(specs):
            m = len(s.flux)
            flux[i, :m] = torch.from_numpy(np.asarray(s.flux, np.float32))
            err[i, :m] = torch.from_numpy(sigma_from_ivar(s.ivar, s.flux))
            wave[i, :m] = torch.from_numpy(np.asarray(s.wavelength, np.float32))
        times["read"] += time.perf_counter() - t
        preds = []
        with torch.no_grad():
            for d in range(draws + 1):
                t = time.perf_counter()
                if d == 0:
                    f = flux
                else:
                    noise = torch.randn_like(flux)
                    noise[flux.isnan()] = float("nan")
                    f = flux + err * noise
                x = prepare(f, wave)
                t2 = time.perf_counter()
                times["preprocess"] += t2 - t
                preds.append(model(x[:, None, :]) * stds + means)
                times["model"] += time.perf_counter() - t2
        stack = torch.stack(preds)
        rows.append(torch.cat([stack[0], stack[1:].std(dim=0)], dim=1).numpy())
        n_spectra += len(specs)
    t = time.perf_counter()
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=True) as fh:
        np.savetxt(fh, np.concatenate(rows), delimiter=",")
    times["write"] += time.perf_counter() - t
    total = time.perf_counter() - total0
    return {"side": "pytorch", "spectra": n_spectra, "seconds": total, "cold_start": cold,
            "stages": times, "model_rows": n_spectra * (draws + 1),
            "peak_rss_mb": peak_rss_mb()}


def side_onnx(work: dict, draws: int, threads: int, batch_size: int, model_key: str,
              provider: str) -> dict:
    from bossnet_onnx.pipeline import StageTimes
    from bossnet_onnx.runs import predict_to_file

    times = StageTimes()
    out = Path(tempfile.mkdtemp()) / "catalogue.fits"
    t0 = time.perf_counter()
    table = predict_to_file(work["files"], out, model=work[model_key], provider=provider,
                            draws=draws, seed=1, batch_size=batch_size, threads=threads,
                            times=times)
    total = time.perf_counter() - t0
    pred = np.array([table[c] for c in ("logg", "teff", "fe_h", "bn_v_r")]).T
    return {"side": model_key, "spectra": len(table), "seconds": total - times.session,
            "cold_start": times.session, "model_rows": len(table) * (draws + 1),
            "stages": {"read": times.read, "preprocess": times.preprocess,
                       "model": times.model, "write": times.write},
            "failed": int(np.sum(table["result_flags"] & 1)), "pred": pred.tolist(),
            "provider": table.meta["PROVIDER"],
            "peak_rss_mb": peak_rss_mb()}


def run_side(args: argparse.Namespace, work_json: Path, side: str) -> dict:
    model_key = "onnx" if side == "onnx_direct" else side
    cmd = [sys.executable, __file__, "--_side", model_key, "--_work", str(work_json),
           "--draws", str(args.draws), "--threads", str(args.threads),
           "--batch-size", str(args.batch_size), "--provider", args.provider]
    env = dict(os.environ)
    if side == "onnx_direct":
        env["BOSSNET_ONNX_CACHE"] = "off"  # load the .onnx itself, no memory-mapped ORT copy
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{side} side failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["side"] = side
    return res


# ----------------------------------------------------------------------------- report
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-files", type=int, default=64)
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--config", choices=["official", "small"], default="official")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--provider", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--_side", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_work", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from bossnet_onnx.session import available_cpus

    args.threads = args.threads or available_cpus()
    if args._side:
        work = json.loads(args._work.read_text())
        if args._side == "pytorch":
            res = side_torch(work, args.draws, args.threads)
        else:
            res = side_onnx(work, args.draws, args.threads, args.batch_size, args._side,
                            args.provider)
        print(json.dumps(res))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bossnet-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"# bossnet-onnx benchmark  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"machine: {platform.machine()} {platform.processor() or ''} cpus usable "
          f"{available_cpus()}, threads {args.threads}, python {platform.python_version()}")
    t = time.perf_counter()
    work = make_workload(workdir, args.n_files, args.config)
    print(f"workload: {args.config} config, {len(work['files'])} spec files, {args.draws} draws; "
          f"weights {work['weights_bytes'] / 1e6:.1f} MB; export+parity {work['export_s']:.1f} s "
          f"(max |ONNX-PyTorch| {work['parity_max_abs']:.2e}); setup {time.perf_counter() - t:.1f} s")
    work_json = workdir / "work.json"
    work_json.write_text(json.dumps(work))
    # The memory-mapped ORT-format copies are built once per model (bossnet_onnx.ort_cache);
    # build them here so the timed runs see what every later run of a model sees.
    os.environ.setdefault("BOSSNET_ONNX_CACHE", str(workdir / "ort-cache"))
    from bossnet_onnx.ort_cache import cached_ort_model

    t = time.perf_counter()
    for key in ("onnx", "onnx_int8"):
        cached_ort_model(work[key])
    print(f"one-time ORT-format copies of both models: {time.perf_counter() - t:.1f} s")
    flops = flops_per_forward(work["config"])
    peak = matmul_peak(args.threads)
    sides = [run_side(args, work_json, s) for s in ("pytorch", "onnx", "onnx_direct", "onnx_int8")]
    print(f"FLOPs per forward: {flops / 1e9:.3f} GFLOP; measured fp32 matmul peak "
          f"({args.threads} threads): {peak:.1f} GFLOP/s")
    print()
    head = (f"{'side':<13}{'spectra/s':>10}{'total s':>9}{'read':>8}{'prep':>8}{'model':>8}"
            f"{'write':>8}{'cold s':>8}{'RSS MB':>8}{'GFLOP/s':>9}{'% peak':>8}")
    print(head)
    print("-" * len(head))
    base = sides[0]
    for r in sides:
        st = r["stages"]
        gflops = flops * r["model_rows"] / max(st["model"], 1e-9) / 1e9
        print(f"{r['side']:<13}{r['spectra'] / r['seconds']:>10.2f}{r['seconds']:>9.2f}"
              f"{st['read']:>8.2f}{st['preprocess']:>8.2f}{st['model']:>8.2f}{st['write']:>8.2f}"
              f"{r['cold_start']:>8.2f}{r['peak_rss_mb']:>8.0f}{gflops:>9.1f}"
              f"{100 * gflops / peak:>7.0f}%")
    onnx_r, direct_r, int8_r = sides[1], sides[2], sides[3]
    ratio = base["seconds"] / onnx_r["seconds"]
    print()
    print(f"end-to-end speed-up vs PyTorch: {ratio:.2f}x (target >= 2x) | int8: "
          f"{base['seconds'] / int8_r['seconds']:.2f}x")
    model_ratio = base["stages"]["model"] / max(onnx_r["stages"]["model"], 1e-9)
    print(f"model stage vs PyTorch: {model_ratio:.2f}x; non-model time PyTorch "
          f"{base['seconds'] - base['stages']['model']:.2f} s vs ours (overlapped) "
          f"{onnx_r['seconds'] - onnx_r['stages']['model']:.2f} s")
    print(f"memory-mapped ORT copy vs loading the .onnx itself: cold start "
          f"{onnx_r['cold_start']:.2f} vs {direct_r['cold_start']:.2f} s, peak RSS "
          f"{onnx_r['peak_rss_mb']:.0f} vs {direct_r['peak_rss_mb']:.0f} MB, model "
          f"{onnx_r['stages']['model']:.2f} vs {direct_r['stages']['model']:.2f} s")
    gflops = flops * onnx_r["model_rows"] / onnx_r["stages"]["model"] / 1e9
    weights_mb = work["weights_bytes"] / 1e6
    print(f"targets: model stage {100 * gflops / peak:.0f}% of peak (>= 70%); cold start "
          f"{onnx_r['cold_start']:.2f} s (< 2 s); peak RSS {onnx_r['peak_rss_mb']:.0f} MB = "
          f"{onnx_r['peak_rss_mb'] / max(weights_mb, 1e-9):.2f}x weights (< 2x)")
    profile = operator_profile(work["onnx"], args.threads)
    shares = ", ".join(f"{op} {100 * v:.0f}%" for op, v in list(profile.items())[:5])
    print(f"where the model time goes (fp32, per operator): {shares}")
    misses = []
    if ratio < 2:
        misses.append(f"end to end {ratio:.2f}x < 2x: the network is "
                      f"{100 * onnx_r['stages']['model'] / onnx_r['seconds']:.0f}% of our wall time "
                      f"and onnxruntime runs it {model_ratio:.2f}x faster than PyTorch; the rest "
                      f"(read/preprocess/write) is already overlapped")
    if gflops / peak < 0.7:
        conv = profile.get("Conv", 0.0)
        misses.append(f"model stage {100 * gflops / peak:.0f}% < 70% of peak: convolutions are "
                      f"{100 * conv:.0f}% of the time and run near their own GEMM speed; the "
                      f"element-wise ops (Elu, Pad, Add) and the memory-bound head take the rest")
    if onnx_r["peak_rss_mb"] > 2 * weights_mb:
        misses.append(f"peak RSS {onnx_r['peak_rss_mb'] / weights_mb:.2f}x > 2x: the mapped "
                      f"weights once, plus the interpreter and numpy/astropy/onnxruntime "
                      f"(~80 MB) and ~4 MB of activations per --batch-size row")
    if onnx_r["cold_start"] >= 2:
        misses.append(f"cold start {onnx_r['cold_start']:.2f} s >= 2 s")
    for line in misses:
        print(f"missed: {line}")
    a, b = np.array(onnx_r["pred"]), np.array(int8_r["pred"])
    diff = np.nanmax(np.abs(a - b), axis=0)
    print(f"int8 vs fp32 on these spectra, max |diff|: logg {diff[0]:.3f} dex, Teff "
          f"{diff[1]:.0f} K, [Fe/H] {diff[2]:.3f} dex, RV {diff[3]:.2f} km/s")
    if work["int8_report"]:
        print(f"int8 export parity: {work['int8_report']}")
    if args.json:
        args.json.write_text(json.dumps({"sides": sides, "flops": flops, "peak": peak,
                                         "work": {k: v for k, v in work.items() if k != "files"}}))


if __name__ == "__main__":
    main()
