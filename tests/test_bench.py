"""The benchmark script runs and prints its side-by-side table (small config, few files)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.export
def test_bench_small_prints_side_by_side(tmp_path):
    pytest.importorskip("torch")
    bench = _bench()
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench.py"), "--config", "small",
                           "--n-files", "3", "--draws", "2", "--repeats", "1", "--workdir",
                           str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    from bossnet_onnx.model.engine_openvino import available

    sides = ["pytorch", "ort-fp32", "ort-plain", "ort-reorders", "ort-direct", "ort-int8"] + (
        ["ov-fp32"] if available() else [])
    for side in sides:
        assert re.search(rf"^{side}\s+\d+\.\d+.*\d+\.\d+x \(\d+\.\d+-\d+\.\d+\)$", out,
                         re.M), out
        # the share table: 10 columns of % of the wall time; the main-thread ones add up to 100
        row = re.search(rf"^{side}\s+(\d+\.\d+)((?:\s+\d+\.\d+){{10}})$", out, re.M)
        assert row, out
        shares = dict(zip(bench.SHARE_TITLES, map(float, row.group(2).split())))
        serial = sum(v for k, v in shares.items() if side == "pytorch" or not k.endswith("*"))
        assert serial == pytest.approx(100, abs=0.6) or serial > 100, (side, shares)
        if side != "pytorch":
            assert shares["model"] > 0 and shares["import"] > 0 and shares["session"] > 0
    assert re.search(r"^cpu: .+; instruction sets: ", out, re.M)
    assert "baseline: PyTorch stand-in" in out
    assert re.search(r"(hit |MISS) fp32 end to end \((ov|ort)-fp32\) >= 2\.5x: \d+\.\d+x", out)
    assert re.search(r"trained demo model, ort-int8: median/p99\.9/max .* -> (MISSES|within)", out)
    flops = float(re.search(r"FLOPs per forward: (\d+\.\d+) GFLOP", out).group(1))
    assert 0.01 < flops < 0.05  # the small test network
    assert "peak RSS" in out and "cold start" in out


def _bench():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench", REPO / "benchmarks" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_official_network_costs_about_1p1_gflop():
    bench = _bench()
    official = {"model_dim": 4, "dim_mults": [1, 2, 4, 8, 16], "kernel_size": 30,
                "num_targets": 4, "adapt_pool_output_dim": 1024, "num_linear": 6,
                "linear_dim": 1024}
    assert bench.flops_per_forward(official) / 1e9 == pytest.approx(1.102, abs=0.002)


def test_cpu_header_names_the_instruction_sets():
    bench = _bench()
    name, isa = bench.cpu_description(
        "processor\t: 0\nmodel name\t: AMD EPYC 9654 96-Core Processor\n"
        "flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_bf16 sha_ni\n\n"
        "processor\t: 1\nflags\t\t: fpu\n")
    assert name == "AMD EPYC 9654 96-Core Processor"
    assert isa == ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "sha_ni"]
    here_name, here = bench.cpu_description()  # this machine: whatever it has, in table order
    assert here_name and here == [f for f in bench.ISA_FLAGS if f in here]


def test_reference_stages_come_from_a_real_profile(tmp_path):
    """A cProfile of a program with the reference's function names (same files and nesting:
    predict -> reading, preprocessing, forward, writing) is split into the stages."""
    bench = _bench()
    pkg = tmp_path / "bossnet"
    (pkg / "model").mkdir(parents=True)
    spin = "import time\ndef spin(s):\n    time.sleep(s)\n"
    (pkg / "dataset.py").write_text(spin + "def __getitem__(i): spin(0.1)\n"
                                    "def boss_collate(b): spin(0.05)\n")
    (pkg / "model" / "boss_net.py").write_text(spin + "def forward(x): spin(0.4)\n")
    (pkg / "pipeline.py").write_text(
        spin + "import dataset, sys\nsys.path.insert(0, 'model')\nimport boss_net\n"
        "def interpolate_flux(): spin(0.06)\ndef log_scale_flux_batch(): spin(0.02)\n"
        "def create_uncertainties_batch(): spin(0.02)\n"
        "def _write_header(): pass\ndef _write_prediction(): spin(0.1)\n"
        "def predict():\n    _write_header(); dataset.__getitem__(0); dataset.boss_collate(0)\n"
        "    create_uncertainties_batch(); interpolate_flux(); log_scale_flux_batch()\n"
        "    boss_net.forward(0); spin(0.12); _write_prediction()\n")
    (pkg / "__main__.py").write_text(spin + "import pipeline\nspin(0.1)\npipeline.predict()\n")
    prof = tmp_path / "run.prof"
    t0 = __import__("time").perf_counter()
    subprocess.run([sys.executable, "-m", "cProfile", "-o", str(prof), "__main__.py"], cwd=pkg,
                   check=True)
    wall = __import__("time").perf_counter() - t0
    stages = bench.reference_stages(prof, wall)
    # sleeps: the profiler's wall-clock timer counts them; a loaded machine oversleeps a little
    assert stages["read"] == pytest.approx(0.15, abs=0.06)
    assert stages["preprocess"] == pytest.approx(0.1, abs=0.06)
    assert stages["model"] == pytest.approx(0.4, abs=0.06)
    assert stages["write"] == pytest.approx(0.1, abs=0.06)
    assert stages["summarise"] == pytest.approx(0.12, abs=0.06)
    assert stages["import"] >= 0.1  # start-up: interpreter, imports and the 0.1 s before predict
    shares = bench.stage_shares(stages, wall, overlapped=())
    assert sum(shares.values()) == pytest.approx(1.0, abs=0.02) or shares["other"] == 0


def test_cuda_request_without_cuda_is_one_line(tmp_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: the GPU run is the real test")
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench.py"), "--provider",
                           "cuda", "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("bench --provider cuda: --provider "
                                                           "cuda: this onnxruntime has no CUDA")
    assert not list(tmp_path.iterdir())  # refused before any work


def test_reference_values_follow_the_input_order(tmp_path):
    """The reference CLI's CSV rows, keyed by file, in the workload's order (Teff from log Teff;
    a file it left out is a row of NaN), for the values comparison every bench run prints."""
    import math

    csv = tmp_path / "reference.csv"
    csv.write_text("id,logg,logTeff,FeH,rv,logg_median,logTeff_median,FeH_median,rv_median,"
                   "logg_std,logTeff_std,FeH_std,rv_std\n"
                   "/b.fits,4.5,3.75,-0.25,12.0,0,0,0,0,0,0,0,0\n"
                   "/a.fits,2.5,3.5,0.5,-3.0,0,0,0,0,0,0,0,0\n")
    rows = _bench().reference_values(csv, ["/a.fits", "/b.fits", "/c.fits"])
    assert rows[0] == [2.5, 10 ** 3.5, 0.5, -3.0]
    assert rows[1] == [4.5, 10 ** 3.75, -0.25, 12.0]
    assert all(math.isnan(v) for v in rows[2])


def test_cuda_options_without_cuda_is_one_line():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: the script runs instead")
    from bossnet_onnx.model.files import default_model_path

    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "cuda_options.py"),
                           "--model", str(default_model_path())],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("cuda_options: this onnxruntime has no CUDA provider (install "
                                   "onnxruntime-gpu on a machine with an NVIDIA GPU)")


def test_fp32_ceiling_is_what_the_peak_allows():
    """Ours with every other stage as measured and the model stage at 100 % of the peak, and
    the model-stage rate that the target needs (inf when the rest alone is too slow)."""
    bench = _bench()
    run = {"seconds": 10.0, "stages": {"model": 9.0}, "model_rows": 1000}
    c = bench.fp32_ceiling(25.0, run, flops=1e9, peak=200.0)  # 1000 GFLOP of work
    assert c["seconds"] == pytest.approx(1.0 + 5.0)
    assert c["ratio"] == pytest.approx(25.0 / 6.0)
    assert c["needed_gflops"] == pytest.approx(1000 / (25.0 / 2.5 - 1.0))
    assert c["needed_share"] == pytest.approx(c["needed_gflops"] / 200.0)
    slow_rest = {"seconds": 12.0, "stages": {"model": 1.0}, "model_rows": 1000}
    assert bench.fp32_ceiling(25.0, slow_rest, 1e9, 200.0)["needed_gflops"] == float("inf")


@pytest.mark.slow
@pytest.mark.export
def test_bench_isa_avx2_runs_every_side_with_avx2_kernels(tmp_path):
    """`--isa avx2` re-runs the benchmark under benchmarks/avx2_only.c: the header lists the
    instruction sets the sides see (no AVX-512) and the sides still run and agree."""
    pytest.importorskip("torch")
    import shutil

    flags = next((line.split(":", 1)[1].split() for line in
                  Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), [])
    if "avx512f" not in flags or "cpuid_fault" not in flags or shutil.which("gcc") is None:
        pytest.skip("needs an AVX-512 CPU with CPUID faulting and gcc")
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench.py"), "--config", "small",
                           "--n-files", "2", "--draws", "2", "--repeats", "1", "--no-verdicts",
                           "--sides", "ort-fp32", "--isa", "avx2", "--workdir", str(tmp_path),
                           "--json", str(tmp_path / "out.json")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    header = re.search(r"^cpu: .+$", proc.stdout, re.M).group(0)
    assert "avx2" in header and "avx512f" not in header and "hidden from every side" in header
    assert re.search(r"^ort-fp32\s+\d+\.\d+", proc.stdout, re.M)
    import json

    assert json.loads((tmp_path / "out.json").read_text())["isa_mask"] == "avx2"
    assert (tmp_path / "libavx2only.so").is_file()


def test_isa_avx2_refusals_are_one_line(tmp_path):
    """`--isa avx2` says in one line why it cannot run: a work folder LD_PRELOAD cannot hold,
    or a mask that did not take (the re-executed benchmark checks what numpy sees)."""
    import os

    flags = next((line.split(":", 1)[1].split() for line in
                  Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), [])
    if "avx512f" not in flags or "cpuid_fault" not in flags:
        pytest.skip("needs an AVX-512 CPU with CPUID faulting (elsewhere the mask is not built)")
    bench = [sys.executable, str(REPO / "benchmarks" / "bench.py"), "--isa", "avx2",
             "--config", "small", "--n-files", "1"]
    spaced = tmp_path / "a b"
    proc = subprocess.run([*bench, "--workdir", str(spaced)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"bench --isa avx2: {spaced / 'libavx2only.so'}: LD_PRELOAD cannot hold a path with "
        f"spaces or ':'; give --workdir elsewhere")
    env = dict(os.environ, BOSSNET_BENCH_ISA="avx2")  # as if re-executed, but without the mask
    env.pop("LD_PRELOAD", None)
    proc = subprocess.run([*bench, "--workdir", str(tmp_path / "w")], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "bench --isa avx2: the CPUID mask did not take (numpy still sees AVX-512 or no AVX2)")
