"""DR19 catalogue semantics: flags bit for bit, the astra recipe, frames, join keys, seeds, units.

The astra recipe is checked against `dr19_transcription` below: SDSS DR19's production code
(sdss/astra 0.6.0, python/astra/pipelines/bossnet/__init__.py: the per-spectrum part of
`bossnet()`, `reverse_inverse_error`, `make_prediction`'s preprocessing, `interpolate_flux`,
`interpolate_flux_err`, `log_scale_flux`, `create_uncertainties_batch`) transcribed statement
by statement, in torch as DR19 runs it. Its one change: the N(0, 1) samples of
`create_uncertainties_batch` are passed in instead of drawn from torch.randn, so that both
sides see the same noise.
"""
from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
from astropy.io import fits
from onnx_fixtures import linear_metadata, write_linear_model

from bossnet_onnx.model.session import open_model
from bossnet_onnx.outputs.catalogue import build_table, read_catalogue, write_catalogue
from bossnet_onnx.readers import read_spectra
from bossnet_onnx.run.rows import compose_velocities, prepare_spectrum
from bossnet_onnx.run.stream import predict
from bossnet_onnx.science.columns import ALL_COLUMNS, markdown_table
from bossnet_onnx.science.flags import (
    QualityFlags,
    ResultFlags,
    flag_bad,
    flag_warn,
    parameter_flags,
)
from bossnet_onnx.science.uncertainty import spectrum_rng
from bossnet_onnx.science.units import SPEED_OF_LIGHT_KMS
from bossnet_onnx.spectrum import Spectrum

layouts = __import__("layouts")

F32 = np.float32


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("dr19")


@pytest.fixture(scope="module")
def model_path(workdir):
    return write_linear_model(workdir / "linear.onnx", seed=7, scale=2.0)


@pytest.fixture(scope="module")
def torch_grid_model(workdir):
    """A model whose grid is torch.linspace's float32 grid, as every real export stores."""
    torch = pytest.importorskip("torch")
    grid = torch.linspace(3800, 8900, steps=3900).numpy()
    return write_linear_model(workdir / "linear-torch-grid.onnx", seed=7, scale=2.0,
                              metadata=linear_metadata(grid=grid))


# ------------------------------------------------------------------------------ flags
def _below(x: float) -> float:
    return float(np.nextafter(F32(x), F32(-np.inf)))


def _above(x: float) -> float:
    return float(np.nextafter(F32(x), F32(np.inf)))


@pytest.mark.parametrize(("teff", "logg", "fe_h", "bits"), [
    # bit 1: teff outside 1700..100000 (bounds themselves inside)
    (1700.0, 2.0, 0.0, 0b01000), (_below(1700), 2.0, 0.0, 0b01010),
    (100_000.0, 4.0, 0.0, 0), (_above(100_000), 4.0, 0.0, 0b00010),
    # bit 2: logg outside -1..10; logg > 5 also sets bit 3
    (5000.0, -1.0, 0.0, 0), (5000.0, _below(-1), 0.0, 0b00100),
    (5000.0, 10.0, 0.0, 0b01000), (5000.0, _above(10), 0.0, 0b01100),
    # bit 3: teff < 3200 or logg > 5 or fe_h outside -4..2
    (3200.0, 4.0, 0.0, 0b10000), (_below(3200), 4.0, 0.0, 0b11000),
    (5000.0, 5.0, 0.0, 0), (5000.0, _above(5), 0.0, 0b01000),
    (5000.0, 4.0, -4.0, 0), (5000.0, 4.0, _below(-4), 0b01000),
    (5000.0, 4.0, 2.0, 0), (5000.0, 4.0, _above(2), 0b01000),
    # bit 4: teff < 3900 and 3 < logg < 6
    (3900.0, 4.0, 0.0, 0), (_below(3900), 4.0, 0.0, 0b10000),
    (3500.0, 3.0, 0.0, 0), (3500.0, _above(3), 0.0, 0b10000),
    (3500.0, 6.0, 0.0, 0b01000), (3500.0, _below(6), 0.0, 0b11000),
])
def test_result_flag_thresholds_on_float32(teff, logg, fe_h, bits):
    assert int(parameter_flags(teff, logg, fe_h)) == bits


