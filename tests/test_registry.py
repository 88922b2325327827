"""registry: the built-in list of published sets, and replacement files checked field by field."""
from __future__ import annotations

import json
import re

import pytest

from bossnet_onnx.errors import RegistryError
from bossnet_onnx.model.registry import REGISTRY_ENV, load_registry

HEX40 = re.compile(r"^[0-9a-f]{40}$")
#: Folders of the reference repository that hold a model_args.yaml (all but the May 2023 set).
WITH_CONFIG = {"boss", "apogee", "gaia-rvs", "gaia-xp"}


@pytest.fixture
def builtin(monkeypatch):
    monkeypatch.delenv(REGISTRY_ENV, raising=False)
    return load_registry()


def test_builtin_registry_names_and_sources(builtin):
    assert builtin.names == ["boss", "boss-2023-05", "apogee", "gaia-rvs", "gaia-xp"]
    boss = builtin.get("boss")
    assert boss.commit == "101ac2b2e2065bd6e9fda71afdcd5ea306040843"
    assert boss.folder == "bossnet/model_boss" and boss.repository == "hutchresearch/BOSSNet"
    first = builtin.get("boss-2023-05")
    assert first.commit == "6348b5dba686c03f7e878d675e38e9ea3c788027"
    assert first.folder == "bossnet/deconstructed_model" and first.config_file is None
    assert "ecba5e9" in boss.description and "not public" in boss.description
    assert [m.member for m in builtin.models] == ["boss", "boss", "apogee", "gaia-rvs",
                                                 "gaia-xp"]


def test_every_model_has_ten_chunks_and_its_config(builtin):
    for model in builtin.models:
        chunks = [f.path for f in model.role("weights")]
        assert chunks == [f"{model.folder}/model_chunk_{i}" for i in range(10)], model.name
        configs = [f.path for f in model.role("config")]
        expected = [f"{model.folder}/model_args.yaml"] if model.name in WITH_CONFIG else []
        assert configs == expected, model.name
        assert HEX40.match(model.commit)
        for item in model.files:
            assert HEX40.match(item.blob), (model.name, item.path)
        assert len({f.blob for f in model.role("weights")}) == 10


def test_boss_chunks_differ_from_the_first_release(builtin):
    new = {f.blob for f in builtin.get("boss").role("weights")}
    old = {f.blob for f in builtin.get("boss-2023-05").role("weights")}
    assert not new & old
    assert builtin.get("boss").role("weights")[0].blob == \
        "97489ec1be7b7fd67a15a6939ac637334d78b6ae"


def test_unknown_name_lists_known(builtin):
    with pytest.raises(RegistryError, match=r"no model called 'bos' .*known: boss, "
                                            r"boss-2023-05, apogee"):
        builtin.get("bos")


def test_round_trip_through_env(builtin, tmp_path, monkeypatch):
    path = tmp_path / "reg.json"
    path.write_text(json.dumps(builtin.to_json()))
    monkeypatch.setenv(REGISTRY_ENV, str(path))
    again = load_registry()
    assert again.to_json() == builtin.to_json() and again.source == str(path)


def _doc(builtin, **changes):
    doc = builtin.to_json()
    doc["models"][0].update(changes)
    return doc


@pytest.mark.parametrize(("change", "message"), [
    (None, r"reg.json: not valid JSON \(.*\); expected the format"),
    ({"commit": "101ac2b"}, r"models\[0\] \('boss'\): commit '101ac2b' is not a full 40-digit"),
    ({"commit": None}, r"models\[0\] \('boss'\): field 'commit' is missing"),
    ({"name": "../x"}, r"name must be lower-case"),
    ({"files": []}, r"field 'files' is missing or empty"),
    ({"files": [{"path": "a/model_chunk_0", "blob": "xyz", "role": "weights"}]},
     r"files\[0\]: blob 'xyz' is not a 40-digit hex git blob id"),
    ({"files": [{"path": "../etc/passwd", "blob": "a" * 40, "role": "weights"}]},
     r"files\[0\]: path '../etc/passwd' must be a file's path relative"),
    ({"name": "tiny\n"}, r"\('tiny\\n'\): name must be lower-case"),  # `$` matches before \n
    ({"commit": "a" * 40 + "\n"}, r"is not a full 40-digit hex id"),
    ({"files": [{"path": ".", "blob": "a" * 40, "role": "weights"}]},
     r"files\[0\]: path '\.' must be a file's path"),
    ({"files": [{"path": "a/./b", "blob": "a" * 40, "role": "weights"}]}, r"without '\.'"),
    ({"files": [{"path": "a/b", "blob": "a" * 40, "role": "weights", "size": -1}]},
     r"size is -1; expected a byte count"),
    ({"description": {"k": ["x" * 1000] * 1000}}, r"field 'description' is \{'k': \["),
    ({"files": [{"path": "a/b", "blob": "a" * 40, "role": "code"}]}, r"role 'code'"),
])
def test_bad_registry_files_are_one_line(builtin, tmp_path, monkeypatch, change, message):
    path = tmp_path / "reg.json"
    path.write_text("{not json" if change is None else json.dumps(_doc(builtin, **change)))
    monkeypatch.setenv(REGISTRY_ENV, str(path))
    with pytest.raises(RegistryError, match=message) as err:
        load_registry()
    assert "\n" not in str(err.value) and len(str(err.value)) < 600


def test_hostile_registry_files_are_one_short_line(tmp_path, monkeypatch):
    deep = tmp_path / "deep.json"
    deep.write_text('{"models": ' + "[" * 100_000 + "]" * 100_000 + "}")
    for path, message in [(deep, r"deep.json: not valid JSON \(nested too deeply\)"),
                          (tmp_path, r"cannot read the registry file \(is a folder")]:
        monkeypatch.setenv(REGISTRY_ENV, str(path))
        with pytest.raises(RegistryError, match=message) as err:
            load_registry()
        assert "\n" not in str(err.value) and len(str(err.value)) < 400


def test_size_caps_come_from_the_registry(builtin):
    from bossnet_onnx.model.registry import SMALL_FILE_CAP, RegistryFile

    boss = builtin.get("boss")
    chunk = boss.role("weights")[0]
    assert boss.approx_bytes / 10 < boss.size_cap(chunk) < boss.approx_bytes / 10 * 1.1
    assert boss.size_cap(boss.config_file) == SMALL_FILE_CAP
    assert boss.size_cap(RegistryFile(path="a/b", blob="a" * 40, role="weights",
                                      size=151)) == 151


def test_missing_registry_file(tmp_path, monkeypatch):
    monkeypatch.setenv(REGISTRY_ENV, str(tmp_path / "nope.json"))
    with pytest.raises(RegistryError, match=r"nope.json: registry file not found"):
        load_registry()


def test_list_models_json_is_a_registry(builtin, tmp_path, monkeypatch):
    from bossnet_onnx.model.pull import format_model_list, list_models

    monkeypatch.setenv("BOSSNET_ONNX_HOME", str(tmp_path / "home"))
    doc = list_models()
    assert all(m["installed"] is None for m in doc["models"])
    assert "not public" in doc["note"]
    text = format_model_list(doc)
    assert "bossnet-onnx models pull boss-2023-05" in text and "about 290 MB" in text
    path = tmp_path / "listed.json"
    path.write_text(json.dumps(doc))
    assert load_registry(path).to_json() == builtin.to_json()
