"""The stated memory bound, measured: the full-size BOSS network (random He-initialised weights,
official shapes) predicting a big many-spectra file and a gzip bomb in one run, in a subprocess
whose peak resident memory (VmHWM) must stay below PEAK_RSS_BOUND (README, "Memory"); the cold
start (which builds the ORT-format model copy) is measured on its own and held to the same bound.
"""
from __future__ import annotations

import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

import layouts  # noqa: E402

from bossnet_export import OFFICIAL_BOSS, export_model  # noqa: E402
from bossnet_export.random_weights import build_random_model, save_state_dict  # noqa: E402
from bossnet_onnx.outputs.catalogue import read_catalogue  # noqa: E402

pytestmark = [pytest.mark.export, pytest.mark.slow]

PEAK_RSS_BOUND = 1.5e9  # bytes; the README states the same figure
N_ROWS = 1000           # BOSS rows in one mwmVisit file (93 MB: five 4648-pixel arrays a row)
BOMB_MIB = 1024         # a ~1 MB .fits.gz that would decompress to 1 GiB

_PEAK = ("import atexit, sys\n"
         "def peak():\n"
         "    line = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
         "    sys.stderr.write('PEAK ' + line.split()[1] + '\\n')\n"
         "atexit.register(peak)\n"
         "from bossnet_onnx.cli import app\n"
         "sys.argv = ['bossnet-onnx'] + sys.argv[1:]\n"
         "app()\n")


def _peak(args: list[str], cache) -> tuple[int, subprocess.CompletedProcess]:
    """Peak resident bytes (VmHWM) of one CLI run in its own process, and the run."""
    env = dict(os.environ, BOSSNET_ONNX_CACHE=str(cache))
    run = subprocess.run([sys.executable, "-c", _PEAK, *args], capture_output=True, text=True,
                         timeout=1500, env=env)
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    return int(run.stderr.split("PEAK ")[1].split()[0]) * 1024, run


def _bomb(path, content: bytes) -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zero = bytes(1 << 20)
    with open(path, "wb") as fh:
        fh.write(packer.compress(content))
        for _ in range(BOMB_MIB):
            fh.write(packer.compress(zero))
        fh.write(packer.flush())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_peak_rss_of_the_full_model_on_a_big_file_and_a_bomb(tmp_path):
    model = build_random_model(OFFICIAL_BOSS, seed=11)
    weights = save_state_dict(model, tmp_path / "boss.pt")
    del model
    onnx_path = tmp_path / "boss.onnx"
    export_model(weights, onnx_path, provenance="random-weights")

    rng = np.random.default_rng(5)
    wave = layouts.boss_native_wavelength()
    base = (20 + 5 * np.sin(wave / 170)).astype(np.float32)
    ivar = np.full(wave.size, 4.0, np.float32)
    rows = [{"flux": base + rng.standard_normal(wave.size).astype(np.float32), "ivar": ivar,
             "mjd": 60000 + i} for i in range(N_ROWS)]
    big = layouts.write_mwm(tmp_path / "mwmVisit-0.6.0-99.fits", rows, kind="visit")
    del rows
    small = layouts.write_spec(tmp_path / "spec.fits", wave, base, ivar, plate=1, mjd=2,
                               fiberid=3)
    bomb = tmp_path / "spec-bomb.fits.gz"
    _bomb(bomb, small.read_bytes())
    assert bomb.stat().st_size < 1.2e6

    # Cold start: the first run builds the ORT-format copy of the model (its own peak).
    cold, run = _peak(["predict", str(small), "--model", str(onnx_path), "--quiet"],
                      tmp_path / "cache")
    assert run.returncode == 0, run.stderr[-2000:]
    out = tmp_path / "cat.fits"
    peak, run = _peak(["predict", str(big), str(bomb), "--model", str(onnx_path), "--draws", "2",
                       "--quiet", "-o", str(out)], tmp_path / "cache")
    print(f"peak RSS: cold start {cold / 1e6:.0f} MB; {N_ROWS} spectra + a {BOMB_MIB} MiB bomb "
          f"{peak / 1e6:.0f} MB")
    assert run.returncode == 1, run.stderr[-2000:]
    assert cold < PEAK_RSS_BOUND and peak < PEAK_RSS_BOUND
    table = read_catalogue(out)
    assert len(table) == N_ROWS + 1
    assert int((table["result_flags"] & 1).sum()) == 1  # the bomb, and only it
    assert "decompression bomb" in str(table["error"][-1])
