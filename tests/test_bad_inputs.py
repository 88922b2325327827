"""A corpus of malformed inputs: each gets one clear line naming the file (and HDU/row); in a
batch the good spectra are still predicted and the bad ones are flagged rows."""
from __future__ import annotations

import gzip
import json
import re
import shutil

import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

import bossnet_onnx.model_files as model_files
from bossnet_onnx.cli import app
from bossnet_onnx.errors import InputError, ModelError, ModelMetadataError, UnknownFormatError
from bossnet_onnx.flags import ResultFlags
from bossnet_onnx.pipeline import predict
from bossnet_onnx.readers import read_spectra
from bossnet_onnx.session import open_model
from bossnet_onnx.synthetic import layouts

from onnx_fixtures import write_linear_model

WAVE = layouts.boss_native_wavelength()
N = layouts.BOSS_NPIX


def good_arrays(seed=0):
    rng = np.random.default_rng(seed)
    return (20 + rng.standard_normal(N)).astype(np.float32), np.full(N, 2.0, np.float32)


def spec(path, flux=None, ivar=None, wave=WAVE):
    f, i = good_arrays()
    return layouts.write_spec(path, wave, f if flux is None else flux, i if ivar is None else ivar,
                              plate=1, mjd=2, fiberid=3)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_linear_model(tmp_path_factory.mktemp("model") / "m.onnx", seed=1, scale=2.0)


# ------------------------------------------------------------------ file-level failures
def written(path, data: bytes):
    path.write_bytes(data)
    return path


