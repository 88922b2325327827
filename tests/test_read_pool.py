"""Reader processes (run/read_pool.py): the same rows, in input order, as one reading thread;
resumable; and a pool that cannot start or dies costs no row."""
from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time

import layouts  # our own module: a broken import must fail
import numpy as np
import pytest
from onnx_fixtures import write_linear_model
from run_helpers import (
    children,
    cpu_seconds,
    interrupt_after,
    long_input_list,
    running,
    spec_series,
)

import bossnet_onnx.run.to_file as runs
from bossnet_onnx.model.session import CUDA, open_model
from bossnet_onnx.outputs.catalogue import read_catalogue
from bossnet_onnx.run.options import RunOptions
from bossnet_onnx.run.read_pool import (
    FILES_IN_FLIGHT,
    ProcessReadAhead,
)
from bossnet_onnx.run.reading import FILE_DONE
from bossnet_onnx.run.stream import StageTimes, predict
from bossnet_onnx.run.to_file import Interrupted, partial_path, predict_to_file

COLUMNS = ("path", "hdu", "row", "teff", "e_teff", "logg", "e_logg", "fe_h", "bn_v_r",
           "e_bn_v_r", "snr_model", "result_flags", "quality_flags", "error")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Spec files, a 3-visit mwmVisit file and a file that is not FITS, mixed."""
    d = tmp_path_factory.mktemp("pool")
    out = spec_series(d, 7)
    rng = np.random.default_rng(99)
    visits = [{"flux": (8 + rng.standard_normal(layouts.BOSS_NPIX)).astype(np.float32),
               "ivar": np.full(layouts.BOSS_NPIX, 3.0, np.float32), "mjd": 59000 + k}
              for k in range(3)]
    visit = layouts.write_mwm(d / "mwmVisit-0.6.0-42.fits", visits, kind="visit", sdss_id=42)
    bad = d / "spec-3000-59000-0999.fits"
    bad.write_bytes(b"SIMPLE  =                    T" + b"\0" * 100)
    return [out[0], str(visit), out[1], str(bad), *out[2:]]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_linear_model(tmp_path_factory.mktemp("m") / "m.onnx", seed=2, scale=2.0)


def assert_same_rows(a, b) -> None:
    assert len(a) == len(b)
    for name in COLUMNS:
        assert list(a[name]) == list(b[name]) or np.array_equal(a[name], b[name],
                                                                 equal_nan=True), name


def test_reader_processes_give_the_same_rows_in_input_order(files, model):
    one = predict(files, model=model, draws=4, seed=3, readers=1)
    times = StageTimes()
    three = predict(files, model=model, draws=4, seed=3, readers=3, times=times)
    assert times.extra == {"reader_processes": 3, "files_read_by_processes": len(files),
                           "files_read_here": 0}
    assert times.read > 0 and times.preprocess > 0  # the workers' seconds, summed
    assert len(one) == 7 + 3 + 1  # every spectrum, the bad file a failed row in its place
    failed = [k for k in range(len(one)) if one["result_flags"][k] & 1]
    assert failed == [5] and "spec-3000-59000-0999.fits" in one["error"][5]
    assert_same_rows(one, three)


def test_a_run_with_reader_processes_resumes_to_the_same_rows(files, model, tmp_path,
                                                               monkeypatch):
    out = tmp_path / "cat.fits"
    real = interrupt_after(monkeypatch, 5)
    with pytest.raises(Interrupted):
        predict_to_file(files, out, model=model, draws=4, seed=3, readers=2)
    assert len(read_catalogue(partial_path(out))) == 5
    monkeypatch.setattr(runs, "stream", real)
    times = StageTimes()
    predict_to_file(files, out, model=model, draws=4, seed=3, readers=2, resume=True,
                    times=times)
    assert times.extra["files_read_here"] == 0 and times.extra["files_read_by_processes"] > 0
    assert_same_rows(read_catalogue(out), predict(files, model=model, draws=4, seed=3))


def _daemon_run(files: list[str], model: str, out: str) -> None:
    times = StageTimes()
    table = predict(files, model=model, draws=4, seed=3, readers=3, times=times)
    table.meta["READHERE"] = times.extra["files_read_here"]
    table.write(out, format="fits")


def test_inside_a_daemonic_process_the_files_are_read_there(files, model, tmp_path):
    """A daemonic process (a Dask worker, a multiprocessing pool's worker) may not start
    processes: the run reads in its own process and loses nothing."""
    out = tmp_path / "daemon.fits"
    proc = multiprocessing.get_context("spawn").Process(
        target=_daemon_run, args=(files, str(model), str(out)), daemon=True)
    proc.start()
    proc.join(120)
    assert proc.exitcode == 0
    table = read_catalogue(out)
    assert table.meta["READHERE"] == len(files)
    assert_same_rows(table, predict(files, model=model, draws=4, seed=3))


def test_a_script_without_the_main_guard_still_gets_every_row_once(files, model, tmp_path):
    """Spawned readers re-import the script; without `if __name__ == "__main__":` they die at
    start (Python's own message), and the run reads in its own process: every row, once."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from bossnet_onnx import predict\n"
        "from bossnet_onnx.run.stream import StageTimes\n"
        "times = StageTimes()\n"
        f"table = predict({files!r}, model={str(model)!r}, draws=4, seed=3, readers=2,\n"
        "                times=times)\n"
        "print('ROWS', len(table), int((table['result_flags'] & 1).sum()),\n"
        "      times.extra['files_read_here'])\n")
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.splitlines().count(f"ROWS 11 1 {len(files)}") == 1, res.stdout
    assert "bootstrapping phase" in res.stderr


def test_at_most_files_in_flight_per_reader_process(files, model):
    """The memory bound: never more than FILES_IN_FLIGHT files per process handed out ahead."""
    items = files * 3
    reader = ProcessReadAhead(items, open_model(model, provider="cpu").metadata,
                              RunOptions(draws=2), StageTimes(), (), 2)
    peak, done = len(reader.pending), 0
    for piece in reader:
        peak = max(peak, len(reader.pending))
        done += piece is FILE_DONE
    assert peak == FILES_IN_FLIGHT * 2 and done == len(items)


def test_one_reading_thread_unless_readers_are_asked_for(files, model):
    """The default on every engine, CUDA included (on an H200 one reading thread fed CUDA runs
    faster than 4 or 8 processes); --readers N starts N processes for paths only."""
    from bossnet_onnx.run.stream import _read_ahead, _ReadAhead

    m = open_model(model, provider="cpu")
    m.provider = CUDA
    chosen = []
    for options, items in ((RunOptions(draws=2), files), (RunOptions(draws=2, readers=1), files),
                           (RunOptions(draws=2, readers=2), files),
                           (RunOptions(draws=2, readers=2), files[:1])):
        reader = _read_ahead(items, m, options, StageTimes(), ())
        chosen.append(type(reader))
        reader.close()
    assert chosen == [_ReadAhead, _ReadAhead, ProcessReadAhead, _ReadAhead]
    with pytest.raises(ValueError, match="readers must be >= 1"):
        RunOptions(readers=0)


def test_readers_is_an_option_of_the_cli(files, model, tmp_path):
    from typer.testing import CliRunner

    from bossnet_onnx.cli import app

    out = tmp_path / "cli.fits"
    res = CliRunner().invoke(app, ["predict", *files, "-m", str(model), "--draws", "4", "--seed",
                                   "3", "--readers", "2", "-o", str(out), "-q"])
    assert res.exit_code == 1, res.output  # 1: a row failed (the file that is not FITS)
    assert [line for line in res.output.splitlines() if line.startswith("failed:")] == [
        f"failed: {files[3]}: FITS file is truncated or corrupted (Empty or corrupt FITS file); "
        f"download it again"]
    assert_same_rows(read_catalogue(out), predict(files, model=model, draws=4, seed=3))
    bad = CliRunner().invoke(app, ["predict", files[0], "-m", str(model), "--readers", "0"])
    assert bad.exit_code == 2 and "--readers" in bad.output


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_sigterm_with_reader_processes_saves_the_rows_and_leaves_no_reader(files, model,
                                                                           tmp_path):
    many = long_input_list(files, 300, tmp_path)
    out = tmp_path / "cat.fits"
    exe = os.path.join(os.path.dirname(sys.executable), "bossnet-onnx")
    proc = subprocess.Popen([exe, "predict", f"@{many}", "-m", str(model), "-o", str(out),
                             "--draws", "200", "--readers", "2", "--quiet"],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    readers: set[int] = set()
    while proc.poll() is None and time.monotonic() < deadline and (
            len(readers) < 2 or cpu_seconds(proc.pid) < 3.0):
        readers |= children(proc.pid)
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    assert len(readers) >= 2, readers  # the reader processes (and maybe a resource tracker)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err and "cat.partial.fits" in err
    assert len(read_catalogue(partial_path(out))) > 0
    assert not out.exists() and not (tmp_path / "cat.fits.lock").exists()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(running(p) for p in readers):
        time.sleep(0.2)
    assert not [p for p in readers if running(p)], "reader processes left running"
