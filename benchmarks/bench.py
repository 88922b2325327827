#!/usr/bin/env python3
"""Side-by-side benchmark: PyTorch (reference-style pipeline) vs every bossnet-onnx engine x precision.

    python benchmarks/bench.py                    # 64 spec files, 20 draws, official BOSS config
    python benchmarks/bench.py --n-files 8 --draws 5 --config small --repeats 1   # quick look

Workload: the official BOSS Net configuration with random (He-initialised) weights saved in the
official chunked layout, exported through `bossnet_export` (+ its int8 copy); N `spec-*.fits`
files written by the synthetic generator; D Monte-Carlo draws per spectrum.

Sides, each in its own subprocess (so its peak RSS and cold start are its own), run in
alternating order for --repeats rounds; ratios are taken within a round and quoted as the
median with the spread over rounds, because the machine is shared and noisy:
  pytorch     the reference pipeline's structure: per-spectrum np.interp + torch.quantile,
              one batched forward for the noise-free spectra and one per draw;
  ort-fp32    `predict_to_file` on onnxruntime's CPU provider (memory-mapped ORT copy);
  ort-direct  the same, loading the .onnx itself (no ORT copy), for cold start and memory;
  ov-fp32     `predict_to_file --provider openvino` (what `auto` picks on x86-64 with the extra);
  ov-bf16     OpenVINO mixed bf16 (first two convolutions and the head in fp32);
  ort-int8    the exported int8 copy (onnxruntime dynamic int8 of the big linear layer).
Reduced precisions are timed here whatever their verdict; whether each is *offered* is decided
by the accuracy budget on trained weights (bossnet_onnx.model.precision), printed below the table for
the trained demo model and, for information, for the random weights timed here.

Printed: spectra/s, ratio, stage times, cold start, peak RSS, FLOPs per forward, achieved GFLOP/s
of the model stage against this machine's measured float32 matmul peak, targets and misses.
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
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test tooling: survey-file writers
    from layouts import write_spec

    from bossnet_onnx.science.synthetic import sample_labels, synthesize

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
    from bossnet_onnx.readers import read_spectra
    from bossnet_onnx.science.preprocess import sigma_from_ivar

    torch.set_num_threads(threads)
    times = {"read": 0.0, "preprocess": 0.0, "model": 0.0, "write": 0.0}
    t0 = time.perf_counter()
    model = load_checkpoint(work["checkpoint"]).model.eval()
    with torch.no_grad():  # warm-up (oneDNN kernel selection) counts as cold start
        model(torch.zeros(2, 1, 3900))
    cold = time.perf_counter() - t0
    grid = torch.linspace(3800, 8900, 3900)
    from bossnet_onnx.model.metadata import DEFAULT_PARAMETER_NAMES, DEFAULT_STATS

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


#: side -> (model key in the workload, engine, precision)
ONNX_SIDES = {
    "ort-fp32": ("onnx", "cpu", "fp32"),
    "ort-direct": ("onnx", "cpu", "fp32"),
    "ov-fp32": ("onnx", "openvino", "fp32"),
    "ov-bf16": ("onnx", "openvino", "bf16"),
    "ort-int8": ("onnx_int8", "cpu", "int8"),
}


def open_side_model(work: dict, side: str, threads: int):
    """The side's BossNetModel, opened without the accuracy-budget gate (timing only)."""
    from bossnet_onnx.model.session import BossNetModel, open_model

    key, provider, precision = ONNX_SIDES[side]
    if precision == "bf16":
        from bossnet_onnx.model import engine_openvino
        from bossnet_onnx.model.metadata import ModelMetadata

        session = engine_openvino.open_session(Path(work[key]), threads, "bf16")
        meta = ModelMetadata.from_props(session.get_modelmeta().custom_metadata_map)
        return BossNetModel(path=Path(work[key]), metadata=meta, session=session,
                            provider=session.get_providers()[0], threads=threads,
                            engine="openvino", precision="bf16")
    model = open_model(work[key], provider=provider, threads=threads)
    model.precision = precision
    return model


