"""Output conventions through the CLI: --overwrite (exit 2 before any work) for predict, merge,
plot and kiel; one writer per -o (real processes); paths printed safely; merge never a traceback
and duplicates judged on the spectrum, not the file name."""
from __future__ import annotations

import builtins
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from onnx_fixtures import write_linear_model
from run_helpers import interrupt_after
from typer.testing import CliRunner

import bossnet_onnx.readers as readers
from bossnet_onnx.cli import app
from bossnet_onnx.outputs.catalogue import Result, build_table, read_catalogue, write_catalogue
from bossnet_onnx.run.lock import lock_path

layouts = __import__("layouts")
EXE = os.path.join(os.path.dirname(sys.executable), "bossnet-onnx")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_linear_model(tmp_path_factory.mktemp("m") / "m.onnx", seed=2, scale=2.0)


def write_star(path: Path, i: int, **ids) -> str:
    wave = layouts.boss_native_wavelength()
    flux = (10 + np.cos(wave / (90 + i))).astype(np.float32)
    layouts.write_spec(path, wave, flux, np.full(wave.size, 2.0, np.float32),
                       **{"plate": 3000, "mjd": 59000, "fiberid": i + 1, **ids})
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("stars")
    return [write_star(d / f"spec-3000-59000-{i + 1:04d}.fits", i) for i in range(3)]


@pytest.fixture
def count_reads(monkeypatch):
    calls = []
    real = readers.iter_spectra  # what predict reads through (read_spectra wraps it too)

    def counting(path, *args, **kwargs):
        calls.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(readers, "iter_spectra", counting)
    return calls


# ------------------------------------------------------------------------------ --overwrite
def test_predict_refuses_an_existing_output_before_reading(files, model, tmp_path, count_reads):
    out = tmp_path / "cat.fits"
    out.write_bytes(b"yesterday's catalogue")
    res = CliRunner().invoke(app, ["predict", *files, "-m", str(model), "-o", str(out)])
    assert res.exit_code == 2, res.output
    assert res.output.strip().endswith("cat.fits already exists; pass --overwrite (overwrite=True) "
                                       "to replace it, or choose another name")
    assert count_reads == [] and out.read_bytes() == b"yesterday's catalogue"
    res = CliRunner().invoke(app, ["predict", *files, "-m", str(model), "-o", str(out),
                                   "--overwrite", "--draws", "2"])
    assert res.exit_code == 0, res.output
    assert len(read_catalogue(out)) == 3 and len(count_reads) == 3
    assert not lock_path(out).exists()


@pytest.mark.parametrize(("name", "message"), [
    ("sub", "sub is a directory; give a file name"),
    ("nope/cat.fits", "output directory .*nope does not exist; create it first"),
    ("cat.txt", "cat.txt: unknown output type"),
    ("x" * 250 + ".fits", "file name too long"),
])
def test_predict_bad_output_paths_are_usage_errors(files, model, tmp_path, count_reads, name,
                                                   message):
    (tmp_path / "sub").mkdir()
    res = CliRunner().invoke(app, ["predict", *files, "-m", str(model), "-o",
                                   str(tmp_path / name)])
    assert res.exit_code == 2, res.output
    assert re.search(message, res.output), res.output
    assert count_reads == []


def test_parquet_without_pyarrow_refused_before_work(files, model, tmp_path, count_reads,
                                                     monkeypatch):
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    res = CliRunner().invoke(app, ["predict", *files, "-m", str(model), "-o",
                                   str(tmp_path / "cat.parquet")])
    assert res.exit_code == 2
    assert "writing parquet needs pyarrow: pip install 'bossnet-onnx[parquet]'" in res.output
    assert count_reads == []


