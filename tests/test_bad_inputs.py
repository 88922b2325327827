"""A corpus of malformed inputs: each gets one clear line naming the file (and HDU/row); in a
batch the good spectra are still predicted and the bad ones are flagged rows."""
from __future__ import annotations

import gzip
import json
import re
import shutil

import layouts
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from onnx_fixtures import write_linear_model
from typer.testing import CliRunner

import bossnet_onnx.model.files as model_files
from bossnet_onnx.cli import app
from bossnet_onnx.errors import InputError, ModelError, ModelMetadataError, UnknownFormatError
from bossnet_onnx.model.session import open_model
from bossnet_onnx.readers import ReadFailure, read_spectra
from bossnet_onnx.run.stream import predict
from bossnet_onnx.science.flags import QualityFlags, ResultFlags

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
    out.write_text("wavelength,ivar\n4000,1\n5000,2\n")  # flux-only is fine, flux-less is not
    return out


def make_csv_garbage(tmp_path):
    out = tmp_path / "garbage.ecsv"
    out.write_text("# %ECSV 1.0\n# ---\n# broken: [\nnot a table\n")
    return out


def make_csv_text_values(tmp_path):
    out = tmp_path / "words.csv"
    out.write_text("wavelength,flux,ivar\n4000,abc,1\n5000,2,1\n")
    return out


def make_complex_flux(tmp_path):
    out = tmp_path / "complex.fits"
    wave = np.linspace(3600, 9000, 500)
    Table({"wavelength": wave, "flux": np.ones(500) * (1 + 1j), "ivar": np.ones(500)}).write(out)
    return out


def make_array_flux_scalar_wavelength(tmp_path):
    out = tmp_path / "shapes.fits"
    Table({"wavelength": np.linspace(3600, 9000, 4000), "flux": np.ones((4000, 2)),
           "ivar": np.ones(4000)}).write(out)
    return out


def image(shape, name="image.fits", **cards):
    def make(tmp_path):
        out = tmp_path / name
        hdu = fits.PrimaryHDU(np.ones(shape, np.float32))
        hdu.header.update(cards)
        hdu.writeto(out)
        return out
    return make


