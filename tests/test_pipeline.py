"""predict end to end on real-layout files: rows, failures, seeds, flags, outputs, CLI."""
from __future__ import annotations

import math

import layouts  # our own module: a broken import must fail
import numpy as np
import pytest
from astropy.io import fits
from onnx_fixtures import write_linear_model
from typer.testing import CliRunner

from bossnet_onnx.cli import app
from bossnet_onnx.errors import OutputError
from bossnet_onnx.model.session import open_model
from bossnet_onnx.outputs.catalogue import read_catalogue, write_catalogue
from bossnet_onnx.readers import read_spectra
from bossnet_onnx.run.rows import prepare_spectrum
from bossnet_onnx.run.stream import predict
from bossnet_onnx.science.flags import QualityFlags


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("pipeline")


@pytest.fixture(scope="module")
def model_path(workdir):
    return write_linear_model(workdir / "linear.onnx", seed=4, scale=2.0)


def write_star(path, seed, *, wave=None, ivar_value=4.0, fiber=1):
    rng = np.random.default_rng(seed)
    wave = layouts.boss_native_wavelength() if wave is None else wave
    flux = (20 + 5 * np.sin(wave / (150 + 20 * seed)) + rng.standard_normal(wave.size)).astype(np.float32)
    ivar = np.full(wave.size, ivar_value, np.float32)
    layouts.write_spec(path, wave, flux, ivar, plate=1000 + seed, mjd=59000, fiberid=fiber)
    return path


@pytest.fixture(scope="module")
def spectra(workdir):
    return [str(write_star(workdir / f"spec-{1000 + i}-59000-{i + 1:04d}.fits", i, fiber=i + 1))
            for i in range(3)]


def test_rows_values_and_uncertainties(spectra, model_path):
    table = predict(spectra, model=model_path, draws=8, seed=3)
    assert len(table) == 3
    assert list(table["path"]) == spectra
    assert (table["result_flags"] & 1 == 0).all()
    assert (table["n_draws"] == 8).all()
    for name in ("teff", "e_teff", "logg", "e_logg", "fe_h", "e_fe_h", "bn_v_r", "e_bn_v_r"):
        assert table[name].dtype == np.float32
        assert np.isfinite(table[name]).all()
    assert (table["e_logg"] > 0).all()
    assert table["result_flags"].dtype == np.int64
    # point values: the model on the noise-free preprocessed spectrum
    model = open_model(model_path)
    spec = read_spectra(spectra[0])[0]
    prep = prepare_spectrum(spec, model.metadata, draws=0, seed=0)
    logg, log_teff, _fe_h, rv = model.run_physical(prep.inputs)[0]
    assert table["logg"][0] == pytest.approx(logg, rel=1e-5)
    assert table["teff"][0] == pytest.approx(10 ** log_teff, rel=1e-5)
    assert table["bn_v_r"][0] == pytest.approx(rv, rel=1e-5, abs=1e-4)
    # e_teff = teff ln(10) std(log teff)
    np.testing.assert_allclose(table["e_teff"], table["teff"] * math.log(10) * table["e_log_teff"],
                               rtol=1e-5)
    assert table["plateid"][0] == 1000 and table["fiberid"][1] == 2 and table["mjd"][2] == 59000
    assert table.meta["NDRAWS"] == 8 and table.meta["SEED"] == 3 and table.meta["PROVIDER"]


def test_draws_independent_of_batch_size_and_order(spectra, model_path):
    a = predict(spectra, model=model_path, draws=6, seed=11, batch_size=1)
    b = predict(spectra[::-1], model=model_path, draws=6, seed=11, batch_size=1000)
    b.reverse()
    for name in ("e_teff", "e_logg", "e_fe_h", "e_bn_v_r", "teff"):
        np.testing.assert_array_equal(a[name], b[name])
    c = predict(spectra, model=model_path, draws=6, seed=12)
    assert not np.array_equal(a["e_logg"], c["e_logg"])


def test_zero_draws_gives_nan_errors(spectra, model_path):
    table = predict(spectra[:1], model=model_path, draws=0)
    assert np.isnan(table["e_teff"][0]) and table["n_draws"][0] == 0
    assert np.isfinite(table["teff"][0])


def test_bad_inputs_become_flagged_rows(workdir, spectra, model_path):
    text = workdir / "notes.fits"
    text.write_text("this is not FITS")
    missing = str(workdir / "missing.fits")
    table = predict([spectra[0], str(text), missing, spectra[1]], model=model_path, draws=2)
    assert len(table) == 4
    assert list(table["result_flags"] & 1) == [0, 1, 1, 0]
    assert "notes.fits" in table["error"][1]
    assert "missing.fits" in table["error"][2]
    assert table["flag_bad"][1] and table["flag_bad"][2]
    assert np.isnan(table["teff"][1])


