"""Export per family member: the member is inferred or given, checked, and recorded."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from typer.testing import CliRunner  # noqa: E402

from bossnet_export import export_model  # noqa: E402
from bossnet_export.config import BossNetConfig, check_member, infer_member  # noqa: E402
from bossnet_export.random_weights import SMALL_CONFIG, build_random_model, save_official_layout  # noqa: E402
from bossnet_onnx.cli import app  # noqa: E402
from bossnet_onnx.errors import CheckpointError  # noqa: E402
from bossnet_onnx.model.session import open_model  # noqa: E402
from bossnet_onnx.run.stream import predict  # noqa: E402
from bossnet_onnx.science.members import MEMBERS, OFFICIAL_CONFIGS, OFFICIAL_STATS  # noqa: E402

pytestmark = pytest.mark.export

SMALL_3 = dataclasses.replace(SMALL_CONFIG, num_targets=3)


@pytest.fixture(scope="module")
def apogee_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("family")
    chunks = save_official_layout(build_random_model(SMALL_3, seed=5), folder / "model_apogee")
    out = folder / "apogee.onnx"
    report = export_model(chunks, out, provenance="random-weights")
    return out, report


def test_apogee_member_inferred_from_the_directory_name(apogee_export):
    out, report = apogee_export
    assert report.metadata.member == "apogee"
    assert report.max_abs_diff < 1e-4
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(props["bossnet.member"]) == "apogee"
    described = json.loads(props["bossnet.input"])
    assert described["n"] == 8575 and described["crval1"] == 4.179
    assert described["outputs"] == ["logg", "logTeff", "FeH"]
    assert json.loads(props["bossnet.stats"]) == OFFICIAL_STATS["apogee"]
    model = open_model(out)
    assert model.metadata.n_pixels == 8575 and model.metadata.member == "apogee"


def test_exported_apogee_model_predicts_real_apstar_files(apogee_export, shared_data):
    out, _ = apogee_export
    files = sorted(str(p) for p in shared_data.glob("apogee-apstar-*.fits"))
    table = predict(files, model=out, draws=2, seed=1)
    assert len(table) == 4 + 1 + 9 and not np.any(table["result_flags"] & 1)
    assert "bn_v_r" not in table.colnames and "raw_e_teff" in table.colnames
    combined = table[table["row"] == 0]
    assert len(set(np.round(combined["log_teff"], 6))) == 3  # outputs vary with the input


def test_member_given_explicitly_is_checked_against_the_outputs(tmp_path):
    four = save_official_layout(build_random_model(SMALL_CONFIG, seed=1), tmp_path / "w")
    with pytest.raises(CheckpointError, match=r"the network predicts 4 values but APOGEE Net "
                                              r"\(member apogee\) predicts 3 \(logg, logTeff, "
                                              r"FeH\); check --member"):
        export_model(four, tmp_path / "x.onnx", member="apogee")
    assert not (tmp_path / "x.onnx").exists()


def test_member_inferred_from_names_and_published_configs():
    small = SMALL_3
    assert infer_member("model_gaia_xp", small) == "gaia-xp"
    assert infer_member("/x/model_gaia_rvs", small) == "gaia-rvs"
    assert infer_member("apogee-net-dr17", small) == "apogee"
    assert infer_member("weights.pt", small) == "boss"
    for member, official in OFFICIAL_CONFIGS.items():
        assert infer_member("weights", BossNetConfig.from_mapping(official)) == member


def test_published_config_of_another_member_is_refused():
    rvs = BossNetConfig.from_mapping(OFFICIAL_CONFIGS["gaia-rvs"])
    with pytest.raises(CheckpointError, match=r"model_args\.yaml is the published gaia-rvs "
                                              r"network's, not apogee's; check --member"):
        check_member("apogee", rvs, "ckpt")
    check_member("gaia-rvs", rvs, "ckpt")


def test_xp_export_with_explicit_member(tmp_path):
    chunks = save_official_layout(build_random_model(SMALL_3, seed=2), tmp_path / "weights")
    report = export_model(chunks, tmp_path / "xp.onnx", member="gaia-xp")
    assert report.metadata.member == "gaia-xp" and report.metadata.n_pixels == 110
    assert MEMBERS["gaia-xp"].preprocessing_version == report.metadata.preprocessing.version


def test_cli_export_member_option(tmp_path):
    chunks = save_official_layout(build_random_model(SMALL_3, seed=2), tmp_path / "weights")
    bad = CliRunner().invoke(app, ["export", str(chunks), "-o", str(tmp_path / "a.onnx"),
                                   "--member", "lamost"])
    assert bad.exit_code == 2 and "'lamost'" in bad.output and "--member" in bad.output
    ok = CliRunner().invoke(app, ["export", str(chunks), "-o", str(tmp_path / "r.onnx"),
                                  "--member", "gaia-rvs"])
    assert ok.exit_code == 0, ok.output
    assert open_model(tmp_path / "r.onnx").metadata.n_pixels == 2401
