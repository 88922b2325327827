"""Model loading: providers, threads, metadata refusal, signature checks, fixed batches."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from onnx_fixtures import linear_metadata, write_linear_model

from bossnet_onnx.errors import ModelError, ModelMetadataError, ProviderError
from bossnet_onnx.metadata import ModelMetadata
from bossnet_onnx.session import available_cpus, open_model, resolve_providers


def test_open_and_run_linear_model(tmp_path, rng):
    path = write_linear_model(tmp_path / "m.onnx")
    model = open_model(path, provider="cpu", threads=1)
    assert model.provider == "CPUExecutionProvider"
    assert model.threads == 1
    x = rng.standard_normal((3, 3900)).astype(np.float32)
    normalized = model.run_normalized(x)
    physical = model.run_physical(x)
    np.testing.assert_allclose(physical, normalized * model.metadata.stds + model.metadata.means,
                               rtol=1e-6)
    assert model.metadata.parameter_names == ("logg", "logTeff", "FeH", "rv")


def test_fixed_batch_model_is_fed_padded_chunks(tmp_path, rng):
    dyn = open_model(write_linear_model(tmp_path / "d.onnx", seed=1), provider="cpu")
    fixed = open_model(write_linear_model(tmp_path / "f.onnx", seed=1, batch=4), provider="cpu")
    assert fixed.fixed_batch == 4
    x = rng.standard_normal((9, 3900)).astype(np.float32)
    np.testing.assert_allclose(fixed.run_normalized(x), dyn.run_normalized(x), rtol=1e-5, atol=1e-6)


def test_default_threads_is_affinity():
    assert available_cpus() >= 1
    import os
    assert available_cpus() <= len(os.sched_getaffinity(0))


def test_cuda_request_without_cuda_is_an_error(tmp_path):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(ProviderError, match=r"no CUDA support.*--provider cpu"):
        open_model(write_linear_model(tmp_path / "m.onnx"), provider="cuda")


def test_auto_falls_back_to_cpu_and_says_so(tmp_path):
    from bossnet_onnx.engines import resolve_engine

    model = open_model(write_linear_model(tmp_path / "m.onnx"), provider="auto")
    if resolve_engine("auto") == "openvino":  # the openvino extra on x86-64: measured faster
        assert (model.engine, model.provider) == ("openvino", "OpenVINO-CPU")
    else:
        assert model.provider in ort.get_available_providers()
    assert resolve_providers("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(ProviderError, match="unknown provider 'tpu'"):
        resolve_providers("tpu")


@pytest.mark.parametrize("key", ["bossnet.grid", "bossnet.stats", "bossnet.weights_sha256",
                                 "bossnet.preprocessing", "bossnet.parameter_names"])
def test_missing_metadata_key_is_named(tmp_path, key):
    path = write_linear_model(tmp_path / "m.onnx", drop_keys=(key,))
    with pytest.raises(ModelMetadataError, match=f"metadata key '{key}' is missing"):
        open_model(path, provider="cpu")


def test_inconsistent_metadata_is_refused():
    props = linear_metadata().to_props()
    bad = dict(props)
    stats = json.loads(bad["bossnet.stats"])
    stats["rv"]["STD"] = 0
    bad["bossnet.stats"] = json.dumps(stats)
    with pytest.raises(ModelMetadataError, match=r"'bossnet.stats' 'rv.STD' is 0, expected > 0"):
        ModelMetadata.from_props(bad)
    bad = dict(props)
    pre = json.loads(bad["bossnet.preprocessing"])
    pre["version"] = "other"
    bad["bossnet.preprocessing"] = json.dumps(pre)
    with pytest.raises(ModelMetadataError, match="preprocessing' version is 'other'"):
        ModelMetadata.from_props(bad)
    bad = dict(props, **{"bossnet.grid": "{not json"})
    with pytest.raises(ModelMetadataError, match=r"'bossnet.grid' is not valid JSON"):
        ModelMetadata.from_props(bad)


def test_metadata_round_trip_keeps_exact_grid():
    meta = linear_metadata()
    back = ModelMetadata.from_props(meta.to_props())
    np.testing.assert_array_equal(back.grid, meta.grid)
    assert back.grid.dtype == np.float32
    assert back.stats == meta.stats


def test_wrong_input_shape_is_not_bossnet(tmp_path):
    path = write_linear_model(tmp_path / "m.onnx", n_pixels=4648)
    with pytest.raises(ModelError, match=r"is not a BOSS Net model: input 'flux' has shape \['batch', 4648\]"):
        open_model(path, provider="cpu")


def test_corrupted_and_missing_model(tmp_path):
    path = write_linear_model(tmp_path / "m.onnx")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelError, match=r"m\.onnx: not a loadable ONNX model"):
        open_model(path, provider="cpu")
    with pytest.raises(ModelError, match=r"nope\.onnx: model file not found"):
        open_model(tmp_path / "nope.onnx")
    text = tmp_path / "t.onnx"
    text.write_text("hello")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        open_model(text)