FILE_FAILURES = {
    "missing file": (lambda t: t / "does-not-exist.fits", InputError, "file not found"),
    "empty directory": (lambda t: (t / "emptydir").mkdir() or t / "emptydir", InputError,
                        "is a directory with no spectrum files"),
    "not FITS": (lambda t: written(t / "notes.fits", b"hello"), InputError, "not a FITS file"),
    "empty file": (lambda t: written(t / "empty.fits", b""), InputError,
                   r"file is empty \(0 bytes\)"),
    "truncated FITS": (make_truncated, InputError, "truncated or corrupted"),
    "gzip not FITS": (make_gzip_not_fits, InputError, "gzip file whose content is not FITS"),
    "no table HDU": (make_no_table, UnknownFormatError, r"no known spectrum layout \(tried sdss-spec, "
                     r"mwm, apstar, gaia, lamost-table, lamost-image, image-1d, "
                     r"generic-table\)"),
    "wrong columns": (make_wrong_columns, UnknownFormatError, "no known spectrum layout"),
    "csv missing flux": (make_csv_missing_columns, InputError,
                         "needs wavelength .* and flux columns .*; found wavelength, ivar"),
    "unparsable ecsv": (make_csv_garbage, InputError, "cannot parse as ECSV"),
    "csv with words for numbers": (make_csv_text_values, InputError,
                                   r"cannot read it as generic-table \(could not convert string "
                                   r"to float.*non-numeric values"),
    "complex flux": (make_complex_flux, InputError, r"column flux is complex; expected real"),
    # one failure line for the file, not 4000 failure rows
    "array flux, scalar wavelength": (make_array_flux_scalar_wavelength, InputError,
                                      r"\[HDU 1\]: flux holds arrays, wavelength holds one value "
                                      r"a row; expected both one pixel a row or both one spectrum"),
    # primary images that are no LAMOST spectrum: 1-D, one row, too few pixels, a CCD frame, a cube
    "1-D image": (image((4648,)), UnknownFormatError, "no known spectrum layout"),
    "one-row image": (image((1, 3909)), UnknownFormatError, "no known spectrum layout"),
    "image of 50 pixels": (image((3, 50)), UnknownFormatError, "no known spectrum layout"),
    "CCD-like image": (image((12, 4000)), UnknownFormatError, "no known spectrum layout"),
    "3-D cube": (image((2, 3, 3909)), UnknownFormatError, "no known spectrum layout"),
    "two-row image without a wavelength": (
        image((2, 3909)), InputError,
        r"\[HDU 0\]: no wavelength row and no CRVAL1/CD1_1 \(or COEFF0/COEFF1\) in the header"),
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
                      QualityFlags.NO_VALID_IVAR | QualityFlags.MANY_BAD_PIXELS),
    "negative ivar": (lambda: dict(ivar=np.full(N, -1.0, np.float32)), False,
                      QualityFlags.NO_VALID_IVAR),
    "inf ivar": (lambda: dict(ivar=np.full(N, np.inf, np.float32)), False,
                 QualityFlags.NO_VALID_IVAR),
    "no overlap with 3800-8900 A": (lambda: dict(wave=np.linspace(9000, 10400, N)), True,
                                    "does not overlap the model grid"),
    "partial coverage": (lambda: dict(wave=np.linspace(3600, 5000, N)), False,
                         QualityFlags.LOW_COVERAGE),
    "wavelength not increasing": (lambda: dict(wave=WAVE[::-1].copy()), True,
                                  "not strictly increasing"),
    "huge flux values": (lambda: dict(flux=flux_with(huge=1e30)), False, 0),
    "1e38 flux": (lambda: dict(flux=flux_with(huge=1e38)), False, 0),
    "float32-max flux": (lambda: dict(flux=flux_with(huge=3.4e38)), False, 0),
    "1e38 ivar": (lambda: dict(ivar=np.full(N, 1e38, np.float32)), False, 0),
    "all-zero flux": (lambda: dict(flux=flux_with(zero_all=True)), True,
                      r"flux is all zero \(no signal\); nothing to predict from"),
    "all-negative flux": (lambda: dict(flux=-flux_with()), True,
                          r"flux is nowhere positive \(all values <= 0, min -2\d\.\d+\); "
                          r"nothing to predict from"),
    "one valid pixel": (lambda: dict(flux=np.where(np.arange(N) == 1000, 5.0, np.nan)
                                     .astype(np.float32)), True,
                        r"only one pixel has finite flux and wavelength \(4490\.6 A\)"),
    "wavelength in nm": (lambda: dict(wave=WAVE / 10), True,
                         r"valid pixels span 356\.7-1039\.9 A, which does not overlap the "
                         r"model grid 3800-8900 A"),
    "repeated wavelengths": (lambda: dict(wave=np.repeat(WAVE[::2], 2)), True,
                             r"wavelength is not strictly increasing \(3566\.974 then "
                             r"3566\.974 A at finite pixel 0\)"),
    "NaN ivar": (lambda: dict(ivar=np.full(N, np.nan, np.float32)), False,
                 QualityFlags.NO_VALID_IVAR | QualityFlags.MANY_BAD_PIXELS),
    "inf in a third of the flux": (
        lambda: dict(flux=np.where(np.arange(N) % 3 == 0, np.inf, flux_with()).astype(np.float32)),
        False, QualityFlags.MANY_BAD_PIXELS),
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
        assert int(row["quality_flags"]) & int(expect) == int(expect)
        assert int(row["result_flags"]) & ~0b11111 == 0  # only DR19's bits in result_flags
        assert row["error"] == ""
        for name in ("teff", "e_teff", "logg", "e_logg", "fe_h", "e_fe_h", "bn_v_r", "e_bn_v_r"):
            assert np.isfinite(row[name]), name


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
    (failure,) = read_spectra(path)  # one row naming the file, never nothing
    assert isinstance(failure, ReadFailure) and "holds no" in failure.error


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


