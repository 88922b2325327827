"""The family contract: member in the model, one recipe table, per-member rows, columns, flags."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from layouts import write_apstar, write_gaia_table, write_spec
from onnx_fixtures import member_metadata, write_linear_model, write_member_model
from typer.testing import CliRunner

from bossnet_onnx.cli import app
from bossnet_onnx.errors import MemberMismatchError, ModelMetadataError
from bossnet_onnx.model.metadata import ModelMetadata
from bossnet_onnx.model.session import open_model
from bossnet_onnx.outputs.catalogue import build_table
from bossnet_onnx.readers import gaia
from bossnet_onnx.run.rows import prepare_spectrum
from bossnet_onnx.run.stream import predict
from bossnet_onnx.science import member_inputs, members
from bossnet_onnx.science.flags import QualityFlags, ResultFlags
from bossnet_onnx.science.members import MEMBERS, OFFICIAL_STATS
from bossnet_onnx.spectrum import Spectrum

APOGEE_WAVE = 10.0 ** (4.179 + 6e-6 * np.arange(8575))


def test_table_names_four_members_with_their_outputs():
    assert list(MEMBERS) == ["boss", "apogee", "gaia-rvs", "gaia-xp"]
    assert MEMBERS["boss"].parameter_names == ("logg", "logTeff", "FeH", "rv")
    for name in ("apogee", "gaia-rvs", "gaia-xp"):
        assert MEMBERS[name].parameter_names == ("logg", "logTeff", "FeH")
        assert set(OFFICIAL_STATS[name]) == {"logg", "logTeff", "FeH"}
    assert [MEMBERS[m].n_inputs for m in MEMBERS] == [3900, 8575, 2401, 110]
    assert OFFICIAL_STATS["apogee"]["logg"] == {"MEAN": 3.2, "STD": 1.2,
                                               "PNMIN": -3.2758333384990697,
                                               "PNMAX": 3.3389749999999996}


@pytest.mark.parametrize("member", list(MEMBERS))
def test_member_round_trips_through_metadata(member):
    meta = member_metadata(member)
    props = meta.to_props()
    assert json.loads(props["bossnet.member"]) == member
    described = json.loads(props["bossnet.input"])
    assert described["n"] == MEMBERS[member].n_inputs
    assert described["outputs"] == list(MEMBERS[member].parameter_names)
    back = ModelMetadata.from_props(props, source="m.onnx")
    assert back.member == member and back.family_member is MEMBERS[member]


def test_model_without_member_key_is_boss():
    props = member_metadata("boss").to_props()
    del props["bossnet.member"]
    assert ModelMetadata.from_props(props).member == "boss"


def test_unknown_member_is_refused_in_one_line():
    props = member_metadata("apogee").to_props()
    props["bossnet.member"] = json.dumps("lamost-net")
    with pytest.raises(ModelMetadataError, match=r"^m\.onnx: metadata key 'bossnet\.member' is "
                                                 r"'lamost-net', a family member this runtime "
                                                 r"does not know \(known: boss, apogee, "
                                                 r"gaia-rvs, gaia-xp\)"):
        ModelMetadata.from_props(props, source="m.onnx")


def test_member_metadata_must_match_its_recipe():
    props = member_metadata("apogee").to_props()
    props["bossnet.preprocessing"] = json.dumps({"version": "bossnet-log95-v1"})
    with pytest.raises(ModelMetadataError, match="implements 'apogeenet-native-log95-v1' for "
                                                 "APOGEE Net"):
        ModelMetadata.from_props(props, source="m.onnx")
    props = member_metadata("gaia-xp", grid=np.arange(100, dtype=np.float32)).to_props()
    with pytest.raises(ModelMetadataError, match="has 100 points but Gaia XP Net reads 110"):
        ModelMetadata.from_props(props, source="m.onnx")


def _apogee_spectrum(rng, sigma=True) -> Spectrum:
    flux = (1.0 + 0.1 * rng.standard_normal(8575)).astype(np.float32)
    flux[:5] = np.nan
    flux[5] = np.inf
    error = np.full(8575, 0.05, np.float32)
    error[10] = np.nan
    return Spectrum(APOGEE_WAVE, flux, 1.0 / error ** 2, source="a.fits", format="apstar",
                    kind="apogee", sigma=error if sigma else None)


def test_apogee_rows_are_native_log_scaled_with_bad_pixels_zero(rng):
    meta = member_metadata("apogee")
    spec = _apogee_spectrum(rng)
    rows, coverage, quality = member_inputs.apogee_rows(spec, meta, 0, seed=1)
    assert coverage is None
    assert rows.shape == (1, 8575) and quality == 0
    clean = np.nan_to_num(spec.flux, nan=0.0, posinf=0.0)
    expected = np.log(np.maximum(clean, np.float32(1e-6)))
    expected = np.minimum(expected, np.quantile(expected, 0.95).astype(np.float32) + 1)
    np.testing.assert_array_equal(rows[0], expected.astype(np.float32))
    assert rows[0, 5] == pytest.approx(np.log(1e-6), rel=1e-6)  # inf -> 0 -> the log floor


def test_apogee_draws_use_the_error_array_as_given(rng):
    meta = member_metadata("apogee")
    spec = _apogee_spectrum(rng)
    rows, _, _ = member_inputs.apogee_rows(spec, meta, 400, seed=3)
    # Back out the noisy linear flux of the pixels the clip leaves alone.
    linear = np.exp(rows[1:, 100:2000].astype(np.float64))
    scatter = linear.std(axis=0).mean()
    assert scatter == pytest.approx(0.05, rel=0.05)
    assert np.all(np.isfinite(rows))


def test_gaia_rvs_rows_are_raw_with_nan_set_to_one(rng):
    meta = member_metadata("gaia-rvs")
    flux = (1.0 + 0.01 * rng.standard_normal(2401)).astype(np.float32)
    flux[7] = np.nan
    spec = Spectrum(np.arange(2401.0), flux, np.ones(2401, np.float32), source="r.ecsv",
                    format="gaia", kind="gaia-rvs", sigma=np.full(2401, np.nan, np.float32))
    rows, _, _ = member_inputs.gaia_rvs_rows(spec, meta, 2, seed=0)
    expected = flux.copy()
    expected[7] = 1.0
    np.testing.assert_array_equal(rows[0], expected)
    # NaN errors are 1, as the reference sets them: draws scatter by ~1 around the flux
    assert 0.5 < np.std(rows[1:] - rows[0]) < 1.5


def test_xp_covariance_unpacks_the_archive_order():
    errors = np.array([1.0, 2.0, 3.0])
    # upper triangle column by column: (0,1), (0,2), (1,2)
    cov = gaia.xp_covariance(errors, np.array([0.1, 0.2, 0.3]))
    np.testing.assert_allclose(cov, [[1.0, 0.2, 0.6], [0.2, 4.0, 1.8], [0.6, 1.8, 9.0]])
    with pytest.raises(ValueError, match="2 correlations for 3 coefficients; expected 3"):
        gaia.xp_covariance(errors, np.array([0.1, 0.2]))


def _xp_spectrum(cov_bp, cov_rp, errors) -> Spectrum:
    coeffs = np.concatenate([np.linspace(100, 1, 55), np.linspace(80, 2, 55)]).astype(np.float32)
    coeffs[3] = np.nan
    return Spectrum(np.arange(110.0), coeffs, np.zeros(110, np.float32), source="x.csv",
                    format="gaia", kind="gaia-xp", sigma=errors.astype(np.float32),
                    covariance=(cov_bp, cov_rp))


def test_xp_draws_follow_the_covariance():
    meta = member_metadata("gaia-xp")
    rng = np.random.default_rng(0)
    errors = rng.uniform(0.5, 2.0, 110)
    corr = np.full(1485, 0.4)
    cov_bp = gaia.xp_covariance(errors[:55], corr)
    cov_rp = gaia.xp_covariance(errors[55:], corr)
    rows, _, quality = member_inputs.gaia_xp_rows(_xp_spectrum(cov_bp, cov_rp, errors), meta, 4000, 1)
    assert quality == 0
    assert rows[0, 3] == 1.0  # NaN coefficient -> 1, as the reference
    noise = rows[1:].astype(np.float64) - rows[0]
    measured = np.cov(noise[:, :55], rowvar=False)
    np.testing.assert_allclose(measured[:4, :4], cov_bp[:4, :4], rtol=0.1, atol=0.05)
    assert abs(np.corrcoef(noise[:, 0], noise[:, 60])[0, 1]) < 0.06  # bands independent


def test_xp_non_positive_definite_covariance_falls_back_to_the_errors():
    meta = member_metadata("gaia-xp")
    errors = np.ones(110)
    broken = gaia.xp_covariance(errors[:55], np.full(1485, -0.9))  # not positive definite
    good = gaia.xp_covariance(errors[55:], np.zeros(1485))
    rows, _, quality = member_inputs.gaia_xp_rows(_xp_spectrum(broken, good, errors), meta, 3000, 2)
    assert quality == int(QualityFlags.XP_DIAGONAL_COVARIANCE)
    noise = rows[1:].astype(np.float64) - rows[0]
    assert noise[:, :55].std(axis=0).mean() == pytest.approx(1.0, rel=0.05)


def test_spectrum_of_another_kind_is_refused_naming_both(rng):
    meta = member_metadata("boss")
    with pytest.raises(MemberMismatchError, match=r"a\.fits\[HDU 0\]: is an APOGEE spectrum "
                                                  r"\(APOGEE Net input\) but the model is "
                                                  r"BOSS Net \(member boss\)"):
        prepare_spectrum(_apogee_spectrum(rng), meta, 0, 0)


def test_predict_refuses_a_mismatched_file_before_any_work(tmp_path, rng):
    boss = write_linear_model(tmp_path / "boss.onnx")
    apogee = write_member_model(tmp_path / "apogee.onnx", "apogee")
    apstar = write_apstar(tmp_path / "apStar-x.fits", np.ones((3, 8575)), np.ones((3, 8575)))
    wave = 10 ** (3.5523 + 1e-4 * np.arange(4648))
    spec = write_spec(tmp_path / "spec-1-2-3.fits", wave, np.ones(4648), np.ones(4648),
                      plate=1, mjd=2, fiberid=3)
    with pytest.raises(MemberMismatchError, match=r"apStar-x\.fits: is an APOGEE spectrum "
                                                  r"\(APOGEE Net input\) but the model "
                                                  r"boss\.onnx is BOSS Net"):
        predict([str(spec), str(apstar)], model=boss, draws=0)
    with pytest.raises(MemberMismatchError, match=r"spec-1-2-3\.fits: is an optical spectrum "
                                                  r"\(BOSS Net input\) but the model apogee\.onnx "
                                                  r"is APOGEE Net \(member apogee\), which reads "
                                                  r"APOGEE spectra"):
        predict([str(apstar), str(spec)], model=apogee, draws=0)
    result = CliRunner().invoke(app, ["predict", str(apstar), "-m", str(boss), "-o",
                                      str(tmp_path / "out.fits")])
    assert result.exit_code == 1
    assert not (tmp_path / "out.fits").exists()
    assert result.output.count("\n") == 1 and "is an APOGEE spectrum" in result.output


def test_apogee_catalogue_has_dr19_columns_flags_and_calibrated_errors(tmp_path):
    model = write_member_model(tmp_path / "apogee.onnx", "apogee", scale=0.5)
    rng = np.random.default_rng(5)
    flux = 1.0 + 0.1 * rng.standard_normal((4, 8575))
    path = write_apstar(tmp_path / "apStar-2M1.fits", flux, np.full((4, 8575), 0.02),
                        objid="2M1")
    table = predict([str(path)], model=model, draws=20, seed=4)
    assert list(table["row"]) == [0, 2, 3]
    assert "bn_v_r" not in table.colnames and "e_bn_v_r" not in table.colnames
    for name in ("raw_e_teff", "raw_e_logg", "raw_e_fe_h", "apogee_id"):
        assert name in table.colnames
    assert table.meta["MEMBER"] == "apogee"
    row = table[0]
    assert row["apogee_id"] == "2M1"
    assert row["e_teff"] == pytest.approx(1.25 * row["raw_e_teff"] + 10, rel=1e-5)
    assert row["e_logg"] == pytest.approx(1.25 * row["raw_e_logg"] + 0.01, rel=1e-5)
    assert row["e_fe_h"] == pytest.approx(row["raw_e_fe_h"] + 0.01, rel=1e-5)
    assert row["raw_e_teff"] > 0


def test_apogee_flags_use_dr19_bits_0_to_3_only():
    # teff < 3900 and 3 < logg < 6 is BOSS Net's bit 4; DR19 APOGEE Net has no such bit.
    table = build_table([], meta={"MEMBER": "apogee"})
    assert "bn_v_r" not in table.colnames and "apogee_id" in table.colnames
    from bossnet_onnx.outputs.catalogue import Result
    from bossnet_onnx.run.rows import Prepared, result_from_outputs

    spec = Spectrum(APOGEE_WAVE, np.ones(8575, np.float32), np.ones(8575, np.float32),
                    source="a.fits", format="apstar", kind="apogee")
    prep = Prepared(spec, np.zeros((1, 8575), np.float32), 0)
    cool_dwarf = np.array([[4.5, np.log10(3500.0), 0.0]])
    for member, expected in (("apogee", ResultFlags(0)),
                             ("boss", ResultFlags.SUSPICIOUS_FE_H)):
        meta = member_metadata(member)
        physical = cool_dwarf if member == "apogee" else np.c_[cool_dwarf, [[0.0]]]
        res = result_from_outputs(prep, physical, meta, 0)
        assert isinstance(res, Result) and res.result_flags == int(expected)


def test_gaia_catalogue_has_source_id_and_no_rv(tmp_path):
    model = write_member_model(tmp_path / "rvs.onnx", "gaia-rvs")
    rows = [{"source_id": 4_295_806_720_000_000_001 + i, "flux": np.ones(2401) * (1 + i / 10),
             "flux_error": np.full(2401, 0.01)} for i in range(2)]
    path = write_gaia_table(tmp_path / "rvs.csv", rows)
    table = predict([str(path)], model=model, draws=0)
    assert table["source_id"].dtype == np.int64
    assert list(table["source_id"]) == [4_295_806_720_000_000_001, 4_295_806_720_000_000_002]
    assert "bn_v_r" not in table.colnames and "raw_e_teff" not in table.colnames
    assert np.all(np.isfinite(table["teff"]))
    assert table["teff"][0] != table["teff"][1]


def test_open_model_reports_member(tmp_path):
    model = open_model(write_member_model(tmp_path / "xp.onnx", "gaia-xp"))
    assert model.metadata.member == "gaia-xp" and model.metadata.n_pixels == 110
    assert model.metadata.family_member.title == "Gaia XP Net"


def test_members_table_is_the_only_dispatch():
    # every member's recipe is a function of member_inputs.py, reached through the table
    for member in MEMBERS.values():
        assert callable(getattr(member_inputs, member.input_function))
    assert members.member_named("apogee") is MEMBERS["apogee"]


def test_info_names_the_member(tmp_path):
    from bossnet_onnx.model.info import format_model_info, model_info

    info = model_info(write_member_model(tmp_path / "xp.onnx", "gaia-xp"))
    assert info["member"] == "gaia-xp" and info["grid"]["unit"] == "coefficient"
    text = format_model_info(info)
    assert re.search(r"^member +gaia-xp \(Gaia XP Net\): reads Gaia DR3 XP continuous", text,
                     re.M)
    assert "110 coefficients (no wavelength axis)" in text


def test_plot_of_a_member_without_rv(tmp_path):
    pytest.importorskip("matplotlib")
    model = write_member_model(tmp_path / "apogee.onnx", "apogee")
    path = write_apstar(tmp_path / "apStar-p.fits", 1 + 0.1 * np.random.default_rng(0)
                        .standard_normal((3, 8575)), np.full((3, 8575), 0.05))
    result = CliRunner().invoke(app, ["plot", str(path), "-m", str(model), "-o",
                                      str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_recipe_astra_is_boss_nets_only(tmp_path):
    model = write_member_model(tmp_path / "apogee.onnx", "apogee")
    path = write_apstar(tmp_path / "apStar-r.fits", np.ones((3, 8575)), np.ones((3, 8575)))
    with pytest.raises(MemberMismatchError, match=r"apogee\.onnx: --recipe astra is not defined "
                                                  r"for APOGEE Net \(member apogee\); it takes "
                                                  r"--recipe reference"):
        predict([str(path)], model=model, draws=0, recipe="astra")
