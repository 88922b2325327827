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
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench.py"), "--config", "small",
                           "--n-files", "3", "--draws", "2", "--repeats", "1", "--workdir",
                           str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    from bossnet_onnx.model.engine_openvino import available

    sides = ["pytorch", "ort-fp32", "ort-direct", "ort-int8"] + (["ov-fp32"] if available() else [])
    for side in sides:
        assert re.search(rf"^{side}\s+\d+\.\d+.*\d+\.\d+x \(\d+\.\d+-\d+\.\d+\)$", out,
                         re.M), out
    assert re.search(r"(hit |MISS) fp32 end to end \((ov|ort)-fp32\) >= 2\.5x: \d+\.\d+x", out)
    assert re.search(r"trained demo model, ort-int8: median/p99\.9/max .* -> (MISSES|within)", out)
    flops = float(re.search(r"FLOPs per forward: (\d+\.\d+) GFLOP", out).group(1))
    assert 0.01 < flops < 0.05  # the small test network
    assert "peak RSS" in out and "cold start" in out


def test_official_network_costs_about_1p1_gflop():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench", REPO / "benchmarks" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    official = {"model_dim": 4, "dim_mults": [1, 2, 4, 8, 16], "kernel_size": 30,
                "num_targets": 4, "adapt_pool_output_dim": 1024, "num_linear": 6,
                "linear_dim": 1024}
    assert bench.flops_per_forward(official) / 1e9 == pytest.approx(1.102, abs=0.002)