def test_mwm_visit_one_good_one_broken_visit_predicted(tmp_path, model):
    """The good visit is a prediction, the broken one a failure row naming HDU and row."""
    good = dict(zip(("flux", "ivar"), good_arrays(5)), mjd=60010)
    broken = dict(flux=np.full(N, np.nan, np.float32), ivar=np.ones(N, np.float32), mjd=60011)
    lco_good = dict(zip(("flux", "ivar"), good_arrays(6)), mjd=60012)
    path = layouts.write_mwm(tmp_path / "mwmVisit-0.6.0-4.fits", [good, broken], [lco_good],
                             kind="visit", sdss_id=4, catalogid=44)
    table = predict([str(path)], model=model, draws=2)
    assert [(r["hdu"], r["row"], r["mjd"], r["result_flags"] & 1) for r in table] == \
        [(1, 0, 60010, 0), (1, 1, 60011, 1), (2, 0, 60012, 0)]
    assert table["error"][1] == (f"{path}[HDU 1, row 1]: no finite flux pixels (all NaN/inf); "
                                 f"nothing to predict from")
    assert table["error"][0] == table["error"][2] == ""
    assert np.isfinite(table["teff"][[0, 2]]).all() and np.isnan(table["teff"][1])
    assert (table["sdss_id"] == 4).all()  # the failure row keeps its identifiers


def test_list_file_naming_missing_files(tmp_path, model):
    real = spec(tmp_path / "real.fits")
    listing = tmp_path / "list.txt"
    listing.write_text("# two of three are gone\nreal.fits\n\nmissing-1.fits\n"
                       "sub/missing-2.fits.gz\n")
    table = predict([f"@{listing}"], model=model, draws=0)
    assert list(table["path"]) == [str(real), str(tmp_path / "missing-1.fits"),
                                     str(tmp_path / "sub" / "missing-2.fits.gz")]
    assert list(table["result_flags"] & 1) == [0, 1, 1]
    for row in table[1:]:
        assert re.fullmatch(rf"{re.escape(row['path'])}: file not found.*", row["error"])
        assert "\n" not in row["error"]


def test_missing_list_file_is_a_usage_error(tmp_path, model):
    result = CliRunner().invoke(app, ["predict", f"@{tmp_path / 'nolist.txt'}", "-m", str(model),
                                      "--draws", "0"])
    assert result.exit_code != 0
    assert "nolist.txt: list file not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unexpected_exception_is_one_row_naming_the_file(tmp_path, model, monkeypatch):
    """A bug in a reader or in preprocessing (not bad input) still loses only its own rows."""
    import bossnet_onnx.run.rows as rows
    from bossnet_onnx.readers import sdss_spec

    good = spec(tmp_path / "good.fits")
    broken = spec(tmp_path / "broken.fits")

    real_read = sdss_spec.read

    def flaky_read(path, hdul=None):
        if path.endswith("broken.fits"):
            raise RuntimeError("boom\nsecond line")
        return real_read(path, hdul)

    monkeypatch.setattr(sdss_spec, "read", flaky_read)
    table = predict([str(good), str(broken)], model=model, draws=0)
    assert list(table["result_flags"] & 1) == [0, 1]
    assert table["error"][1] == f"{broken}: unexpected RuntimeError: boom"

    real_prepare = rows.prepare_spectrum

    def failing_prepare(spectrum, *args, **kwargs):
        if spectrum.source.endswith("good.fits"):
            raise ZeroDivisionError("division by zero")
        return real_prepare(spectrum, *args, **kwargs)

    monkeypatch.setattr(sdss_spec, "read", real_read)
    monkeypatch.setattr(rows, "prepare_spectrum", failing_prepare)
    table = predict([str(good), str(broken)], model=model, draws=0)
    assert list(table["result_flags"] & 1) == [1, 0]
    assert table["error"][0] == f"{good}[HDU 1]: unexpected ZeroDivisionError: division by zero"


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
    # and the CLI run with the default model stops at once, with that one line
    good = spec(tmp_path / "good.fits")
    result = CliRunner().invoke(app, ["predict", str(good), "-o", str(tmp_path / "c.fits")])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert str(folder / real.name) in line and "does not match the model card" in line
    assert not (tmp_path / "c.fits").exists()