def make_truncated(tmp_path):
    path = spec(tmp_path / "whole.fits")
    data = path.read_bytes()
    out = tmp_path / "truncated.fits"
    out.write_bytes(data[: len(data) // 2])
    return out


def make_gzip_not_fits(tmp_path):
    out = tmp_path / "text.fits.gz"
    with gzip.open(out, "wb") as fh:
        fh.write(b"just some text, not FITS at all\n" * 20)
    return out


def make_no_table(tmp_path):
    out = tmp_path / "image-only.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((3, 3)))]).writeto(out)
    return out


def make_wrong_columns(tmp_path):
    out = tmp_path / "wrong-columns.fits"
    cols = [fits.Column("x", "E", array=np.ones(5)), fits.Column("y", "E", array=np.ones(5))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(out)
    return out


def make_csv_missing_columns(tmp_path):
    out = tmp_path / "partial.csv"
    out.write_text("wavelength,flux\n4000,1\n5000,2\n")
    return out


def make_csv_garbage(tmp_path):
    out = tmp_path / "garbage.ecsv"
    out.write_text("# %ECSV 1.0\n# ---\n# broken: [\nnot a table\n")
    return out


FILE_FAILURES = {
    "missing file": (lambda t: t / "does-not-exist.fits", InputError, "file not found"),
    "empty directory": (lambda t: (t / "emptydir").mkdir() or t / "emptydir", InputError,
                        "is a directory with no spectrum files"),
    "not FITS": (lambda t: written(t / "notes.fits", b"hello"), InputError, "not a FITS file"),
    "empty file": (lambda t: written(t / "empty.fits", b""), InputError,
                   r"file is empty \(0 bytes\)"),
    "truncated FITS": (make_truncated, InputError, "truncated or corrupted"),
    "gzip not FITS": (make_gzip_not_fits, InputError, "gzip file whose content is not FITS"),
    "no table HDU": (make_no_table, UnknownFormatError, r"no known spectrum layout \(tried mwm, "
                     r"sdss-spec, lamost-table, lamost-image, generic-table\)"),
    "wrong columns": (make_wrong_columns, UnknownFormatError, "no known spectrum layout"),
    "csv missing ivar": (make_csv_missing_columns, InputError,
                         "needs wavelength .* flux and ivar or error columns; found wavelength, flux"),
    "unparsable ecsv": (make_csv_garbage, InputError, "cannot parse as ECSV"),
}


@pytest.mark.parametrize("case", sorted(FILE_FAILURES))
def test_file_level_failures(tmp_path, case):
    make, error, message = FILE_FAILURES[case]
    path = make(tmp_path)
    with pytest.raises(error, match=message) as info:
        read_spectra(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------- spectrum-level outcomes
def flux_with(**kw):
    f, _ = good_arrays()
    for k, v in kw.items():
        if k == "nan_all":
            f[:] = np.nan
        elif k == "zero_all":
            f[:] = 0.0
        elif k == "huge":
            f[:] = v
    return f


SPECTRUM_CASES = {
    # name: (writer kwargs builder, expect failure?, error regex or flag bits that must be set)
    "all-NaN flux": (lambda: dict(flux=flux_with(nan_all=True)), True, "no finite flux"),
    "all-zero ivar": (lambda: dict(ivar=np.zeros(N, np.float32)), False,
                      ResultFlags.NO_VALID_IVAR | ResultFlags.MANY_BAD_PIXELS),
    "negative ivar": (lambda: dict(ivar=np.full(N, -1.0, np.float32)), False,
                      ResultFlags.NO_VALID_IVAR),
    "inf ivar": (lambda: dict(ivar=np.full(N, np.inf, np.float32)), False,
                 ResultFlags.NO_VALID_IVAR),
    "no overlap with 3800-8900 A": (lambda: dict(wave=np.linspace(9000, 10400, N)), True,
                                    "does not overlap the model grid"),
    "partial coverage": (lambda: dict(wave=np.linspace(3600, 5000, N)), False,
                         ResultFlags.LOW_COVERAGE),
    "wavelength not increasing": (lambda: dict(wave=WAVE[::-1].copy()), True,
                                  "not strictly increasing"),
    "huge flux values": (lambda: dict(flux=flux_with(huge=1e30)), False, 0),
    "float32-max flux": (lambda: dict(flux=flux_with(huge=3e38)), False, 0),
    "all-zero flux": (lambda: dict(flux=flux_with(zero_all=True)), False, 0),
}


@pytest.mark.parametrize("case", sorted(SPECTRUM_CASES))
def test_spectrum_level_outcomes(tmp_path, model, case):
    build, fails, expect = SPECTRUM_CASES[case]
    path = spec(tmp_path / "s.fits", **build())
    table = predict([str(path)], model=model, draws=3, seed=0)
    row = table[0]
    if fails:
        assert row["result_flags"] & ResultFlags.RUNTIME_EXCEPTION
        assert re.search(expect, row["error"]), row["error"]
        assert "s.fits[HDU 1]" in row["error"]
        assert np.isnan(row["teff"])
    else:
        assert not row["result_flags"] & ResultFlags.RUNTIME_EXCEPTION, row["error"]
        assert int(row["result_flags"]) & int(expect) == int(expect)
        assert np.isfinite(row["teff"]) and np.isfinite(row["e_logg"])


def test_nan_wavelength_pixels_are_dropped(tmp_path, model):
    wave = WAVE.copy()
    wave[100:110] = np.nan
    path = layouts.write_generic_table(tmp_path / "nanwave.fits", wave, *good_arrays())
    table = predict([str(path)], model=model, draws=2)
    assert table["result_flags"][0] & 1 == 0 and np.isfinite(table["teff"][0])


def test_length_mismatch_in_generic_table(tmp_path):
    path = tmp_path / "mismatch.fits"
    cols = [fits.Column("wavelength", "5E", array=np.ones((1, 5))),
            fits.Column("flux", "4E", array=np.ones((1, 4))),
            fits.Column("ivar", "5E", array=np.ones((1, 5)))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    (failure,) = read_spectra(path)
    # array cells named FLUX/IVAR/WAVELENGTH: the LAMOST table reader's case
    assert re.search(r"mismatch\.fits\[HDU 1, row 0\]: FLUX, IVAR and WAVELENGTH differ in "
                     r"length \(4, 5, 5\)", failure.error)
    assert (failure.hdu, failure.row) == (1, 0)


def test_mwm_visit_with_empty_hdus_only(tmp_path):
    path = layouts.write_mwm(tmp_path / "mwmVisit-0.6.0-1.fits", [], [], kind="visit")
    assert read_spectra(path) == []


def test_mwm_visit_length_mismatch_row(tmp_path):
    flux, ivar = good_arrays()
    path = layouts.write_mwm(tmp_path / "mwmVisit-0.6.0-2.fits",
                             [dict(flux=flux, ivar=ivar)], kind="visit")
    with fits.open(path, mode="update") as hdul:
        hdul[1].header["NPIXELS"] = 4000
    (failure,) = read_spectra(path)
    assert re.search(r"\[HDU 1\]: header NPIXELS=4000 but the flux arrays have 4648 pixels",
                     failure.error)
    assert (failure.hdu, failure.row) == (1, 0)


# ------------------------------------------------------------------------ model failures
def test_model_not_bossnet_shape(tmp_path):
    with pytest.raises(ModelError, match=r"w\.onnx: is not a BOSS Net model: input 'flux' has "
                                         r"shape \['batch', 4648\]"):
        open_model(write_linear_model(tmp_path / "w.onnx", n_pixels=4648))


def test_model_without_metadata(tmp_path):
    path = write_linear_model(tmp_path / "nometa.onnx", drop_keys=("bossnet.format_version",))
    with pytest.raises(ModelMetadataError, match=r"nometa\.onnx: metadata key "
                                                 r"'bossnet.format_version' is missing"):
        open_model(path)


def test_corrupted_model(tmp_path):
    path = write_linear_model(tmp_path / "broken.onnx")
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(data[:200]))
    with pytest.raises(ModelError, match=r"broken\.onnx: not a loadable ONNX model"):
        open_model(path)


def test_bundled_model_with_wrong_sha256_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    real = model_files.default_model_path()
    shutil.copy(real, folder / real.name)
    card = json.loads((real.parent / "default.json").read_text())
    (folder / "default.json").write_text(json.dumps(card))
    monkeypatch.setattr(model_files, "_folder", lambda: folder)
    assert model_files.default_model_path() == folder / real.name  # intact copy accepted
    with open(folder / real.name, "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(ModelError, match=r"sha256 .* does not match the model card "
                                         r"\(default\.json: .*reinstall bossnet-onnx"):
        model_files.default_model_path()


# ----------------------------------------------------------------------- a mixed batch
def test_batch_keeps_good_spectra_and_flags_each_bad_one(tmp_path, model):
    good = [spec(tmp_path / f"good{i}.fits") for i in range(2)]
    bad = [FILE_FAILURES[c][0](tmp_path) for c in ("missing file", "not FITS", "truncated FITS",
                                                   "gzip not FITS", "no table HDU")]
    bad.append(spec(tmp_path / "nan.fits", flux=flux_with(nan_all=True)))
    visit_good = dict(zip(("flux", "ivar"), good_arrays(3)))
    visit_bad = dict(flux=np.full(N, np.nan, np.float32), ivar=np.zeros(N, np.float32))
    mixed = layouts.write_mwm(tmp_path / "mwmVisit-0.6.0-3.fits", [visit_good, visit_bad],
                              kind="visit")
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(p) for p in [good[0], *bad, mixed, good[1]]) + "\n")
    out = tmp_path / "cat.fits"
    result = CliRunner().invoke(app, ["predict", f"@{listing}", "-m", str(model), "-o", str(out),
                                      "--draws", "2"])
    assert result.exit_code == 1
    failed_lines = [ln for ln in result.stderr.splitlines() if ln.startswith("failed: ")]
    assert len(failed_lines) == 7  # 6 bad files + the broken visit
    assert any("mwmVisit-0.6.0-3.fits[HDU 1, row 1]" in ln for ln in failed_lines)
    from bossnet_onnx.catalogue import read_catalogue

    table = read_catalogue(out)
    assert len(table) == 10
    ok = table[(table["result_flags"] & 1) == 0]
    assert sorted(str(s).split("/")[-1] for s in ok["source"]) == \
        ["good0.fits", "good1.fits", "mwmVisit-0.6.0-3.fits"]
    assert np.isfinite(ok["teff"]).all()
    assert "9 spectra" not in result.stderr and "10 spectra, 7 failed" in result.stderr