def test_quality_bits(workdir, model_path):
    wave = layouts.boss_native_wavelength()
    short = wave[wave < 5000]
    low = write_star(workdir / "spec-2000-59000-0001.fits", 5, wave=short)
    noivar = write_star(workdir / "spec-2001-59000-0001.fits", 6, ivar_value=0.0)
    table = predict([str(low), str(noivar)], model=model_path, draws=3)
    assert table["quality_flags"][0] & QualityFlags.LOW_COVERAGE
    assert not table["quality_flags"][1] & QualityFlags.LOW_COVERAGE
    assert table["quality_flags"][1] & QualityFlags.NO_VALID_IVAR
    assert table["quality_flags"][1] & QualityFlags.MANY_BAD_PIXELS
    assert np.isfinite(table["e_logg"][1])  # sigma fell back to 0.1 x median flux


@pytest.mark.parametrize("suffix", [".fits", ".csv", ".ecsv", ".parquet"])
def test_catalogue_round_trip(spectra, model_path, workdir, suffix):
    table = predict(spectra, model=model_path, draws=2, seed=1)
    path = write_catalogue(table, workdir / f"cat{suffix}")
    back = read_catalogue(path)
    np.testing.assert_allclose(back["teff"], table["teff"], rtol=1e-6)
    assert list(back["path"]) == list(table["path"])
    assert list(back["result_flags"]) == list(table["result_flags"])
    if suffix == ".fits":
        header = fits.getheader(path, 1)
        assert header["MODEL"] == "linear-test" and header["NDRAWS"] == 2
        assert len(header["MODELSHA"]) == 64
        assert header["TFORM" + str(table.colnames.index("teff") + 1)] == "E"  # float32
    assert not list(workdir.glob(f".cat{suffix}.*.partial"))


def test_unwritable_output(spectra, model_path, tmp_path):
    table = predict(spectra[:1], model=model_path, draws=0)
    with pytest.raises(OutputError, match=r"output directory .* does not exist"):
        write_catalogue(table, tmp_path / "nope" / "cat.fits")
    with pytest.raises(OutputError, match=r"cat\.txt: unknown output type"):
        write_catalogue(table, tmp_path / "cat.txt")


def test_cli_predict(spectra, model_path, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cat.fits"
    res = runner.invoke(app, ["predict", *spectra, "-m", str(model_path), "-o", str(out),
                              "--draws", "3", "--seed", "5", "--provider", "cpu"])
    assert res.exit_code == 0, res.output
    assert len(read_catalogue(out)) == 3
    assert "3 spectra, 0 failed" in res.output
    res = runner.invoke(app, ["predict", spectra[0], "-m", str(model_path), "--draws", "2"])
    assert res.exit_code == 0
    assert "teff" in res.output and "spec-1000-59000-0001.fits" in res.output


def test_cli_exit_status_and_one_line_errors(spectra, model_path, tmp_path):
    runner = CliRunner()
    missing = tmp_path / "gone.fits"
    res = runner.invoke(app, ["predict", spectra[0], str(missing), "-m", str(model_path),
                              "-o", str(tmp_path / "c.fits")])
    assert res.exit_code == 1
    assert "failed:" in res.output and "gone.fits" in res.output
    assert len(read_catalogue(tmp_path / "c.fits")) == 2
    res = runner.invoke(app, ["predict", spectra[0], "-m", str(tmp_path / "no.onnx")])
    assert res.exit_code == 1
    assert "no.onnx: model file not found" in res.output
    res = runner.invoke(app, ["predict", spectra[0], "--shard", "9/2"])
    assert res.exit_code == 2


def test_progress_bar_on_stderr(spectra, model_path, capsys, monkeypatch):
    # rich draws live bars only on a terminal: make captured stderr count as one
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    table = predict(spectra, model=model_path, draws=2, progress=True)
    assert len(table) == 3
    captured = capsys.readouterr()
    assert captured.out == ""  # the bar never pollutes stdout (tables, pipes)
    assert "BOSS Net" in captured.err and "3/3" in captured.err  # ...but it is drawn


def test_non_stellar_survey_class_is_flagged(workdir, model_path):
    wave = layouts.boss_native_wavelength()
    flux = (20 + np.sin(wave / 90)).astype(np.float32)
    qso = layouts.write_spec(workdir / "spec-2100-59000-0001.fits", wave, flux,
                             np.full(wave.size, 3.0, np.float32), plate=2100, mjd=59000,
                             fiberid=1, cls="QSO")
    table = predict([str(qso)], model=model_path, draws=2)
    assert table["survey_class"][0] == "QSO"
    assert table["quality_flags"][0] & QualityFlags.NOT_A_STAR
    # flag_warn / flag_bad keep their DR19 meaning: our bit 8 changes neither
    from bossnet_onnx.science.flags import BAD_MASK, WARN_MASK
    assert table["flag_bad"][0] == bool(table["result_flags"][0] & BAD_MASK)
    assert table["flag_warn"][0] == bool(table["result_flags"][0] & WARN_MASK)


def test_real_galaxy_and_quasar_flagged_stars_not(shared_data, model_path):
    names = ["sdss-spec-0266-51602-0001.fits", "sdss-spec-0332-52367-0639.fits",
             "sdss-spec-0618-52049-0372.fits"]
    table = predict([str(shared_data / n) for n in names], model=model_path, draws=0)
    assert list(table["survey_class"]) == ["GALAXY", "QSO", "STAR"]
    assert [bool(f & QualityFlags.NOT_A_STAR) for f in table["quality_flags"]] == [True, True, False]
