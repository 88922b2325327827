"""The OpenVINO engine behind the same model interface: choice, checks, outputs, header."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_fixtures import write_linear_model

from bossnet_onnx.errors import ModelError, ModelMetadataError, ProviderError
from bossnet_onnx.model import engine_openvino, engines
from bossnet_onnx.model.content import read_metadata_props
from bossnet_onnx.model.session import open_model

needs_openvino = pytest.mark.skipif(not engine_openvino.available(),
                                    reason="the openvino extra is not installed")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", str(folder))
    return folder


def test_metadata_props_read_without_parsing_the_graph(tmp_path):
    import onnxruntime as ort

    path = write_linear_model(tmp_path / "m.onnx")
    expected = ort.InferenceSession(str(path)).get_modelmeta().custom_metadata_map
    assert read_metadata_props(path) == expected
    assert "bossnet.weights_sha256" in expected
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07\x3a\xff\xff\xff\x0f")  # graph field longer than the file
    with pytest.raises(ModelError, match=r"bad\.onnx: not a loadable ONNX model"):
        read_metadata_props(bad)


def test_engine_choice(monkeypatch):
    monkeypatch.setattr(engines, "_cuda_available", lambda: False)
    monkeypatch.setattr(engine_openvino, "available", lambda: True)
    # fp32 `auto` stays on onnxruntime even with OpenVINO installed: the same numbers as
    # `cpu`, the memory-mapped weights shared between processes, within the memory bound
    assert engines.resolve_engine("auto") == "onnxruntime"
    assert engines.resolve_engine("cpu") == "onnxruntime"
    assert engines.resolve_engine("openvino", "bf16") == "openvino"
    assert engines.resolve_engine("auto", "bf16") == "openvino"
    assert engines.resolve_engine("auto", "int8") == "onnxruntime"
    monkeypatch.setattr(engines, "_cuda_available", lambda: True)
    assert engines.resolve_engine("auto") == "onnxruntime"
    with pytest.raises(ProviderError, match=r"bf16 runs on the openvino engine.*--provider "
                                            "openvino instead of cpu"):
        engines.resolve_engine("cpu", "bf16")
    with pytest.raises(ProviderError, match="int8 runs on onnxruntime"):
        engines.resolve_engine("openvino", "int8")
    with pytest.raises(ProviderError, match="unknown precision 'fp16'"):
        engines.resolve_engine("cpu", "fp16")
    with pytest.raises(ProviderError, match="unknown provider 'tpu'; expected auto, cpu, cuda, "
                                            "openvino"):
        engines.resolve_engine("tpu")


def test_openvino_missing_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_openvino, "available", lambda: False)
    monkeypatch.setattr(engines, "_cuda_available", lambda: False)
    path = write_linear_model(tmp_path / "m.onnx")
    with pytest.raises(ProviderError, match=r"openvino package is not installed; install it "
                                            r"with `pip install 'bossnet-onnx\[openvino\]'`"):
        open_model(path, provider="openvino")
    assert open_model(path, provider="auto").engine == "onnxruntime"  # auto works without it


@needs_openvino
def test_same_outputs_and_checks_as_onnxruntime(tmp_path, cache, rng):
    path = write_linear_model(tmp_path / "m.onnx", seed=4)
    ort_model = open_model(path, provider="cpu", threads=1)
    ov_model = open_model(path, provider="openvino", threads=1)
    assert (ov_model.engine, ov_model.provider, ov_model.precision) == \
        ("openvino", "OpenVINO-CPU", "fp32")
    assert ov_model.metadata.to_props() == ort_model.metadata.to_props()
    x = rng.standard_normal((9, 3900)).astype(np.float32) * 3
    a, b = ort_model.run_physical(x), ov_model.run_physical(x)
    assert np.ptp(a, axis=0).min() > 0  # outputs move with the input
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-4)
    # A second open compiles from the cache folder the first one filled.
    assert any((cache / "openvino").rglob("*.blob"))
    np.testing.assert_array_equal(open_model(path, provider="openvino", threads=1)
                                  .run_physical(x), b)


@needs_openvino
@pytest.mark.parametrize("key", ["bossnet.grid", "bossnet.weights_sha256"])
def test_missing_metadata_key_is_named_on_openvino(tmp_path, cache, key):
    path = write_linear_model(tmp_path / "m.onnx", drop_keys=(key,))
    with pytest.raises(ModelMetadataError, match=f"metadata key '{key}' is missing"):
        open_model(path, provider="openvino")


@needs_openvino
def test_wrong_signature_is_refused_on_openvino(tmp_path, cache):
    path = write_linear_model(tmp_path / "m.onnx", n_pixels=100)
    with pytest.raises(ModelError, match="is not a BOSS Net model: input 'flux' has shape"):
        open_model(path, provider="openvino")


@needs_openvino
def test_not_an_onnx_file_on_openvino(tmp_path, cache):
    path = tmp_path / "junk.onnx"
    path.write_text("not a model\n")
    with pytest.raises(ModelError, match=r"junk\.onnx: not a loadable ONNX model"):
        open_model(path, provider="openvino")


@needs_openvino
def test_bundled_model_on_openvino_matches_onnxruntime(cache, rng):
    from bossnet_onnx.model.precision import heldout_inputs

    ref = open_model(None, provider="cpu", threads=2)
    ov = open_model(None, provider="openvino", threads=2)
    x = heldout_inputs(ref, n=48, seed=5)
    np.testing.assert_allclose(ov.run_normalized(x), ref.run_normalized(x), rtol=0, atol=1e-4)


@needs_openvino
def test_cli_records_engine_and_precision(tmp_path, cache):
    from astropy.io import fits
    from layouts import boss_native_wavelength, write_spec
    from typer.testing import CliRunner

    from bossnet_onnx.cli import app

    wave = boss_native_wavelength()
    flux = (10 + np.random.default_rng(1).standard_normal(wave.size)).astype(np.float32)
    spec = tmp_path / "spec-0001-55555-0001.fits"
    write_spec(spec, wave, flux, np.ones(wave.size, np.float32), plate=1, mjd=55555, fiberid=1)
    out = tmp_path / "cat.fits"
    result = CliRunner().invoke(app, ["predict", str(spec), "-o", str(out), "--draws", "3",
                                      "--provider", "openvino"])
    assert result.exit_code == 0, result.output
    header = fits.getheader(out, 1)
    assert (header["ENGINE"], header["PROVIDER"], header["PRECISN"]) == \
        ("openvino", "OpenVINO-CPU", "fp32")
    assert "on OpenVINO-CPU fp32" in result.output
    result = CliRunner().invoke(app, ["predict", str(spec), "--precision", "fp16"])
    assert result.exit_code == 2
    assert "'fp16' is not one of fp32, bf16, int8" in result.output


@needs_openvino
def test_load_keeps_engine_and_precision(cache):
    import bossnet_onnx

    model = bossnet_onnx.load(None, provider="openvino", threads=1)
    assert (model.engine, model.precision, model.provider) == ("openvino", "fp32", "OpenVINO-CPU")


@needs_openvino
def test_openvino_model_serves_threads(tmp_path, cache, rng):
    # An OpenVINO InferRequest runs one call at a time; each thread must get its own.
    import threading

    model = open_model(write_linear_model(tmp_path / "m.onnx", seed=3), provider="openvino",
                       threads=1)
    xs = [rng.standard_normal((16, 3900)).astype(np.float32) for _ in range(4)]
    expected = [model.run_physical(x) for x in xs]
    got: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        for _ in range(20):
            got[i] = model.run_physical(xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        np.testing.assert_array_equal(got[i], expected[i])
