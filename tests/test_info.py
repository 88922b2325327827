"""`model_info` / `bossnet-onnx info`: what a model file says about itself, checked per key."""
from __future__ import annotations

import hashlib
import json
import re

import onnxruntime as ort
import pytest
from onnx_fixtures import linear_metadata, write_linear_model
from typer.testing import CliRunner

from bossnet_onnx.cli import app
from bossnet_onnx.errors import ModelError, ModelMetadataError
from bossnet_onnx.model.info import format_model_info, model_info
from bossnet_onnx.model.metadata import DEFAULT_STATS, PREPROCESSING_VERSION


@pytest.fixture
def demo_model(tmp_path):
    meta = linear_metadata(
        model_name="bossnet-demo-test", provenance="synthetic-demo",
        description="demonstration model trained on synthetic spectra; for science, export "
                    "the published weights",
        weights_sha256="ab" * 32, exporter={"package": "bossnet_export", "version": "0.1.0",
                                            "torch": "2.13.0"})
    return write_linear_model(tmp_path / "demo.onnx", metadata=meta)


def test_model_info_content(demo_model):
    info = model_info(demo_model)
    data = demo_model.read_bytes()
    assert info["path"] == str(demo_model.resolve())
    assert info["file_size_bytes"] == len(data)
    assert info["file_sha256"] == hashlib.sha256(data).hexdigest()
    assert info["weights_sha256"] == "ab" * 32
    assert info["model_name"] == "bossnet-demo-test"
    assert info["provenance"] == "synthetic-demo" and info["is_demo"] is True
    assert "for science, export the published weights" in info["provenance_text"]
    assert info["description"].startswith("demonstration model trained on synthetic spectra")
    assert info["grid"]["start"] == pytest.approx(3800.0)
    assert info["grid"]["stop"] == pytest.approx(8900.0)
    assert info["grid"]["n"] == 3900
    assert info["grid"]["step"] == pytest.approx(5100.0 / 3899, rel=1e-6)
    assert info["parameters"] == ["logg", "logTeff", "FeH", "rv"]
    assert info["stats"] == {p: DEFAULT_STATS[p] for p in info["parameters"]}
    assert list(info["stats"]["logg"])[:2] == ["MEAN", "STD"]
    assert info["preprocessing"]["version"] == PREPROCESSING_VERSION
    assert info["preprocessing"]["clip_quantile"] == 0.95
    assert info["opset"] == 17
    assert info["exporter"] == {"package": "bossnet_export", "version": "0.1.0",
                                "torch": "2.13.0"}
    assert info["batch"] == "dynamic" and info["fixed_batch_size"] is None
    assert info["inputs"] == {"flux": {"shape": ["batch", 3900], "type": "tensor(float)"}}
    assert info["outputs"]["physical"]["shape"] == ["batch", 4]
    assert info["available_providers"] == ort.get_available_providers()
    assert "CPUExecutionProvider" in info["available_providers"]
    assert info["onnxruntime_version"] == ort.__version__
    json.dumps(info)  # JSON-ready as it stands


def test_fixed_batch_and_published_provenance(tmp_path):
    meta = linear_metadata(provenance="published-weights", description="")
    path = write_linear_model(tmp_path / "fixed.onnx", batch=8, metadata=meta)
    info = model_info(path)
    assert info["batch"] == "fixed 8" and info["fixed_batch_size"] == 8
    assert info["inputs"]["flux"]["shape"] == [8, 3900]
    assert info["is_demo"] is False
    assert info["provenance_text"].startswith("exported from the published BOSS Net weights")
    text = format_model_info(info)
    assert "description" not in text  # empty description: no line
    assert fields(text)["batch"] == "fixed 8"


def fields(text: str) -> dict[str, str]:
    """Printed lines as {key: value}; keys and values are separated by two or more spaces."""
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in text.splitlines())


def test_printed_text(demo_model):
    text = format_model_info(model_info(demo_model))
    lines = fields(text)
    assert lines["model"] == "bossnet-demo-test"
    assert lines["provenance"].startswith("synthetic-demo: demonstration model trained on "
                                          "synthetic spectra; for science, export")
    assert lines["grid"] == "3800.0-8900.0 A, 3900 points (step 1.3080 A)"
    assert lines["stats logTeff"] == "MEAN 3.8, STD 0.1, PNMAX 12, PNMIN -6.32491"
    assert lines["parameters"] == "logg, logTeff, FeH, rv"
    assert lines["exporter"] == "package bossnet_export, torch 2.13.0, version 0.1.0"  # as stored (sorted)
    assert lines["file sha256"] == hashlib.sha256(demo_model.read_bytes()).hexdigest()
    assert lines["weights sha256"] == "ab" * 32
    size_kib = demo_model.stat().st_size / 1024
    assert lines["file"] == f"{demo_model.resolve()} ({size_kib:.1f} KiB)"
    assert lines["batch"] == "dynamic"
    assert lines["opset"] == "17"
    assert lines["preprocessing"] == PREPROCESSING_VERSION
    assert "CPUExecutionProvider" in lines["onnxruntime"]
    from bossnet_onnx.model import engine_openvino

    if engine_openvino.available():
        assert lines["openvino"].startswith(f"{engine_openvino.version()}; bf16 on this CPU: ")
    else:
        assert lines["openvino"] == "not installed (pip install 'bossnet-onnx[openvino]')"
    # Keys line up: every value starts in the same column.
    assert len({line.index(v) for line, v in zip(text.splitlines(), lines.values())}) == 1


def test_cli_info_text_and_json(demo_model):
    runner = CliRunner()
    result = runner.invoke(app, ["info", str(demo_model)])
    assert result.exit_code == 0, result.output
    assert result.stdout == format_model_info(model_info(demo_model)) + "\n"
    result = runner.invoke(app, ["info", str(demo_model), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == model_info(demo_model)


def test_cli_info_errors_are_one_line(tmp_path):
    runner = CliRunner()
    missing = tmp_path / "none.onnx"
    result = runner.invoke(app, ["info", str(missing)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {missing}: model file not found; give an exported .onnx file or a model name "
        f"(boss) with --model"]
    bare = write_linear_model(tmp_path / "bare.onnx", drop_keys=("bossnet.weights_sha256",))
    result = runner.invoke(app, ["info", str(bare)])
    assert result.exit_code == 1
    assert "metadata key 'bossnet.weights_sha256' is missing" in result.stderr
    with pytest.raises(ModelMetadataError, match=r"bare.onnx: metadata key 'bossnet.weights"):
        model_info(bare)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not onnx" * 64)
    with pytest.raises(ModelError, match=r"junk.onnx: not a loadable ONNX model"):
        model_info(junk)


def test_default_model_info():
    from bossnet_onnx.model.files import default_model_path

    try:
        path = default_model_path()
    except ModelError as exc:
        pytest.skip(f"no bundled default model yet ({exc})")
    info = model_info()
    assert info["path"] == str(path.resolve())
    assert info["provenance"] in ("synthetic-demo", "published-weights")
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 0 and info["model_name"] in result.stdout
