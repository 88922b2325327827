"""Every `bossnet.*` metadata entry validated at load for type, range and size; one line naming
the model file and the key for each refusal."""
from __future__ import annotations

import json
import time

import pytest
from onnx_fixtures import linear_metadata, write_linear_model

import bossnet_onnx.model.metadata as metadata
from bossnet_onnx.errors import ModelMetadataError
from bossnet_onnx.model.metadata import KEY_SPECS, KeySpec, ModelMetadata, validate_props
from bossnet_onnx.model.session import open_model

SOURCE = "/data/models/m.onnx"


class Raw(str):
    """Entry text stored as it is (not JSON-encoded by props_with)."""


def props_with(key: str, value) -> dict[str, str]:
    """The valid test metadata with `bossnet.<key>` replaced by `value` as JSON (Raw: as is)."""
    props = linear_metadata().to_props()
    props["bossnet." + key] = str(value) if isinstance(value, Raw) else json.dumps(value)
    return props


def edited(key: str, **changes) -> dict[str, str]:
    doc = json.loads(linear_metadata().to_props()["bossnet." + key])
    doc.update(changes)
    return props_with(key, doc)


def refused(props, key: str, why: str):
    with pytest.raises(ModelMetadataError) as info:
        ModelMetadata.from_props(props, source=SOURCE)
    text = str(info.value)
    assert text.startswith(f"{SOURCE}: metadata key 'bossnet.{key}' "), text
    assert why in text, text
    assert "\n" not in text
    return text


def grid_values(n=3900):
    return json.loads(linear_metadata().to_props()["bossnet.grid"])["values"][:n]


def test_valid_metadata_round_trips():
    meta = ModelMetadata.from_props(linear_metadata().to_props(), source=SOURCE)
    assert meta.parameter_names == ("logg", "logTeff", "FeH", "rv") and meta.n_pixels == 3900


CASES = [
    ("format_version", True, "is True; this runtime reads 1"),
    ("format_version", 2, "is 2; this runtime reads 1"),
    ("model_name", "", "must name the model"),
    ("model_name", "x" * 300, "at most 256 printable characters"),
    ("model_name", "a\nb", "at most 256 printable characters"),
    ("model_name", 7, "must name the model"),
    ("provenance", {"kind": "stolen"}, "kind must be one of"),
    ("provenance", {"kind": "random-weights", "description": 5}, "description must be a string"),
    ("parameter_names", "logg", "must be a non-empty list of strings"),
    ("parameter_names", ["logg", "logTeff", "FeH", "rv", "rv"], "repeats a name"),
    ("parameter_names", ["logg", "logTeff", "FeH"], "lacks 'rv'"),
    ("parameter_names", ["logg", "logTeff", "FeH", "rv", "a\tb"], "printable characters"),
    ("parameter_names", ["logg", "logTeff", "FeH", "rv"] + [f"p{i}" for i in range(70)],
     "at most 64 names"),
    ("opset", "17", "is '17', expected an integer"),
    ("opset", 10 ** 6, "expected an integer"),
    ("exporter", [], "must be an object"),
    ("model_config", [1], "must be an object"),
    ("weights_sha256", "g" * 64, "expected 64 hex digits"),
    ("weights_sha256", "0" * 63, "expected 64 hex digits"),
]


@pytest.mark.parametrize(("key", "value", "why"), CASES)
def test_bad_value_is_refused_naming_file_and_key(key, value, why):
    refused(props_with(key, value), key, why)


@pytest.mark.parametrize(("stats_edit", "why"), [
    ({"rv": {"MEAN": 0.0, "STD": 0}}, "'rv.STD' is 0, expected > 0"),
    ({"rv": {"MEAN": 0.0, "STD": -1}}, "'rv.STD' is -1, expected > 0"),
    ({"rv": {"MEAN": float("nan"), "STD": 1}}, "'rv.MEAN' is nan, expected a finite number"),
    ({"rv": {"MEAN": 1e999, "STD": 1}}, "'rv.MEAN' is inf, expected a finite number"),
    ({"rv": {"MEAN": True, "STD": 1}}, "'rv.MEAN' is True, expected a finite number"),
    ({"rv": {"MEAN": 0, "STD": 1, "PNMIN": "low"}}, "'rv.PNMIN' is 'low'"),
    ({"rv": {"MEAN": 0}}, "has no MEAN/STD for 'rv'"),
])
def test_stats_must_be_finite_with_positive_std(stats_edit, why):
    stats = json.loads(linear_metadata().to_props()["bossnet.stats"])
    stats.update(stats_edit)
    refused(props_with("stats", Raw(json.dumps(stats).replace("Infinity", "1e999"))), "stats", why)


@pytest.mark.parametrize(("change", "why"), [
    ({"values": grid_values()[::-1]}, "finite and strictly increasing"),
    ({"values": [*grid_values()[:-1], grid_values()[-2]]}, "finite and strictly increasing"),
    ({"values": [*grid_values()[:-1], float("nan")]}, "finite and strictly increasing"),
    ({"values": [*grid_values()[:-1], "8900"]}, "found a non-number"),
    ({"values": grid_values()[:-1]}, "has (3899,) values but n=3900"),
    ({"n": 3900.0}, "must hold 'values' (list of Angstrom) and 'n'"),
    ({"n": 1, "values": grid_values(1)}, "has n=1, expected 2..100000"),
    ({"unit": "nm"}, "unit is 'nm', expected 'Angstrom'"),
])
def test_grid_must_be_finite_increasing_and_of_declared_length(change, why):
    refused(edited("grid", **change), "grid", why)


