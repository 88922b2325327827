"""The runtime never needs torch (or onnx): import it and run predict with both made unimportable."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest
from import_blocker import BLOCKER

REPO = Path(__file__).resolve().parents[1]

def run_blocked(code: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    script = tmp_path / "blocked.py"
    script.write_text(BLOCKER + textwrap.dedent(code))
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_runtime_modules_import_without_torch(tmp_path):
    proc = run_blocked(
        """
        import importlib, pkgutil, sys
        import bossnet_onnx
        names = ['bossnet_onnx.' + m.name for m in pkgutil.walk_packages(bossnet_onnx.__path__)]
        skip = {'bossnet_onnx.run.distributed', 'bossnet_onnx.outputs.plotting'}  # optional extras
        for name in names:
            if name not in skip:
                importlib.import_module(name)
        from bossnet_onnx.cli import app
        assert 'torch' not in sys.modules and 'onnx' not in sys.modules
        print('imported', len(names))
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("imported")


def test_predict_runs_without_torch(tmp_path):
    import layouts
    import numpy as np
    from onnx_fixtures import write_linear_model

    model = write_linear_model(tmp_path / "m.onnx")
    wave = layouts.boss_native_wavelength()
    rng = np.random.default_rng(3)
    flux = (10 + rng.standard_normal(wave.size)).astype(np.float32)
    spec = tmp_path / "spec-0001-55555-0001.fits"
    layouts.write_spec(spec, wave, flux, np.full(wave.size, 1.0, np.float32), plate=1, mjd=55555, fiberid=1)
    proc = run_blocked(
        """
        import sys
        from bossnet_onnx import predict
        table = predict([sys.argv[1]], model=sys.argv[2], draws=3, seed=1)
        assert 'torch' not in sys.modules
        print(len(table), int(table['result_flags'][0] & 1), float(table['teff'][0]) > 0)
        """,
        tmp_path, str(spec), str(model),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "0", "True"]


@pytest.mark.slow
def test_plain_install_pulls_no_torch(tmp_path):
    """pip install of the runtime (fresh venv, only the `cpu` engine extra) brings no torch, the
    onnx package (`models pull` converts checkpoints with it) and exactly one onnxruntime
    (tests/test_packaging.py: the other installs)."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    proc = subprocess.run([str(py), "-m", "pip", "install", "-q", f"{REPO}[cpu]"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    listing = subprocess.run([str(py), "-m", "pip", "list", "--format=freeze"],
                             capture_output=True, text=True).stdout.lower()
    names = {line.split("==")[0] for line in listing.splitlines()}
    assert "onnxruntime" in names and "numpy" in names and "astropy" in names
    assert "onnxruntime-gpu" not in names
    assert "torch" not in names and "onnx" in names
    exe = str(env_dir / "bin" / "bossnet-onnx")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("bossnet-onnx ")
    # The default model is found as installed package data, outside the checkout.
    info = subprocess.run([exe, "info", "--json"], capture_output=True, text=True, cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    doc = json.loads(info.stdout)
    assert str(env_dir) in str(doc["path"]) and doc["provenance"] == "synthetic-demo"
    example = REPO / "examples" / "spec-9999-60000-0042.fits"
    run = subprocess.run([exe, "predict", str(example), "--draws", "2", "-o",
                          str(tmp_path / "cat.csv")], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "1 spectrum, 0 failed; model bossnet-demo-synthetic-v1" in run.stderr
