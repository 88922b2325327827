"""The distributed mode is the same run: same rows, same refusals and warnings, resumable parts.

Real Dask LocalClusters (worker processes), real FITS files, real ONNX sessions. The model is
a small convolutional BOSS Net exported with torch, so the rows go through the same kind of
kernels as the published network (whose batch-size sensitivity the engine's fixed call shape
removes).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import layouts  # our own module: a broken import must fail
import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from bossnet_onnx.cli import app
from bossnet_onnx.outputs.catalogue import read_catalogue, write_catalogue
from bossnet_onnx.run.distributed import parse_cluster, parts_folder, predict_distributed
from bossnet_onnx.run.to_file import predict_to_file

distributed = pytest.importorskip("distributed")
torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory) -> Path:
    from bossnet_export.exporter import export_module
    from bossnet_export.random_weights import SMALL_CONFIG, build_random_model

    out = tmp_path_factory.mktemp("dask-model") / "small-conv.onnx"
    export_module(build_random_model(SMALL_CONFIG, seed=11), out, weights_sha256="ab" * 32,
                  name="small-conv-test")
    return out


def _boss_files(folder: Path, n: int) -> list[str]:
    wave = layouts.boss_native_wavelength()
    files = []
    for i in range(n):
        flux = (15 + 3 * np.sin(wave / (50 + 7 * i)) + 0.1 * i).astype(np.float32)
        path = folder / f"spec-4000-59000-{i + 1:04d}.fits"
        layouts.write_spec(path, wave, flux, np.full(wave.size, 2.0 + i % 3, np.float32),
                           plate=4000, mjd=59000, fiberid=i + 1)
        files.append(str(path))
    return files


def _numeric_columns_equal(a, b) -> None:
    assert list(a["path"]) == list(b["path"]) and list(a["row"]) == list(b["row"])
    numeric = [n for n in a.colnames if a[n].dtype.kind in "fiub"]
    assert len(numeric) > 20
    for name in numeric:
        np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]), err_msg=name)
    # outputs vary: a constant network would make any comparison pass
    assert np.ptp(np.asarray(a["teff"], float)) > 1 and np.ptp(np.asarray(a["e_teff"])) > 0


def _run_cli(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_dask_rows_equal_local_rows_bit_for_bit(tmp_path, conv_model, shared_data):
    """The issue's command: --draws 20 --seed 3 --recipe astra, with and without --dask."""
    real = sorted(str(p) for p in shared_data.glob("sdss-spec-*.fits"))[:6]
    files = real + _boss_files(tmp_path, 4)
    listing = tmp_path / "files.txt"
    listing.write_text("\n".join(files) + "\n")
    common = ["predict", f"@{listing}", "--draws", "20", "--seed", "3", "--recipe", "astra",
              "--model", conv_model, "--provider", "cpu", "-q"]
    local = _run_cli(*common, "-o", tmp_path / "l.fits")
    assert local.exit_code == 0, local.output
    dask = _run_cli(*common, "--dask", "local:2", "-o", tmp_path / "d.fits")
    assert dask.exit_code == 0, dask.output
    # the same warnings (the demo-model warning) in the same words
    assert [ln for ln in dask.stderr.splitlines() if ln.startswith("warning:")] == \
        [ln for ln in local.stderr.splitlines() if ln.startswith("warning:")] != []
    a, b = read_catalogue(tmp_path / "l.fits"), read_catalogue(tmp_path / "d.fits")
    assert len(a) == len(files)
    _numeric_columns_equal(a, b)
    # the same provenance header, DATE aside
    assert {k: v for k, v in a.meta.items() if k != "DATE"} == \
        {k: v for k, v in b.meta.items() if k != "DATE"}
    assert not parts_folder(tmp_path / "d.fits").exists()  # parts are removed once merged