def test_merge_plot_and_kiel_refuse_to_overwrite(files, model, tmp_path, count_reads):
    runner = CliRunner()
    cat = tmp_path / "cat.fits"
    assert runner.invoke(app, ["predict", *files, "-m", str(model), "-o", str(cat),
                               "--draws", "0"]).exit_code == 0
    count_reads.clear()
    for argv, target in (
        (["merge", str(cat), "-o"], tmp_path / "all.fits"),
        (["plot", files[0], "-m", str(model), "-o"], tmp_path / "s.png"),
        (["kiel", str(cat), "-o"], tmp_path / "k.png"),
    ):
        target.write_bytes(b"keep me")
        res = runner.invoke(app, [*argv, str(target)])
        assert res.exit_code == 2, res.output
        assert f"{target.name} already exists; pass --overwrite" in res.output
        assert target.read_bytes() == b"keep me"
        res = runner.invoke(app, [*argv, str(target), "--overwrite"])
        assert res.exit_code == 0, res.output
        assert target.read_bytes() != b"keep me"
    assert count_reads == [files[0]]  # only the plot that was allowed to run read its spectrum
    res = runner.invoke(app, ["kiel", str(cat), "-o", str(tmp_path / "k.jpg")])
    assert res.exit_code == 2 and "name it with one of .pdf, .png, .svg" in res.output


def test_plot_default_target_is_checked_too(files, model, tmp_path, monkeypatch, count_reads):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec-3000-59000-0001.png").write_bytes(b"old")
    res = CliRunner().invoke(app, ["plot", files[0], "-m", str(model)])
    assert res.exit_code == 2 and "spec-3000-59000-0001.png already exists" in res.output
    assert count_reads == []