@pytest.mark.parametrize(("change", "why"), [
    ({"version": "other"}, "version is 'other'"),
    ({"clip_quantile": 2.0}, "'clip_quantile' is 2.0, expected a number in (0.0, 1.0]"),
    ({"flux_floor": 0.0}, "'flux_floor' is 0.0"),
    ({"sigma_clip_factor": "5"}, "'sigma_clip_factor' is '5'"),
    ({"surprise": 1}, "has unexpected fields ['surprise']"),
])
def test_preprocessing_constants_in_range(change, why):
    refused(edited("preprocessing", **change), "preprocessing", why)


@pytest.mark.parametrize(("change", "why"), [
    ({"batch_size": 0}, "'batch_size' is 0, expected null or an integer 1..65536"),
    ({"batch_size": True}, "'batch_size' is True"),
    ({"input_rank": 5}, "'input_rank' is 5, expected 2 or 3"),
    ({"input": ""}, "'input' must be a non-empty string"),
])
def test_io_names_and_sizes(change, why):
    refused(edited("io", **change), "io", why)


def test_huge_entry_is_refused_before_parsing():
    big = json.dumps({"kind": "random-weights", "description": "x" * 50_000_000})
    t = time.perf_counter()
    refused(props_with("provenance", Raw(big)), "provenance",
            "holds 50,000,045 characters, more than the 1,000,000 allowed")
    assert time.perf_counter() - t < 1.0  # refused without parsing 50 MB of JSON


def test_deep_nesting_is_refused_before_parsing():
    deep = "[" * 100_000 + "]" * 100_000
    refused(props_with("model_config", Raw(deep)), "model_config",
            "nests JSON 100000 levels deep, more than the 8 allowed")
    # brackets inside strings are text, not nesting
    ok = props_with("model_config", {"note": "[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]"})
    assert ModelMetadata.from_props(ok, source=SOURCE).model_config["note"].startswith("[[[")


def test_malformed_json_is_named():
    refused(props_with("grid", Raw("{not json")), "grid", "is not valid JSON")
    refused(props_with("stats", Raw("1" * 10_000)), "stats", "is not valid JSON")


def test_unknown_bossnet_keys_load_but_get_the_generic_checks():
    """A newer exporter's extra key (e.g. the family member) loads; a hostile one does not."""
    fine = props_with("member", "boss")
    assert ModelMetadata.from_props(fine, source=SOURCE).model_name == "linear-test"
    refused(props_with("member", Raw("{broken")), "member", "is not valid JSON")
    refused(props_with("member", Raw("[" * 50 + "]" * 50)), "member", "nests JSON 50 levels deep")
    refused(props_with("member", "y" * 2_000_000), "member", "characters, more than")
    other = linear_metadata().to_props()
    other["producer.notes"] = "not json, not ours"
    assert ModelMetadata.from_props(other, source=SOURCE).model_name == "linear-test"


def test_validation_is_table_driven(monkeypatch):
    """A new key is one more KeySpec row (as `member` is); its check sees the other keys."""
    seen = {}

    def check(value, doc):
        seen["names"] = doc["parameter_names"]
        return None if value in ("boss", "apogee") else f"is {value!r}, expected boss or apogee"

    monkeypatch.setattr(metadata, "KEY_SPECS", (*KEY_SPECS, KeySpec("survey", check)))
    with pytest.raises(ModelMetadataError, match=r"'bossnet\.survey' is missing"):
        validate_props(linear_metadata().to_props(), SOURCE)
    refused(props_with("survey", "gaia-zz"), "survey", "is 'gaia-zz', expected boss or apogee")
    assert validate_props(props_with("survey", "apogee"), SOURCE)["survey"] == "apogee"
    assert seen["names"] == ["logg", "logTeff", "FeH", "rv"]


def test_refusal_through_open_model_names_the_model_file(tmp_path):
    path = write_linear_model(tmp_path / "m.onnx", extra_props={"bossnet.stats": "[" * 40 + "]" * 40})
    with pytest.raises(ModelMetadataError,
                       match=rf"^{tmp_path}/m\.onnx: metadata key 'bossnet.stats' nests JSON 40"):
        open_model(path, provider="cpu")


def test_huge_entry_in_a_model_file_is_refused_before_onnxruntime_parses_it(tmp_path,
                                                                          monkeypatch):
    from bossnet_onnx.model.content import metadata_entry_sizes

    big = json.dumps({"blob": "z" * 3_000_000})
    path = write_linear_model(tmp_path / "m.onnx", extra_props={"bossnet.model_config": big})
    sizes = metadata_entry_sizes(path)
    assert sizes["bossnet.model_config"] == len(big)
    assert sizes["bossnet.grid"] == len(linear_metadata().to_props()["bossnet.grid"])
    cache = tmp_path / "cache"
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", str(cache))
    with pytest.raises(ModelMetadataError,
                       match=rf"^{tmp_path}/m\.onnx: metadata key 'bossnet\.model_config' holds "
                             rf"{len(big):,} bytes, more than the 1,000,000 allowed"):
        open_model(path, provider="cpu")
    assert not cache.exists() or not list(cache.glob("*.ort"))