def test_labels_are_compared_as_float32_like_dr19_real_columns():
    # 3199.9999 in float64 is below 3200, but DR19 stores REAL: float32(3199.9999) == 3200.0
    assert F32(3199.9999) == F32(3200.0)
    assert int(parameter_flags(3199.9999, 4.0, 0.0)) & ResultFlags.UNRELIABLE_FE_H == 0
    assert int(parameter_flags(1699.99995, 4.0, 0.0)) & ResultFlags.UNRELIABLE_TEFF == 0
    assert int(parameter_flags(3199.99, 4.0, 0.0)) & ResultFlags.UNRELIABLE_FE_H


def test_nan_labels_get_postgresql_bits():
    # PostgreSQL orders NaN above every number: NaN > x true, NaN < x false
    nan = float("nan")
    assert int(parameter_flags(nan, nan, nan)) == 0b01110
    assert int(parameter_flags(nan, 4.0, 0.0)) == 0b00010
    assert int(parameter_flags(5000.0, nan, 0.0)) == 0b01100
    assert int(parameter_flags(5000.0, 4.0, nan)) == 0b01000
    assert int(parameter_flags(3500.0, nan, 0.0)) == 0b01100  # 6 > NaN is false: no bit 4


def test_warn_and_bad_are_dr19s():
    flags = np.arange(32)
    assert list(np.flatnonzero(flag_warn(flags) != ((flags & 0b11000) != 0))) == []
    assert list(np.flatnonzero(flag_bad(flags) != ((flags & 0b01111) != 0))) == []
    assert max(int(f) for f in ResultFlags) == 16  # nothing of ours in result_flags
    assert [f.name for f in QualityFlags] == ["LOW_COVERAGE", "NO_VALID_IVAR",
                                               "MANY_BAD_PIXELS", "NOT_A_STAR", "LOW_SNR",
                                               "XP_DIAGONAL_COVARIANCE"]  # Gaia XP Net's


# ------------------------------------------------------------------- DR19 transcription
def dr19_transcription(flux_in, ivar_in, wavelength_in, normal_sample):
    """sdss/astra 0.6.0 bossnet, line for line (torch), noise passed in: model inputs of the
    noise-free spectrum (1 x 3900) and of the Monte-Carlo copies (draws x 3900)."""
    torch = pytest.importorskip("torch")

    def reverse_inverse_error(inverse_error, default_error):
        with np.errstate(all="ignore"):
            inverse_error = np.nan_to_num(inverse_error)
            error = np.divide(1, inverse_error) ** 0.5
            if np.isinf(error).all():
                error = np.ones(*error.shape) * default_error
                error = error.astype(inverse_error.dtype)
            median_error = np.nanmedian(error[error != np.inf])
            error = np.clip(error, a_min=None, a_max=5 * median_error)
            error = np.where(np.isnan(error), 5 * median_error, error)
        return error

    linear_grid = torch.linspace(3800, 8900, steps=3900)

    def interpolate_flux(flux, wavelen):
        interpolated_flux = torch.zeros(1, 1, len(linear_grid))
        _wavelen = wavelen[~torch.isnan(flux)]
        _flux = flux[~torch.isnan(flux)]
        _flux = np.interp(linear_grid, _wavelen, _flux)
        _flux = torch.from_numpy(_flux)
        interpolated_flux[0] = _flux
        return interpolated_flux

    def interpolate_flux_err(flux_batch, wavelen):
        interpolated_flux = torch.zeros(*flux_batch.shape[:-1], 1, len(linear_grid))
        for i, flux in enumerate(flux_batch):
            _wavelen = wavelen[~torch.isnan(flux)]
            _flux = flux[~torch.isnan(flux)]
            _flux = np.interp(linear_grid, _wavelen, _flux)
            _flux = torch.from_numpy(_flux)
            interpolated_flux[i] = _flux
        return interpolated_flux

    def log_scale_flux(flux):
        s = 0.000001
        flux = torch.clip(flux, min=s, max=None)
        flux = torch.log(flux)
        perc_95 = torch.quantile(flux, 0.95)
        flux = torch.clip(flux, min=None, max=perc_95 + 1)
        return flux

    def create_uncertainties_batch(flux, error, num_uncertainty_draws):
        normal_sample = torch.from_numpy(np.asarray(noise, dtype=np.float32))  # not torch.randn
        return flux + error * normal_sample

    noise = normal_sample
    # bossnet(): per spectrum
    flux = np.nan_to_num(flux_in, nan=0.0).astype(np.float32)
    e_flux = reverse_inverse_error(ivar_in.astype(np.float32),
                                   np.median(flux) * 0.1).astype(np.float32)
    wavelen = wavelength_in.astype(np.float32)
    flux = torch.from_numpy(flux).float()
    e_flux = torch.from_numpy(e_flux).float()
    wavelen = torch.from_numpy(wavelen).float()
    # make_prediction(): preprocessing only
    interp_spectra = interpolate_flux(flux, wavelen)
    normalized_spectra = log_scale_flux(interp_spectra).float()
    uncertainties_batch = create_uncertainties_batch(flux, e_flux, len(noise))
    interp_uncertainties_batch = interpolate_flux_err(uncertainties_batch, wavelen)
    normalized_uncertainties_batch = log_scale_flux(interp_uncertainties_batch).float()
    return (normalized_spectra.reshape(1, -1).numpy(),
            normalized_uncertainties_batch.reshape(len(noise), -1).numpy())