# ------------------------------------------------------------------------ one writer per -o
HOLDER = """
import sys, time
from bossnet_onnx.run.lock import OutputLock
with OutputLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_second_run_on_the_same_output_refuses_naming_the_holder(files, model, tmp_path):
    out = tmp_path / "cat.csv"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        done = subprocess.run([EXE, "predict", *files, "-m", str(model), "-o", str(out)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, done.stderr
        assert done.stderr.strip().splitlines()[-1] == (
            f"error: {out} is being written by pid {holder.pid} on {socket.gethostname()} since "
            f"{done.stderr.split(' since ')[1].split(' ')[0]} (lock {out}.lock); wait for that "
            f"run, or stop it, before rerunning")
        assert "Traceback" not in done.stderr
        assert time.monotonic() - t0 < 30
        assert not out.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    # the holder died without cleaning up: its lock file does not block the next run
    assert lock_path(out).exists()
    done = subprocess.run([EXE, "predict", *files, "-m", str(model), "-o", str(out), "-q"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(read_catalogue(out)) == 3 and not lock_path(out).exists()


def test_lock_released_on_error_exits(files, model, tmp_path):
    out = tmp_path / "cat.fits"
    res = CliRunner().invoke(app, ["predict", *files, "-m", str(tmp_path / "missing.onnx"),
                                   "-o", str(out)])
    assert res.exit_code == 1 and "missing.onnx" in res.output
    assert not lock_path(out).exists() and list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------- paths printed safely
def test_newline_and_markup_in_file_names_cannot_forge_or_restyle(model, tmp_path):
    good = write_star(tmp_path / "[bold red]x[reverse]-[link=http:e.org]s.fits", 1)
    forged = tmp_path / "bad\nfailed: everything is fine.fits"
    forged.write_bytes(b"not a spectrum")
    res = subprocess.run([EXE, "predict", good, str(forged), "-m", str(model), "--draws", "0"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    failed = [line for line in res.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1
    assert "bad\\nfailed: everything is fine.fits" in failed[0]
    assert "[bold red]x[reverse]-[link=http:e.org]s.fits" in res.stdout  # shown literally
    assert "\x1b" not in res.stdout


# -------------------------------------------------------------------------------- merge
def test_merge_bad_inputs_are_one_line_errors(tmp_path):
    runner = CliRunner()
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"\0" * 100)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    good = write_catalogue(build_table([Result(source="a.fits")], meta={"SEED": 1}),
                           tmp_path / "good.fits")
    (tmp_path / "dir.fits").mkdir()
    (tmp_path / "x.txt").write_text("a,b\n")
    cases = [
        ([str(junk)], r"merge: .*junk\.fits: cannot read catalogue"),
        ([str(tmp_path / "gone.fits")], r"merge: .*gone\.fits: catalogue not found"),
        ([str(tmp_path / "dir.fits")], r"merge: .*dir\.fits: is a directory"),
        ([str(good), str(other)], r"merge: .*other\.csv has other columns than .*good\.fits"),
        ([str(tmp_path / "x.txt")], r"merge: .*x\.txt: unknown output type"),
        ([str(good), str(tmp_path / "out.fits")], r"merge: .*out\.fits is also the output"),
    ]
    for parts, message in cases:
        if "also the output" in message:
            (tmp_path / "out.fits").write_bytes(good.read_bytes())
            argv = ["merge", *parts, "-o", str(tmp_path / "out.fits"), "--overwrite"]
        else:
            argv = ["merge", *parts, "-o", str(tmp_path / "out.fits")]
        res = runner.invoke(app, argv)
        assert res.exit_code == 1, (parts, res.output)
        assert res.exception is None or isinstance(res.exception, SystemExit)
        assert len(res.output.strip().splitlines()) == 1, res.output
        assert re.search(message, res.output), res.output


def test_merge_same_named_files_of_different_stars_are_not_duplicates(model, tmp_path):
    runner = CliRunner()
    a = tmp_path / "night1"
    b = tmp_path / "night2"
    a.mkdir()
    b.mkdir()
    one = write_star(a / "star.fits", 1, plate=1, fiberid=10)
    two = write_star(b / "star.fits", 2, plate=2, fiberid=20)
    parts = []
    for k, f in ((1, one), (2, two)):
        out = tmp_path / f"p{k}.csv"
        res = runner.invoke(app, ["predict", f, "-m", str(model), "-o", str(out), "--draws", "0"])
        assert res.exit_code == 0, res.output
        parts.append(str(out))
    res = runner.invoke(app, ["merge", *parts, "-o", str(tmp_path / "all.csv")])
    assert res.exit_code == 0, res.output
    merged = read_catalogue(tmp_path / "all.csv")
    assert sorted(merged["fiberid"]) == [10, 20]
    # the same spectrum twice, even through another directory, is a duplicate
    os.symlink(a, tmp_path / "again")
    out = tmp_path / "p3.csv"
    assert runner.invoke(app, ["predict", str(tmp_path / "again" / "star.fits"), "-m", str(model),
                               "-o", str(out), "--draws", "0"]).exit_code == 0
    res = runner.invoke(app, ["merge", parts[0], str(out), "-o", str(tmp_path / "dup.csv")])
    assert res.exit_code == 1
    assert re.search(r"merge: 1 spectr(a|um) appears? more than once, e\.g\. star\.fits\|1\|-1\|",
                     res.output), res.output


def test_csv_shards_get_the_same_checks_as_fits(files, model, tmp_path):
    runner = CliRunner()
    parts = []
    for k, seed in ((1, "7"), (2, "7"), (3, "8")):
        out = tmp_path / f"part{k}.csv"
        res = runner.invoke(app, ["predict", *files, "-m", str(model), "--draws", "2", "--seed",
                                  seed, "--shard", f"{k}/3", "-o", str(out)])
        assert res.exit_code == 0, res.output
        parts.append(str(out))
    res = runner.invoke(app, ["merge", *parts[:2], "-o", str(tmp_path / "all.csv")])
    assert res.exit_code == 1 and "missing shard(s) 3/3" in res.output
    res = runner.invoke(app, ["merge", *parts, "-o", str(tmp_path / "all.csv")])
    assert res.exit_code == 1 and "part3.csv has SEED=8 but" in res.output
    assert not (tmp_path / "all.csv").exists()


def test_cli_resume_refusal_is_one_line_naming_the_difference(files, model, tmp_path,
                                                              monkeypatch):
    import bossnet_onnx.run.to_file as runs

    out = tmp_path / "cat.csv"
    real = interrupt_after(monkeypatch, 2)
    runner = CliRunner()
    res = runner.invoke(app, ["predict", *files, "-m", str(model), "-o", str(out), "--seed", "3"])
    assert res.exit_code == 130 and re.search(r"2 spectra saved to", res.output)
    monkeypatch.setattr(runs, "stream", real)
    res = runner.invoke(app, ["predict", *files[:2], "-m", str(model), "-o", str(out), "--seed",
                              "3", "--resume"])
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and "was made with INPUTS=" in res.output
    res = runner.invoke(app, ["predict", *files, "-m", str(model), "-o", str(out), "--seed", "3"])
    assert res.exit_code == 2 and "rerun with --resume to continue it" in res.output
    res = runner.invoke(app, ["predict", *files, "-m", str(model), "-o", str(out), "--seed", "3",
                              "--resume"])
    assert res.exit_code == 0, res.output
    assert len(read_catalogue(out)) == 3 and not (tmp_path / "cat.partial.csv").exists()


def test_output_among_the_inputs_is_refused(files, model, tmp_path, count_reads):
    out = tmp_path / "cat.fits"
    runner = CliRunner()
    assert runner.invoke(app, ["predict", files[0], "-m", str(model), "-o", str(out),
                               "--draws", "0"]).exit_code == 0
    count_reads.clear()
    res = runner.invoke(app, ["predict", files[1], str(out), "-m", str(model), "-o", str(out),
                              "--overwrite"])
    assert res.exit_code == 2
    assert "cat.fits is both an input and this run's output" in res.output
    assert count_reads == [] and len(read_catalogue(out)) == 1


@pytest.mark.parametrize("suffix", [".fits", ".fits.gz", ".csv"])
def test_bom_csv_in_a_non_ascii_directory_is_a_written_row(model, tmp_path, suffix):
    """The BOM ends up in the error text; the writer must still write every row."""
    where = tmp_path / "données"
    where.mkdir()
    wave = np.linspace(3600, 9000, 2000)
    table_text = "wavelength,flux,ivar\n" + "".join(
        f"{w:.3f},{10 + np.sin(w / 100):.5f},4.0\n" for w in wave)
    bom = where / "étoile.csv"
    bom.write_text(table_text, encoding="utf-8-sig")
    good = write_star(where / "spec-1-59000-0001.fits", 1)
    out = where / f"cat{suffix}"
    res = CliRunner().invoke(app, ["predict", good, str(bom), "-m", str(model), "-o", str(out),
                                   "--draws", "2"])
    assert res.exit_code in (0, 1), res.output
    back = read_catalogue(out)
    assert len(back) == 2 and np.isfinite(back["teff"][0])
    fits_file = suffix.startswith(".fits")
    assert back["path"][1].endswith("\\xe9toile.csv" if fits_file else "étoile.csv")
    if fits_file:  # FITS text is ASCII, whatever the reader put in the error text
        assert all(str(v).isascii() for name in ("path", "error") for v in back[name])


@pytest.mark.slow
def test_two_real_predict_runs_on_one_output(files, model, tmp_path):
    listed = []
    for k in range(60):
        for f in files:
            link = tmp_path / f"c{k}-{os.path.basename(f)}"
            os.link(f, link)  # hard links: symbolic ones are one file (inputs dedupe real paths)
            listed.append(str(link))
    many = tmp_path / "list.txt"
    many.write_text("\n".join(listed) + "\n")
    out = tmp_path / "cat.fits"
    first = subprocess.Popen([EXE, "predict", f"@{many}", "-m", str(model), "-o", str(out),
                              "--draws", "400", "-q"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not lock_path(out).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, "the first run ended before the check"
        second = subprocess.run([EXE, "predict", *files, "-m", str(model), "-o", str(out), "-q"],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 1
        assert f"is being written by pid {first.pid} on {socket.gethostname()}" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=120)
    assert first.returncode in (0, 130), err  # 0: it finished before the signal
    if first.returncode == 130:
        assert not out.exists() and (tmp_path / "cat.partial.fits").exists()
    else:
        assert len(read_catalogue(out)) == len(listed)  # the refused run took nothing from it
    assert not lock_path(out).exists()