def test_dask_refuses_an_apogee_file_before_any_work(tmp_path, conv_model):
    files = _boss_files(tmp_path, 2)
    apstar = layouts.write_apstar(tmp_path / "apStar-dr17-2M00000001+0000001.fits",
                                  np.full((1, 8575), 100.0), np.full((1, 8575), 1.0))
    inputs = [*files, str(apstar)]
    out = tmp_path / "d.fits"
    dask = _run_cli("predict", *inputs, "--model", conv_model, "--dask", "local:2", "-o", out)
    local = _run_cli("predict", *inputs, "--model", conv_model, "-o", tmp_path / "l.fits")
    assert dask.exit_code == local.exit_code == 1, dask.output
    lines = dask.stderr.strip().splitlines()
    assert lines == local.stderr.strip().splitlines()
    assert len(lines) == 1 and str(apstar) in lines[0] and "APOGEE" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*(Path(f).name for f in files), apstar.name])  # nothing written, no parts folder


def test_usage_errors_of_dask_are_exit_2_before_work(tmp_path, conv_model):
    files = _boss_files(tmp_path, 1)
    res = _run_cli("predict", *files, "--model", conv_model, "--dask", "local:0", "-o",
                   tmp_path / "d.fits")
    assert res.exit_code == 2 and "local:N" in res.output
    res = _run_cli("predict", *files, "--model", conv_model, "--dask", "local:2")
    assert res.exit_code == 2 and "--dask needs --output" in res.output
    assert parse_cluster("tcp://127.0.0.1:8786").address == "tcp://127.0.0.1:8786"


def test_python_api_matches_a_local_run_and_resumes_from_its_parts(tmp_path, conv_model):
    files = _boss_files(tmp_path, 7)
    local = predict_to_file(files, tmp_path / "l.fits", model=conv_model, draws=4, seed=2,
                            provider="cpu")
    out = tmp_path / "d.fits"
    table = predict_distributed(files, out, model=conv_model, dask="local:2", draws=4,
                                seed=2, provider="cpu", files_per_part=2)
    _numeric_columns_equal(local, table)
    _numeric_columns_equal(local, read_catalogue(out))
    # an interrupted run's finished parts are kept, and --resume merges them as they are
    again = tmp_path / "r.fits"
    with pytest.raises(_Stop):
        predict_distributed(files, again, model=conv_model, dask="local:2", draws=4, seed=2,
                            provider="cpu", files_per_part=2, on_progress=_stop_after_first)
    assert not again.exists()
    kept = sorted(parts_folder(again).glob("part-*.fits"))
    assert 1 <= len(kept) < 4, kept
    index = int(kept[0].name[5:10])
    marked = read_catalogue(kept[0])
    marked["teff"][0] = -1.0  # not a value the run computes
    write_catalogue(marked, kept[0])
    resumed = predict_distributed(files, again, model=conv_model, dask="local:2", draws=4,
                                  seed=2, provider="cpu", resume=True)
    expected = np.array(local["teff"])
    expected[2 * index] = -1.0  # the manifest kept the cut: 2 files (2 spectra) per part
    np.testing.assert_array_equal(np.array(resumed["teff"]), expected)
    assert not parts_folder(again).exists()


class _Stop(Exception):
    pass


def _stop_after_first(done: int, total: int) -> None:
    raise _Stop(f"{done}/{total}")


def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path, conv_model):
    files = _boss_files(tmp_path, 24)
    listing = tmp_path / "files.txt"
    listing.write_text("\n".join(files) + "\n")
    out = tmp_path / "d.fits"
    command = [sys.executable, "-m", "bossnet_onnx", "predict", f"@{listing}", "--draws", "50",
               "--seed", "5", "--model", str(conv_model), "--provider", "cpu", "-q",
               "--dask", "local:2", "-o", str(out)]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(command, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    folder = parts_folder(out)
    deadline = time.monotonic() + 240
    try:
        while not list(folder.glob("part-*.fits")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no part was written in time"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the client and its workers, mid-run
        proc.wait(timeout=60)
    done = sorted(p.name for p in folder.glob("part-*.fits"))
    assert not out.exists() and 1 <= len(done) < 8, done
    resumed = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    reference = predict_to_file(files, tmp_path / "ref.fits", model=conv_model, draws=50,
                                seed=5, provider="cpu")
    _numeric_columns_equal(reference, read_catalogue(out))
    assert not folder.exists()
    with fits.open(out) as hdul:
        assert hdul[1].header["NINPUTS"] == 24