def side_onnx(work: dict, draws: int, threads: int, batch_size: int, side: str) -> dict:
    from bossnet_onnx.run.stream import StageTimes
    from bossnet_onnx.run.to_file import predict_to_file

    times = StageTimes()
    out = Path(tempfile.mkdtemp()) / "catalogue.fits"
    t0 = time.perf_counter()
    model = open_side_model(work, side, threads)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = predict_to_file(work["files"], out, model=model, draws=draws, seed=1,
                            batch_size=batch_size, times=times)
    total = time.perf_counter() - t0
    pred = np.array([table[c] for c in ("logg", "teff", "fe_h", "bn_v_r")]).T
    return {"side": side, "spectra": len(table), "seconds": total, "cold_start": cold,
            "model_rows": len(table) * (draws + 1),
            "stages": {"read": times.read, "preprocess": times.preprocess,
                       "model": times.model, "write": times.write},
            "failed": int(np.sum(table["result_flags"] & 1)), "pred": pred.tolist(),
            "provider": table.meta["PROVIDER"], "engine": table.meta["ENGINE"],
            "precision": table.meta["PRECISN"], "peak_rss_mb": peak_rss_mb()}


def run_side(args: argparse.Namespace, work_json: Path, side: str) -> dict:
    cmd = [sys.executable, __file__, "--_side", side, "--_work", str(work_json),
           "--draws", str(args.draws), "--threads", str(args.threads),
           "--batch-size", str(args.batch_size)]
    env = dict(os.environ)
    if side == "ort-direct":
        env["BOSSNET_ONNX_CACHE"] = "off"  # load the .onnx itself, no memory-mapped ORT copy
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{side} side failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["side"] = side
    return res


def budget_verdicts(work: dict, threads: int) -> list[str]:
    """Accuracy-budget verdicts: the trained demo model (what decides 'offered') and the
    random weights timed here (for information only: untrained nets have no science budget)."""
    from bossnet_onnx.model import engine_openvino
    from bossnet_onnx.model.precision import measure_verdict
    from bossnet_onnx.model.session import open_model

    lines = []
    demo_int8 = None
    try:
        sys.path.insert(0, str(HERE))
        from precision import make_int8_copy  # benchmarks/precision.py

        from bossnet_onnx.model.files import default_model_path

        demo_int8 = make_int8_copy(default_model_path(), Path(tempfile.mkdtemp()))
    except Exception as exc:  # pragma: no cover - report, do not stop
        lines.append(f"demo int8 copy not made: {exc}")
    from bossnet_onnx.model.files import default_model_path
    from bossnet_onnx.model.precision import int8_sibling

    targets = [("trained demo model", {"onnx": str(default_model_path()),
                                       "onnx_int8": str(int8_sibling(demo_int8)) if demo_int8
                                       else None}),
               ("random weights timed here", work)]
    for label, where in targets:
        for side in ("ov-bf16", "ort-int8"):
            key = ONNX_SIDES[side][0]
            if not where.get(key) or (side == "ov-bf16" and not (
                    engine_openvino.available() and engine_openvino.supports_bf16())):
                continue
            model = open_side_model(where, side, threads)
            reference = open_model(where["onnx"], provider="cpu", threads=threads)
            v = measure_verdict(model, reference)
            verdict = "within budget: offered" if v.ok else "MISSES: " + "; ".join(v.misses[:2])
            lines.append(f"{label}, {side}: {v.summary()} -> {verdict}")
            del model
    return lines


