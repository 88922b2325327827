"""Resumable runs: interruption leaves no catalogue, --resume finishes identically; SIGTERM."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import layouts  # our own module: a broken import must fail
import numpy as np
import pytest
from onnx_fixtures import linear_metadata, write_linear_model
from run_helpers import cpu_seconds, interrupt_after, long_input_list, spec_series

import bossnet_onnx.run.to_file as runs
from bossnet_onnx.errors import ModelError, OutputError, OutputPathError
from bossnet_onnx.outputs.catalogue import read_catalogue
from bossnet_onnx.run.stream import predict
from bossnet_onnx.run.to_file import Interrupted, partial_path, predict_to_file


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return spec_series(tmp_path_factory.mktemp("runs"), 6)


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
    real = interrupt_after(monkeypatch, 3)
    with pytest.raises(Interrupted, match=r"interrupted: 3 spectra saved to .*cat\.partial\.fits.*--resume"):
        predict_to_file(files, out, model=model, draws=4, seed=9)
    assert not out.exists()
    partial = read_catalogue(partial_path(out))
    # every finished spectrum is kept (a big file is checkpointed within itself)
    assert len(partial) == 3
    monkeypatch.setattr(runs, "stream", real)
    with pytest.raises(OutputError, match=r"was made with SEED=9, this run has 10; resume with "
                                          r"the same --seed"):
        predict_to_file(files, out, model=model, draws=4, seed=10, resume=True)
    full = predict_to_file(files, out, model=model, draws=4, seed=9, resume=True)
    assert out.exists() and not partial_path(out).exists()
    reference = predict(files, model=model, draws=4, seed=9)
    assert list(full["path"]) == files
    for name in ("teff", "e_teff", "logg", "e_bn_v_r"):
        np.testing.assert_array_equal(read_catalogue(out)[name], reference[name])
    with pytest.raises(OutputError, match="already complete"):
        predict_to_file(files, out, model=model, draws=4, seed=9, resume=True)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_sigterm_leaves_no_catalogue_and_says_how_to_resume(files, model, tmp_path):
    # far more work than the test waits for (about 1,200 files x 401 model rows), so the
    # signal always lands mid-run; it is sent once the process has spent CPU time predicting
    many = long_input_list(files, 400, tmp_path)
    out = tmp_path / "cat.fits"
    exe = os.path.join(os.path.dirname(sys.executable), "bossnet-onnx")
    proc = subprocess.Popen([exe, "predict", f"@{many}", "-m", str(model), "-o", str(out),
                             "--draws", "400", "--quiet"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while proc.poll() is None and cpu_seconds(proc.pid) < 3.0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err and "cat.partial.fits" in err
    assert not out.exists()
    assert partial_path(out).exists()
    assert not (tmp_path / "cat.fits.lock").exists()  # released on the signal path too


# ------------------------------------------------------------------ every format resumable
@pytest.mark.parametrize("suffix", [".fits", ".fits.gz", ".csv", ".ecsv", ".parquet"])
def test_every_format_resumes_to_the_uninterrupted_rows(files, model, tmp_path, monkeypatch,
                                                        suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / f"cat{suffix}"
    real = interrupt_after(monkeypatch, 4)
    # every finished spectrum is saved, the 4th file's too (a file may hold more)
    with pytest.raises(Interrupted, match=rf"4 spectra saved to .*cat\.partial{suffix}"):
        predict_to_file(files, out, model=model, draws=3, seed=2)
    progress = read_catalogue(partial_path(out))
    assert len(progress) == 4 and progress.meta["NINPUTS"] == 6
    assert progress.meta["INPUTS"] == runs.input_set_digest(files)
    monkeypatch.setattr(runs, "stream", real)
    seen = []

    def counting(model, paths, *args, **kwargs):
        seen.extend(paths)
        return real(model, paths, *args, **kwargs)

    monkeypatch.setattr(runs, "stream", counting)
    full = predict_to_file(files, out, model=model, draws=3, seed=2, resume=True)
    # the last saved file is read again (it may have been partly done) with its saved
    # spectra skipped; the files before it are not read at all
    assert seen == files[3:]
    reference = predict(files, model=model, draws=3, seed=2)
    back = read_catalogue(out)
    assert list(back["path"]) == files and len(full) == 6
    for name in ("teff", "e_teff", "logg", "e_fe_h", "result_flags"):
        np.testing.assert_array_equal(back[name], reference[name])
    assert not partial_path(out).exists()


def test_input_set_digest_is_order_free_and_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = runs.input_set_digest(["x.fits", "y.fits"])
    assert a == runs.input_set_digest([str(tmp_path / "y.fits"), "x.fits"])
    assert a != runs.input_set_digest(["x.fits"])
    assert len(a) == 64


# ----------------------------------------------------------- resume refuses another run
def test_resume_refuses_any_difference_naming_it(files, model, tmp_path, monkeypatch):
    out = tmp_path / "cat.csv"
    real = interrupt_after(monkeypatch, 2)
    with pytest.raises(Interrupted):
        predict_to_file(files, out, model=model, draws=3, seed=2, shard="1/1")
    monkeypatch.setattr(runs, "stream", real)
    before = partial_path(out).read_bytes()
    other = write_linear_model(tmp_path / "other.onnx", seed=5, scale=2.0,
                               metadata=linear_metadata(weights_sha256="1" * 64))
    cases = [
        (dict(inputs=files[:5]), r"was made with INPUTS='[0-9a-f]{64}', this run has "
                                 r"'[0-9a-f]{64}'; resume with the same inputs"),
        (dict(shard="1/2"), r"was made with SHARD='1/1', this run has '1/2'; resume with the "
                            r"same --shard"),
        (dict(shard=None), r"was made with SHARD='1/1', this run has None"),
        (dict(draws=4), r"was made with NDRAWS=3, this run has 4; resume with the same --draws"),
        (dict(seed=1), r"was made with SEED=2, this run has 1; resume with the same --seed"),
        (dict(model=other), rf"was made with MODELSHA='{'0' * 64}', this run has '{'1' * 64}'"
                            r"; resume with the same model"),
    ]
    for change, message in cases:
        kwargs = dict(inputs=files, model=model, draws=3, seed=2, shard="1/1")
        kwargs.update(change)
        with pytest.raises(OutputPathError, match=message):
            predict_to_file(kwargs.pop("inputs"), out, resume=True, **kwargs)
        assert partial_path(out).read_bytes() == before
    assert not out.exists()


def test_a_fresh_run_never_discards_a_progress_file(files, model, tmp_path, monkeypatch):
    out = tmp_path / "cat.fits"
    real = interrupt_after(monkeypatch, 3)
    with pytest.raises(Interrupted):
        predict_to_file(files, out, model=model, draws=0)
    monkeypatch.setattr(runs, "stream", real)
    before = partial_path(out).read_bytes()
    with pytest.raises(OutputPathError, match=r"cat\.partial\.fits holds the rows of an "
                                              r"interrupted run; rerun with --resume to continue "
                                              r"it, or --overwrite to discard it"):
        predict_to_file(files, out, model=model, draws=0)
    assert partial_path(out).read_bytes() == before
    table = predict_to_file(files, out, model=model, draws=0, overwrite=True)
    assert len(table) == 6 and not partial_path(out).exists()
    with pytest.raises(OutputPathError, match=r"cat\.fits already exists; pass --overwrite"):
        predict_to_file(files, out, model=model, draws=0)


# ------------------------------------------------------- faults after the work started
def test_failed_checkpoint_is_retried_reported_and_not_fatal(files, model, tmp_path,
                                                             monkeypatch):
    out = tmp_path / "cat.fits"
    partial_path(out).mkdir()  # the progress file cannot be replaced: every checkpoint fails
    monkeypatch.setattr(runs, "CHECKPOINT_RETRY_DELAYS", (0.0, 0.0))
    tries = []
    real_write = runs.write_catalogue

    def counting_write(table, path):
        tries.append(os.path.basename(path))
        return real_write(table, path)

    monkeypatch.setattr(runs, "write_catalogue", counting_write)
    warnings = []
    table = predict_to_file(files, out, model=model, draws=0, overwrite=True,
                            checkpoint_seconds=0.0, on_warning=warnings.append)
    assert len(table) == 6 and len(read_catalogue(out)) == 6
    assert tries.count("cat.partial.fits") == 3 * 6  # three tries at each of six checkpoints
    assert len(warnings) == 7  # six checkpoints, then the progress file could not be removed
    assert re.fullmatch(r"checkpoint failed after 3 tries: cannot write .*cat\.partial\.fits: "
                        r"Is a directory; 1 spectrum kept in memory, .*cat\.partial\.fits holds "
                        r"0; next try in 0 s", warnings[0]), warnings[0]
    assert "6 spectra kept in memory" in warnings[5]


def test_failed_final_write_keeps_every_row_for_resume(files, model, tmp_path, monkeypatch):
    out = tmp_path / "cat.fits"
    real = runs.stream

    def output_taken_meanwhile(*args, **kwargs):
        yield from real(*args, **kwargs)
        out.mkdir()  # something took the output's name while the run went on

    monkeypatch.setattr(runs, "stream", output_taken_meanwhile)
    with pytest.raises(OutputError, match=r"cannot write .*cat\.fits: Is a directory; all 6 "
                                          r"spectra are saved in .*cat\.partial\.fits: fix the "
                                          r"cause \(free space, permissions\) and rerun the same "
                                          r"command with --resume"):
        predict_to_file(files, out, model=model, draws=2, seed=4)
    monkeypatch.setattr(runs, "stream", real)
    assert len(read_catalogue(partial_path(out))) == 6
    out.rmdir()
    seen = []
    monkeypatch.setattr(runs, "stream",
                        lambda m, paths, *a, **k: (seen.extend(paths), real(m, paths, *a, **k))[1])
    predict_to_file(files, out, model=model, draws=2, seed=4, resume=True)
    assert seen == []  # nothing recomputed
    reference = predict(files, model=model, draws=2, seed=4)
    np.testing.assert_array_equal(read_catalogue(out)["e_teff"], reference["e_teff"])


def test_full_disk_at_the_final_write_rescues_the_rows(files, model, tiny_tmpfs, monkeypatch):
    small = tiny_tmpfs()
    out = small / "cat.fits"
    real = runs.stream

    def disk_fills_meanwhile(*args, **kwargs):
        yield from real(*args, **kwargs)
        fd = os.open(small / "filler", os.O_WRONLY | os.O_CREAT)  # another job fills the disk
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            os.close(fd)

    monkeypatch.setattr(runs, "stream", disk_fills_meanwhile)
    with pytest.raises(OutputError) as caught:
        predict_to_file(files, out, model=model, draws=2, seed=4)
    message = str(caught.value)
    rescue = runs._rescue_path(partial_path(out))
    assert message == (
        f"cannot write {out}: No space left on device; saving them beside it failed too "
        f"(cannot write {partial_path(out)}: No space left on device); all 6 spectra are saved "
        f"in {rescue}: move it to {partial_path(out)} and rerun the same command with --resume")
    assert sorted(p.name for p in small.iterdir()) == ["filler"]  # no lock, no temp file
    (small / "filler").unlink()
    shutil.move(rescue, partial_path(out))
    monkeypatch.setattr(runs, "stream", real)
    table = predict_to_file(files, out, model=model, draws=2, seed=4, resume=True)
    assert len(table) == 6 and sorted(p.name for p in small.iterdir()) == ["cat.fits"]


def test_an_error_mid_run_saves_the_finished_files_first(files, model, tmp_path, monkeypatch):
    out = tmp_path / "cat.ecsv"
    real = runs.stream

    def model_breaks(*args, **kwargs):
        for k, res in enumerate(real(*args, **kwargs)):
            if k == 3:
                raise ModelError("m.onnx: the GPU went away")
            yield res

    monkeypatch.setattr(runs, "stream", model_breaks)
    with pytest.raises(ModelError, match=r"the GPU went away; 3 spectra saved to "
                                         r".*cat\.partial\.ecsv: rerun the same command with "
                                         r"--resume to continue"):
        predict_to_file(files, out, model=model, draws=0)
    assert len(read_catalogue(partial_path(out))) == 3
    assert not (tmp_path / "cat.ecsv.lock").exists()


@pytest.mark.parametrize("suffix", [".fits", ".csv"])
def test_resume_matches_hostile_file_names_as_stored(model, tmp_path, monkeypatch, suffix):
    """Names stored escaped (FITS: ASCII) are still recognised as done: nothing recomputed,
    nothing twice."""
    d = tmp_path / "données"
    d.mkdir()
    wave = layouts.boss_native_wavelength()
    names = ["étoile-1.fits", "two\nlines.fits", "bad\udcffbyte.fits", "plain.fits"]
    paths = []
    for i, name in enumerate(names):
        path = d / name
        flux = (10 + np.cos(wave / (80 + i))).astype(np.float32)
        layouts.write_spec(path, wave, flux, np.full(wave.size, 2.0, np.float32), plate=1,
                           mjd=59000, fiberid=i + 1)
        paths.append(str(path))
    out = tmp_path / f"cat{suffix}"
    real = interrupt_after(monkeypatch, 3)
    with pytest.raises(Interrupted, match="3 spectra saved"):
        predict_to_file(paths, out, model=model, draws=0)
    seen = []
    monkeypatch.setattr(runs, "stream",
                        lambda m, p, *a, **k: (seen.extend(p), real(m, p, *a, **k))[1])
    table = predict_to_file(paths, out, model=model, draws=0, resume=True)
    assert seen == paths[2:]  # the last saved file again (its spectra skipped), then the rest
    assert len(table) == 4 and sorted(read_catalogue(out)["fiberid"]) == [1, 2, 3, 4]


def test_ctrl_c_during_the_final_write_keeps_every_row(files, model, tmp_path, monkeypatch):
    out = tmp_path / "cat.parquet"
    pytest.importorskip("pyarrow")
    real_write = runs.write_catalogue

    def interrupted_final_write(table, path):
        if path == out:
            raise KeyboardInterrupt
        return real_write(table, path)

    monkeypatch.setattr(runs, "write_catalogue", interrupted_final_write)
    with pytest.raises(Interrupted, match=r"interrupted: 6 spectra saved to .*cat\.partial"
                                          r"\.parquet; no catalogue written"):
        predict_to_file(files, out, model=model, draws=0)
    assert len(read_catalogue(partial_path(out))) == 6 and not out.exists()
    assert not (tmp_path / "cat.parquet.lock").exists()


def test_a_big_file_is_checkpointed_and_resumed_within_itself(model, tmp_path, monkeypatch):
    """Five spectra in one table file: stopped after two, the progress file holds those two
    (marked PARTLAST), and --resume computes only the other three."""
    from astropy.table import Table

    wave = layouts.boss_native_wavelength().astype(np.float64)
    rng = np.random.default_rng(5)
    flux = 10 + np.cos(wave / 80)[None, :] + rng.standard_normal((5, wave.size))
    big = tmp_path / "five.fits"
    Table({"wavelength": np.tile(wave, (5, 1)), "flux": flux.astype(np.float32),
           "ivar": np.full(flux.shape, 4.0, np.float32)}).write(big)
    out = tmp_path / "cat.fits"
    real = interrupt_after(monkeypatch, 2)
    with pytest.raises(Interrupted, match="2 spectra saved"):
        predict_to_file([str(big)], out, model=model, draws=3, seed=4)
    progress = read_catalogue(partial_path(out))
    assert list(progress["row"]) == [0, 1] and bool(progress.meta["PARTLAST"]) is True
    computed = []

    def counting(*args, **kwargs):
        for res in real(*args, **kwargs):
            computed.append(int(res.row))
            yield res

    monkeypatch.setattr(runs, "stream", counting)
    full = predict_to_file([str(big)], out, model=model, draws=3, seed=4, resume=True)
    assert computed == [2, 3, 4]  # the saved spectra of the file were skipped, not redone
    reference = predict([str(big)], model=model, draws=3, seed=4)
    assert list(full["row"]) == [0, 1, 2, 3, 4]
    for name in ("teff", "e_teff", "logg", "e_bn_v_r"):
        np.testing.assert_array_equal(read_catalogue(out)[name], reference[name])
