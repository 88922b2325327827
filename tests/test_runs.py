"""Resumable runs: interruption leaves no catalogue, --resume finishes identically; SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from onnx_fixtures import write_linear_model

import bossnet_onnx.runs as runs
from bossnet_onnx.catalogue import read_catalogue
from bossnet_onnx.errors import OutputError
from bossnet_onnx.pipeline import predict
from bossnet_onnx.runs import Interrupted, partial_path, predict_to_file
from bossnet_onnx.synthetic import layouts  # our own module: a broken import must fail


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    wave = layouts.boss_native_wavelength()
    out = []
    for i in range(6):
        rng = np.random.default_rng(i)
        flux = (10 + np.cos(wave / (90 + i)) + rng.standard_normal(wave.size)).astype(np.float32)
        path = d / f"spec-3000-59000-{i + 1:04d}.fits"
        layouts.write_spec(path, wave, flux, np.full(wave.size, 2.0, np.float32), plate=3000,
                           mjd=59000, fiberid=i + 1)
        out.append(str(path))
    return out


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_linear_model(tmp_path_factory.mktemp("m") / "m.onnx", seed=2, scale=2.0)


def test_partial_path_names():
    assert partial_path("a/cat.fits").name == "cat.partial.fits"
    assert partial_path("cat.fits.gz").name == "cat.partial.fits.gz"
    assert partial_path("x.parquet").name == "x.partial.parquet"
    with pytest.raises(OutputError, match="unknown output type"):
        partial_path("cat.txt")


def test_interrupt_then_resume_matches_uninterrupted(files, model, tmp_path, monkeypatch):
    out = tmp_path / "cat.fits"
    real = runs.stream_results

    def interrupted_after_three(*args, **kwargs):
        for k, res in enumerate(real(*args, **kwargs)):
            if k == 3:
                raise KeyboardInterrupt
            yield res

    monkeypatch.setattr(runs, "stream_results", interrupted_after_three)
    with pytest.raises(Interrupted, match=r"interrupted: 2 spectra saved to .*cat\.partial\.fits.*--resume"):
        predict_to_file(files, out, model=model, draws=4, seed=9)
    assert not out.exists()
    partial = read_catalogue(partial_path(out))
    # whole files only: the third result's file was not known to be complete when stopped
    assert len(partial) == 2
    monkeypatch.setattr(runs, "stream_results", real)
    with pytest.raises(OutputError, match=r"SEED=9.*resume with the same model"):
        predict_to_file(files, out, model=model, draws=4, seed=10, resume=True)
    full = predict_to_file(files, out, model=model, draws=4, seed=9, resume=True)
    assert out.exists() and not partial_path(out).exists()
    reference = predict(files, model=model, draws=4, seed=9)
    assert list(full["path"]) == files
    for name in ("teff", "e_teff", "logg", "e_bn_v_r"):
        np.testing.assert_array_equal(read_catalogue(out)[name], reference[name])
    with pytest.raises(OutputError, match="already complete"):
        predict_to_file(files, out, model=model, draws=4, seed=9, resume=True)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_sigterm_leaves_no_catalogue_and_says_how_to_resume(files, model, tmp_path):
    # far more work than the test waits for (about 1,200 files x 401 model rows), so the
    # signal always lands mid-run; it is sent once the process has spent CPU time predicting
    listed = []
    for k in range(400):
        for f in files:
            link = tmp_path / f"c{k}-{os.path.basename(f)}"
            os.link(f, link)  # distinct paths (inputs are de-duplicated by real path)
            listed.append(str(link))
    many = tmp_path / "list.txt"
    many.write_text("\n".join(listed) + "\n")
    out = tmp_path / "cat.fits"
    exe = os.path.join(os.path.dirname(sys.executable), "bossnet-onnx")
    proc = subprocess.Popen([exe, "predict", f"@{many}", "-m", str(model), "-o", str(out),
                             "--draws", "400", "--quiet"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while proc.poll() is None and _cpu_seconds(proc.pid) < 3.0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err and "cat.partial.fits" in err
    assert not out.exists()
    assert partial_path(out).exists()