# ----------------------------------------------------------------------------- report
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--n-files", type=int, default=64)
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--config", choices=["official", "small"], default="official")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds of all sides")
    parser.add_argument("--sides", default=None,
                        help="comma-separated subset (default: all installed)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--_side", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_work", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from bossnet_onnx.model import engine_openvino
    from bossnet_onnx.model.session import available_cpus

    args.threads = args.threads or available_cpus()
    if args._side:
        work = json.loads(args._work.read_text())
        if args._side == "pytorch":
            res = side_torch(work, args.draws, args.threads)
        else:
            res = side_onnx(work, args.draws, args.threads, args.batch_size, args._side)
        print(json.dumps(res))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bossnet-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"# bossnet-onnx benchmark  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    import onnxruntime as ort

    ov = f", openvino {engine_openvino.version()}" if engine_openvino.available() else ""
    print(f"machine: {platform.machine()} {platform.processor() or ''} cpus usable "
          f"{available_cpus()}, threads {args.threads}, python {platform.python_version()}, "
          f"onnxruntime {ort.__version__}{ov}")
    t = time.perf_counter()
    work = make_workload(workdir, args.n_files, args.config)
    print(f"workload: {args.config} config, {len(work['files'])} spec files, {args.draws} draws; "
          f"weights {work['weights_bytes'] / 1e6:.1f} MB; export+parity {work['export_s']:.1f} s "
          f"(max |ONNX-PyTorch| {work['parity_max_abs']:.2e}); setup {time.perf_counter() - t:.1f} s")
    work_json = workdir / "work.json"
    work_json.write_text(json.dumps(work))
    sides = ["pytorch", "ort-fp32", "ort-direct", "ort-int8"]
    if engine_openvino.available():
        sides[2:2] = ["ov-fp32"] + (["ov-bf16"] if engine_openvino.supports_bf16() else [])
    if args.sides:
        wanted = args.sides.split(",")
        sides = [s for s in sides if s in wanted or s == "pytorch"]
    # One-time per model (as for every later run of it): ORT-format copies, OpenVINO compiled
    # blobs and bf16 stage files. Built here so the timed runs see what later runs see.
    os.environ.setdefault("BOSSNET_ONNX_CACHE", str(workdir / "model-cache"))
    t = time.perf_counter()
    for side in sides[1:]:
        if side != "ort-direct":
            open_side_model(work, side, args.threads)
    print(f"one-time model caches (ORT copies, OpenVINO blobs): {time.perf_counter() - t:.1f} s")
    flops = flops_per_forward(work["config"])
    rounds: list[dict[str, dict]] = []
    peaks = []  # measured in every round: on a shared machine the peak moves with the load
    for r in range(max(1, args.repeats)):
        order = sides if r % 2 == 0 else sides[::-1]
        peaks.append(matmul_peak(args.threads))
        rounds.append({s: run_side(args, work_json, s) for s in order})
    peaks.append(matmul_peak(args.threads))
    peak = float(np.median(peaks))
    print(f"FLOPs per forward: {flops / 1e9:.3f} GFLOP; measured fp32 matmul peak "
          f"({args.threads} threads): median {peak:.1f} GFLOP/s (range {min(peaks):.1f}-"
          f"{max(peaks):.1f} over the rounds); {len(rounds)} alternating rounds")
    print()
    head = (f"{'side':<11}{'spectra/s':>10}{'total s':>9}{'read':>7}{'prep':>7}{'model':>7}"
            f"{'write':>7}{'cold s':>8}{'RSS MB':>8}{'GFLOP/s':>9}{'% peak':>8}"
            f"{'vs PyTorch (spread)':>22}")
    print(head)
    print("-" * len(head))

    def median_run(side: str) -> dict:
        runs = sorted((rd[side] for rd in rounds), key=lambda x: x["seconds"])
        return runs[len(runs) // 2]

    def ratios(side: str) -> list[float]:
        return sorted(rd["pytorch"]["seconds"] / rd[side]["seconds"] for rd in rounds)

    def gflops_of(res: dict) -> float:
        return flops * res["model_rows"] / max(res["stages"]["model"], 1e-9) / 1e9

    summary: dict[str, dict] = {}
    for side in sides:
        res = median_run(side)
        st, rs = res["stages"], ratios(side)
        g = gflops_of(res)
        spread = f"{rs[len(rs) // 2]:.2f}x ({rs[0]:.2f}-{rs[-1]:.2f})"
        print(f"{side:<11}{res['spectra'] / res['seconds']:>10.2f}{res['seconds']:>9.2f}"
              f"{st['read']:>7.2f}{st['preprocess']:>7.2f}{st['model']:>7.2f}{st['write']:>7.2f}"
              f"{res['cold_start']:>8.2f}{res['peak_rss_mb']:>8.0f}{g:>9.1f}"
              f"{100 * g / peak:>7.0f}%{spread:>22}")
        summary[side] = {"ratio": rs[len(rs) // 2], "spread": (rs[0], rs[-1]), "gflops": g,
                         "run": res}
    print()
    weights_mb = work["weights_bytes"] / 1e6
    fp32_side = "ov-fp32" if "ov-fp32" in summary else "ort-fp32"
    verdicts = budget_verdicts(work, args.threads)
    offered = [s for s in ("ov-bf16", "ort-int8") if s in summary and any(
        line.startswith(f"trained demo model, {s}:") and line.endswith("offered")
        for line in verdicts)]
    best = max(offered, key=lambda s: summary[s]["ratio"]) if offered else fp32_side
    f32 = summary[fp32_side]
    model_share = f32["run"]["stages"]["model"] / f32["run"]["seconds"]
    print(f"auto picks {fp32_side} (fp32). Targets, side by side with PyTorch in each round:")
    checks = [
        (f"fp32 end to end ({fp32_side}) >= 2.5x", f32["ratio"], 2.5,
         f"the model stage is {100 * model_share:.0f}% of the wall time and runs at "
         f"{100 * f32['gflops'] / peak:.0f}% of the peak; PyTorch's own model stage is the same "
         f"oneDNN family of kernels, so the ratio is bounded by "
         f"{median_run('pytorch')['stages']['model'] / max(f32['run']['stages']['model'], 1e-9):.2f}x"
         f" on the model plus the non-model time we overlap"),
        (f"best offered precision ({best}) >= 4x", summary[best]["ratio"], 4.0,
         "bf16 is offered only as the mixed plan that holds the accuracy budget: the fp32 "
         "first convolutions and head, the fp32<->bf16 hand-overs, and the unchanged "
         "read/preprocess/write time cap it"),
        (f"fp32 model stage ({fp32_side}) >= 70% of peak", f32["gflops"] / peak, 0.7,
         "BOSS Net's convolutions are thin (2-64 channels, kernel 30): far less arithmetic "
         "intensity than the 2048^2 GEMM that defines the peak; element-wise Elu/Pad/Add and the "
         "memory-bound 65536x1024 head take the rest"),
    ]
    misses = []
    for label, value, target, why in checks:
        hit = value >= target
        shown = f"{100 * value:.0f}%" if target < 1 else f"{value:.2f}x"
        want = f"{100 * target:.0f}%" if target < 1 else f"{target:.1f}x"
        short = (f"{100 * (target - value):.0f} points below {want}" if target < 1 else
                 f"{target / value:.2f}x short of {want}")
        print(f"  {'hit ' if hit else 'MISS'} {label}: {shown}" + ("" if hit else f" ({short})"))
        if not hit:
            misses.append(f"{label}: {why}")
    for side in sides[1:]:
        res = summary[side]["run"]
        cold_ok, rss_ok = res["cold_start"] < 1.0, res["peak_rss_mb"] < 2 * weights_mb
        print(f"  {'hit ' if cold_ok else 'MISS'} {side} cold start {res['cold_start']:.2f} s "
              f"(< 1 s); {'hit ' if rss_ok else 'MISS'} peak RSS {res['peak_rss_mb']:.0f} MB = "
              f"{res['peak_rss_mb'] / max(weights_mb, 1e-9):.2f}x weights (< 2x)")
        if not rss_ok and side.startswith("ov"):
            misses.append(f"{side} peak RSS: OpenVINO repacks the 268 MB first linear layer "
                          f"into its own layout while the mapped original stays resident")
        if not rss_ok and side == "ort-direct":
            misses.append("ort-direct peak RSS: loading the .onnx holds the protobuf and the "
                          "initializers at once (why the ORT copy exists)")
    profile = operator_profile(work["onnx"], args.threads)
    shares = ", ".join(f"{op} {100 * v:.0f}%" for op, v in list(profile.items())[:5])
    print(f"where onnxruntime's fp32 model time goes (per operator): {shares}")
    for line in misses:
        print(f"why missed: {line}")
    print("accuracy budget (median/p99.9/max |Δ| vs exact fp32 onnxruntime, 768 held-out spectra; "
          "benchmarks/precision.py adds the real ones):")
    for line in verdicts:
        print(f"  {line}")
    a = np.array(summary["ort-fp32"]["run"]["pred"])
    for side in sides[2:]:
        b = np.array(summary[side]["run"]["pred"])
        d = np.nanmax(np.abs(a - b), axis=0)
        print(f"{side} vs ort-fp32 on these {len(a)} catalogue rows (random weights), max |diff|: "
              f"logg {d[0]:.3g} dex, Teff {d[1]:.3g} K, [Fe/H] {d[2]:.3g} dex, RV {d[3]:.3g} km/s")
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, "flops": flops, "peak": peak,
                                         "verdicts": verdicts,
                                         "work": {k: v for k, v in work.items() if k != "files"}}))


if __name__ == "__main__":
    main()