# ----------------------------------------------------------------------- a mixed batch
def test_batch_keeps_good_spectra_and_flags_each_bad_one(tmp_path, model):
    """Every corpus file at once, between two good spectra, through the CLI: the good and the
    merely flagged spectra are predicted, each failure is one row and one stderr line, exit 1."""
    good = [spec(tmp_path / f"good{i}.fits", *good_arrays(10 + i)) for i in range(2)]
    failing, flagged = {}, {}
    for k, case in enumerate(sorted(FILE_FAILURES)):
        folder = tmp_path / f"file{k}"
        folder.mkdir()
        failing[str(FILE_FAILURES[case][0](folder))] = FILE_FAILURES[case][2]
    for k, case in enumerate(sorted(SPECTRUM_CASES)):
        build, fails, expect = SPECTRUM_CASES[case]
        path = str(spec(tmp_path / f"spectrum{k}.fits", **build()))
        (failing if fails else flagged)[path] = expect
    visit_good = dict(zip(("flux", "ivar"), good_arrays(3)))
    visit_bad = dict(flux=np.full(N, np.nan, np.float32), ivar=np.zeros(N, np.float32))
    mixed = layouts.write_mwm(tmp_path / "mwmVisit-0.6.0-3.fits", [visit_good, visit_bad],
                              kind="visit")
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join([str(good[0]), *failing, *flagged, str(mixed), str(good[1])]))
    out = tmp_path / "cat.fits"
    result = CliRunner().invoke(app, ["predict", f"@{listing}", "-m", str(model), "-o", str(out),
                                      "--draws", "2"])
    assert result.exit_code == 1, result.output
    n_failed = len(failing) + 1  # and the broken visit
    assert len(failing) + len(flagged) >= 25  # the whole corpus of bad files
    failed_lines = [ln for ln in result.stderr.splitlines() if ln.startswith("failed: ")]
    assert len(failed_lines) == n_failed
    for path, message in failing.items():
        (line,) = [ln for ln in failed_lines if ln.startswith(f"failed: {path}")]
        assert re.search(message, line), line
    assert any(ln.startswith(f"failed: {mixed}[HDU 1, row 1]: no finite flux") for ln in
               failed_lines)
    n_rows = 2 + len(failing) + len(flagged) + 2
    assert f"{n_rows} spectra, {n_failed} failed" in result.stderr

    from bossnet_onnx.outputs.catalogue import read_catalogue

    table = read_catalogue(out)
    assert len(table) == n_rows
    for name in ("teff", "e_teff"):  # astropy reads NaN in FITS float columns back as masked
        table[name] = np.ma.filled(table[name].astype(np.float64), np.nan)
    table["error"] = np.ma.filled(table["error"], "")  # and empty strings as masked
    by_source = {}
    for row in table:
        by_source.setdefault(str(row["path"]), []).append(row)
    for path in failing:
        (row,) = by_source[path]
        assert row["result_flags"] & 1 and row["error"] and np.isnan(row["teff"]), path
    for path, bits in flagged.items():
        (row,) = by_source[path]
        assert row["result_flags"] & 1 == 0 and row["error"] == "", (path, row["error"])
        assert int(row["quality_flags"]) & int(bits) == int(bits) and np.isfinite(row["teff"])
    for path in map(str, good):
        (row,) = by_source[path]
        # the linear test model's labels may trip DR19 bits 1-4; no failure, no quality bit
        assert int(row["result_flags"]) & ~0b11110 == 0 and np.isfinite(row["e_teff"])
    assert [int(r["result_flags"]) & 1 for r in by_source[str(mixed)]] == [0, 1]


@pytest.mark.parametrize("case", ["wrong shape", "no metadata", "corrupted", "missing",
                                  "not ONNX"])
def test_cli_with_a_bad_model_says_so_in_one_line(tmp_path, case):
    expect = {"wrong shape": "is not a BOSS Net model", "no metadata": "'bossnet.grid' is missing",
              "corrupted": "not a loadable ONNX model", "missing": "model file not found",
              "not ONNX": "not a loadable ONNX model"}[case]
    if case == "missing":
        path = tmp_path / "m.onnx"
    elif case == "not ONNX":
        path = tmp_path / "m.onnx"
        path.write_text("ir_version: 8\n")
    elif case == "wrong shape":
        path = write_linear_model(tmp_path / "m.onnx", n_pixels=4648)
    elif case == "no metadata":
        path = write_linear_model(tmp_path / "m.onnx", drop_keys=("bossnet.grid",))
    else:
        path = write_linear_model(tmp_path / "m.onnx")
        path.write_bytes(path.read_bytes()[:300])
    good = spec(tmp_path / "good.fits")
    out = tmp_path / "cat.fits"
    result = CliRunner().invoke(app, ["predict", str(good), "-m", str(path), "-o", str(out)])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert f"{path}:" in line and expect in line, line
    assert not out.exists()  # no catalogue from a model that was refused