def _exercising_spectra():
    """mwm-grid spectra with every DR19 difference: NaN blocks inside 3800-8900 A, strong
    emission lines, all-zero flux (with and without usable ivar)."""
    wave = layouts.boss_native_wavelength()
    rng = np.random.default_rng(12)
    cont = (30 + 6 * np.sin(wave / 210)).astype(np.float64)
    ivar = np.full(wave.size, 0.25, np.float32)
    nan_blocks = cont + rng.standard_normal(wave.size) * 2
    for lo, hi in ((4500, 4560), (6000, 6012), (7600, 7900)):
        nan_blocks[(wave > lo) & (wave < hi)] = np.nan
    emission = cont + rng.standard_normal(wave.size) * 2
    for centre, height in ((6564.6, 900.0), (4862.7, 400.0), (5008.2, 600.0)):
        emission += height * np.exp(-0.5 * ((wave - centre) / 2.0) ** 2)
    cases = {
        "NaN blocks": (nan_blocks, ivar),
        "emission lines": (emission, ivar),
        "all-zero flux": (np.zeros(wave.size), ivar),
        "all-zero flux, no ivar": (np.zeros(wave.size), np.zeros(wave.size, np.float32)),
    }
    return wave, {k: (f.astype(np.float32), i) for k, (f, i) in cases.items()}


@pytest.mark.parametrize("case", ["NaN blocks", "emission lines", "all-zero flux",
                                  "all-zero flux, no ivar"])
def test_astra_recipe_matches_the_dr19_transcription(torch_grid_model, case):
    model = open_model(torch_grid_model)
    wave, cases = _exercising_spectra()
    flux, ivar = cases[case]
    spec = Spectrum(wave, flux, ivar, source="x.fits", format="mwm", hdu=1, row=0)
    draws, seed = 20, 3
    ours = prepare_spectrum(spec, model.metadata, draws, seed, recipe="astra").inputs
    noise = spectrum_rng(seed, spec.identity).standard_normal((draws, wave.size),
                                                              dtype=np.float32)
    point, copies = dr19_transcription(flux, ivar, wave, noise)
    # float32 interpolation and quantile: measured at most 4.8e-7 (1-2 ulps of |x| < 14)
    np.testing.assert_allclose(ours[0], point[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours[1:], copies, rtol=0, atol=1e-6)


def test_the_two_recipes_differ_where_dr19_differs(model_path):
    """The measured sizes quoted in the README (preprocess docstring) come from here."""
    model = open_model(model_path)
    wave, cases = _exercising_spectra()
    flux, ivar = cases["NaN blocks"]
    spec = Spectrum(wave, flux, ivar, source="x.fits", format="mwm", hdu=1, row=0)
    ref = prepare_spectrum(spec, model.metadata, 0, 0).inputs[0]
    astra = prepare_spectrum(spec, model.metadata, 0, 0, recipe="astra").inputs[0]
    # NaN pixels interpolated as zeros: the log floor ln(1e-6) = -13.8 instead of ~ln(30) = 3.4
    assert float(np.max(ref - astra)) == pytest.approx(3.4 + 13.8, abs=0.3)
    grid = np.asarray(model.metadata.grid, np.float64)
    inside = (grid > 4505) & (grid < 4555)
    assert np.all(astra[inside] == np.float32(np.log(np.float32(1e-6))))
    flux, ivar = cases["emission lines"]
    spec = Spectrum(wave, flux, ivar, source="x.fits", format="mwm", hdu=1, row=0)
    ref = prepare_spectrum(spec, model.metadata, 20, 0).inputs
    astra = prepare_spectrum(spec, model.metadata, 20, 0, recipe="astra").inputs
    np.testing.assert_array_equal(ref[0], astra[0])  # no NaN: the noise-free row is the same
    pooled = float(np.max(np.abs(ref[1:] - astra[1:])))
    assert 0 < pooled < 0.05  # pooled vs per-copy 95th percentile


def test_astra_recipe_predicts_all_zero_flux_reference_fails_it(workdir, model_path):
    wave = layouts.boss_native_wavelength()
    path = layouts.write_spec(workdir / "spec-0001-59000-0001.fits", wave,
                              np.zeros(wave.size, np.float32), np.ones(wave.size, np.float32),
                              plate=1, mjd=59000, fiberid=1)
    ref = predict([str(path)], model=model_path, draws=3)
    astra = predict([str(path)], model=model_path, draws=3, recipe="astra")
    assert ref["result_flags"][0] & ResultFlags.RUNTIME_EXCEPTION
    assert not astra["result_flags"][0] & ResultFlags.RUNTIME_EXCEPTION
    assert np.isfinite(astra["teff"][0]) and astra.meta["RECIPE"] == "astra"
    with pytest.raises(ValueError, match="recipe must be one of reference, astra"):
        predict([str(path)], model=model_path, recipe="dr19")


# ------------------------------------------------------------ frames and composed RV
def test_relativistic_composition():
    c = SPEED_OF_LIGHT_KMS
    assert compose_velocities(0.5 * c, 0.5 * c)[0] == pytest.approx(0.8 * c)
    v, e = compose_velocities(-61.0, -0.3, 0.3, 2.0)
    assert v == pytest.approx(-61.3, abs=1e-6) and v != -61.3  # the correction is there
    assert e == pytest.approx(math.hypot(0.3, 2.0), rel=1e-6)
    assert compose_velocities(10.0, 1.0, float("nan"), 2.0)[1] == pytest.approx(2.0, rel=1e-6)


def _mwm_files(workdir):
    wave = layouts.boss_native_wavelength()
    flux = (25 + 4 * np.sin(wave / 300)).astype(np.float32)
    ivar = np.full(wave.size, 1.0, np.float32)
    star = layouts.write_mwm(
        workdir / "mwmStar-0.6.0-55.fits",
        [dict(flux=flux, ivar=ivar, spectrum_pk_id=123, v_rad=-61.0, e_v_rad=0.3,
              min_mjd=59800, max_mjd=60100, snr=44.0)],
        [], kind="star", sdss_id=55, catalogid=66, ra=10.5, dec=-20.25, gaia_v_rad=999.0,
        overwrite=True)
    visit = layouts.write_mwm(
        workdir / "mwmVisit-0.6.0-55.fits",
        [dict(flux=flux, ivar=ivar, spectrum_pk_id=201, drp_spectrum_pk_id=301, mjd=59850,
              fieldid=101234, plateid=0, in_stack=True, xcsao_v_rad=12.0,
              xcsao_e_v_rad=1.0, snr=30.0),
         dict(flux=flux, ivar=ivar, spectrum_pk_id=202, drp_spectrum_pk_id=302, mjd=59990,
              fieldid=101234, plateid=0, in_stack=False, xcsao_v_rad=40.0,
              xcsao_e_v_rad=5.0, snr=12.0)],
        [dict(flux=flux, ivar=ivar, spectrum_pk_id=203, drp_spectrum_pk_id=303, mjd=60000,
              fieldid=7, in_stack=True, xcsao_v_rad=-3.0, xcsao_e_v_rad=1.0)],
        kind="visit", sdss_id=55, catalogid=66, ra=10.5, dec=-20.25, overwrite=True)
    return star, visit


def test_join_keys_read_with_dr19_names(workdir):
    star, visit = _mwm_files(workdir)
    (coadd,) = read_spectra(str(star))
    assert {k: coadd.identifiers[k] for k in ("spectrum_pk_id", "sdss_id", "catalogid",
                                               "min_mjd", "max_mjd", "telescope", "v_rad",
                                               "frame")} == \
        {"spectrum_pk_id": 123, "sdss_id": 55, "catalogid": 66, "min_mjd": 59800,
         "max_mjd": 60100, "telescope": "apo25m", "v_rad": np.float32(-61.0), "frame": "rest"}
    assert (coadd.identifiers["ra"], coadd.identifiers["dec"]) == (10.5, -20.25)
    visits = read_spectra(str(visit))
    assert [(v.identifiers["spectrum_pk_id"], v.identifiers["drp_spectrum_pk_id"],
             v.identifiers["telescope"], v.identifiers["frame"]) for v in visits] == \
        [(201, 301, "apo25m", "rest"), (202, 302, "apo25m", "barycentric"),
         (203, 303, "lco25m", "rest")]
    assert visits[0].identifiers["fieldid"] == 101234 and visits[0].identifiers["mjd"] == 59850


def test_frames_and_composed_rv_on_dr19_mwm_files(workdir, model_path):
    star, visit = _mwm_files(workdir)
    table = predict([str(star), str(visit)], model=model_path, draws=4, seed=1)
    assert list(table["frame"]) == ["rest", "rest", "barycentric", "rest"]
    assert list(table["spectrum_pk_id"]) == [123, 201, 202, 203]
    assert list(table["drp_spectrum_pk_id"]) == [-1, 301, 302, 303]
    assert list(table["in_stack"]) == [-1, 1, 0, 1]
    # v_rad: the coadd's XCSAO mean from the row, never the primary header's Gaia V_RAD
    assert table["v_rad"][0] == np.float32(-61.0) and np.isnan(table["v_rad"][1])
    assert list(table["xcsao_v_rad"][1:]) == [12.0, 40.0, -3.0]
    assert list(table["snr"][:3]) == [44.0, 30.0, 12.0]
    for i, u, e_u in ((0, -61.0, 0.3), (1, 12.0, 1.0), (3, -3.0, 1.0)):
        v, e = compose_velocities(u, float(table["bn_v_r"][i]), e_u,
                                  float(table["e_bn_v_r"][i]))
        assert table["bn_v_bary"][i] == pytest.approx(v, abs=1e-4)
        assert table["e_bn_v_bary"][i] == pytest.approx(e, rel=1e-5)
    assert table["bn_v_bary"][2] == table["bn_v_r"][2]  # barycentric already
    assert list(table["min_mjd"][:1]) == [59800] and list(table["mjd"][1:]) == [59850, 59990,
                                                                                60000]


def test_real_sdss_identifiers_and_frames(shared_data, model_path):
    legacy = shared_data / "sdss-spec-0618-52049-0372.fits"
    boss = shared_data / "sdss-spec-3764-55514-0972.fits"
    lamost = shared_data / "lamost-dr7-spec-58397-EG014118N254444M01_sp03-031.fits"
    if not legacy.exists():
        pytest.skip("real spectra absent")
    table = predict([str(legacy), str(boss), str(lamost)], model=model_path, draws=0)
    assert list(table["telescope"]) == ["apo25m", "apo25m", "lamost"]
    assert list(table["frame"]) == ["heliocentric", "heliocentric", "heliocentric"]
    assert list(table["specobjid"][:2]) == ["695908431386667008", "4238154523191472128"]
    assert list(table["plateid"][:2]) == [618, 3764] and table["fieldid"][1] == -1
    assert table["ra"][0] == pytest.approx(236.97794) and table["dec"][1] == pytest.approx(
        40.108583, abs=1e-5)
    assert table["snr"][1] == np.float32(0.97602266)  # SN_MEDIAN_ALL of a very faint star
    assert table["quality_flags"][1] & QualityFlags.LOW_SNR
    assert not table["quality_flags"][0] & QualityFlags.LOW_SNR
    assert (table["obsid"][2], table["designation"][2]) == (677503031,
                                                            "LAMOST J013730.44+252537.7")
    assert np.isnan(table["bn_v_bary"][0])  # heliocentric: not relabelled as barycentric


# ------------------------------------------------------------------------------ seeds
def test_renaming_a_file_keeps_its_draws(shared_data, tmp_path, model_path):
    real = shared_data / "lamost-dr9-spec-55859-F5902_sp01-001.fits.gz"
    if not real.exists():
        pytest.skip("real spectra absent")
    other = tmp_path / "renamed-copy.fits.gz"
    shutil.copy(real, other)
    table = predict([str(real), str(other)], model=model_path, draws=5, seed=9)
    for name in ("e_teff", "e_logg", "e_fe_h", "e_bn_v_r"):
        assert table[name][0] == table[name][1], name
    again = predict([str(real)], model=model_path, draws=5, seed=10)
    assert again["e_teff"][0] != table["e_teff"][0]  # --seed still changes them


# ------------------------------------------------------------------------------ units
@pytest.mark.parametrize("suffix", [".fits", ".ecsv", ".parquet"])
def test_every_physical_column_has_its_unit(workdir, model_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    star, _ = _mwm_files(workdir)
    table = predict([str(star)], model=model_path, draws=2)
    path = write_catalogue(table, workdir / f"units{suffix}")
    back = read_catalogue(path)
    expected = {c.name: c.unit for c in ALL_COLUMNS if c.unit}
    assert {"teff", "e_teff", "logg", "fe_h", "bn_v_r", "e_bn_v_bary", "v_rad", "ra",
            "mjd"} <= set(expected)
    for name, unit in expected.items():
        assert back[name].unit is not None, name
        assert str(back[name].unit).replace(" ", "") in (unit.replace(" ", ""), "kms-1"), name
    if suffix == ".fits":
        header = fits.getheader(path, 1)
        units = {header[f"TTYPE{i}"]: header.get(f"TUNIT{i}")
                 for i in range(1, header["TFIELDS"] + 1)}
        # dex is no FITS unit (astropy warns on reading it): in the description instead
        assert (units["teff"], units["logg"], units["bn_v_r"], units["ra"]) == \
            ("K", None, "km s-1", "deg")
        i = table.colnames.index("logg") + 1
        assert header[f"TCOMM{i}"].startswith("[dex] ")


def test_no_column_uses_a_dr_name_with_another_meaning():
    names = {c.name for c in ALL_COLUMNS}
    assert "source" not in names  # DR19's source is a source key; our file path is `path`
    table = build_table([])
    assert table.colnames == [c.name for c in ALL_COLUMNS]


def test_docs_render_the_column_table_from_the_code():
    """The site's column table is markdown_table() itself, rendered at build time."""
    from pathlib import Path

    outputs = (Path(__file__).resolve().parents[1] / "docs" / "outputs.md").read_text()
    assert "```{bossnet-columns}" in outputs
    table = markdown_table()
    assert all(f"| `{c.name}` |" in table for c in ALL_COLUMNS)


# ------------------------------------------------- quality problems shown apart from flags
def test_stdout_table_names_quality_problems(shared_data, model_path):
    from typer.testing import CliRunner

    from bossnet_onnx.cli import app

    faint = shared_data / "sdss-spec-3764-55514-0972.fits"
    galaxy = shared_data / "sdss-spec-0266-51602-0001.fits"
    if not faint.exists():
        pytest.skip("real spectra absent")
    result = CliRunner().invoke(app, ["predict", str(faint), str(galaxy), "--model",
                                      str(model_path), "--draws", "0"])
    assert result.exit_code == 0, result.output
    lines = {ln.split()[0]: ln for ln in result.stdout.splitlines() if ln.startswith("sdss-")}
    assert "LOW_SNR" in lines[faint.name] and "NOT_A_STAR" in lines[galaxy.name]
    assert " quality " in result.stdout.splitlines()[0] + " "


def test_cli_refuses_an_unknown_recipe(model_path, shared_data):
    from typer.testing import CliRunner

    from bossnet_onnx.cli import app

    result = CliRunner().invoke(app, ["predict", "x.fits", "--recipe", "dr19"])
    assert result.exit_code == 2
    assert "'dr19' is not one of reference, astra" in result.output


def test_kiel_draws_quality_problems_apart(workdir):
    pytest.importorskip("matplotlib")
    from bossnet_onnx.outputs.catalogue import Result
    from bossnet_onnx.outputs.plotting import kiel_counts, plot_kiel

    def row(teff, logg, quality=0, flags=0):
        return Result(source="x.fits", labels={"teff": teff, "logg": logg, "fe_h": 0.0},
                      result_flags=flags, quality_flags=quality)

    table = build_table([row(5800, 4.4), row(5000, 3.0, QualityFlags.LOW_SNR),
                         row(4800, 2.5, QualityFlags.NOT_A_STAR), row(3500, 4.5, 0, 16),
                         row(6000, 4.0, QualityFlags.LOW_SNR, 8)])
    counts = kiel_counts(table)
    assert (counts["good"], counts["quality"], counts["warn"], counts["bad"]) == (1, 2, 1, 1)
    fig = plot_kiel(table)
    (ax,) = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    drawn = {c.get_gid(): len(c.get_offsets()) for c in ax.collections}
    assert drawn["quality"] == 2 and drawn["good"] == 1
    assert any("quality_flags set (2)" in t.get_text() for t in ax.get_legend().get_texts())


def test_plot_uses_the_recipe_like_predict(workdir, model_path):
    pytest.importorskip("matplotlib")
    from bossnet_onnx.outputs.plotting import plot_spectrum

    wave, cases = _exercising_spectra()
    flux, ivar = cases["NaN blocks"]
    spec = Spectrum(wave, flux, ivar, source="x.fits", format="mwm", hdu=1, row=0)
    titles = {}
    for recipe in ("reference", "astra"):
        fig = plot_spectrum([spec], model=model_path, draws=2, seed=1, recipe=recipe)
        titles[recipe] = fig.axes[0].get_title(loc="left")
        model = open_model(model_path)
        prep = prepare_spectrum(spec, model.metadata, 2, 1, recipe)
        teff = 10 ** float(model.run_physical(prep.inputs)[0][model.metadata.index("logTeff")])
        assert f"Teff = {teff:.0f}" in titles[recipe]
    assert titles["reference"] != titles["astra"]


def test_astra_recipe_writes_nan_labels_with_dr19_bits(model_path):
    from bossnet_onnx.run.rows import result_from_outputs

    model = open_model(model_path)
    wave, cases = _exercising_spectra()
    flux, ivar = cases["emission lines"]
    spec = Spectrum(wave, flux, ivar, source="x.fits", format="mwm", hdu=1, row=0)
    physical = np.full((3, 4), np.nan, np.float32)  # what a diverging network would return
    for recipe, bits, failed in (("reference", 1, True), ("astra", 0b01110, False)):
        prep = prepare_spectrum(spec, model.metadata, 2, 0, recipe)
        result = result_from_outputs(prep, physical, model.metadata, 2)
        assert result.result_flags == bits
        assert bool(result.error) == failed


def test_bundled_examples_are_in_dr19_frames():
    """examples/LABELS.tsv says which frame each example spectrum is in; the readers agree."""
    from pathlib import Path

    examples = Path(__file__).resolve().parents[1] / "examples"
    lines = (examples / "LABELS.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    truth = [dict(zip(header, ln.split("\t"))) for ln in lines[1:]]
    frames = []
    for name in sorted({t["file"] for t in truth}):
        frames += [(name, s.identifiers["frame"]) for s in read_spectra(str(examples / name))]
    expected = sorted((t["file"], t["frame"]) for t in truth)
    assert sorted(frames) == expected
    assert {"rest", "barycentric"} == {f for _, f in frames}
    # in-frame shifts are small residuals for rest-frame rows, the full RV otherwise
    for t in truth:
        shift, rv = float(t["rv_in_frame_kms"]), float(t["rv_kms"])
        assert (abs(shift) < 2) if t["frame"] == "rest" else (shift == rv)
