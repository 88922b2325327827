"""Model loading: providers, threads, metadata refusal, signature checks, fixed batches."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from onnx_fixtures import linear_metadata, write_linear_model

from bossnet_onnx.errors import ModelError, ModelMetadataError, ProviderError
from bossnet_onnx.model.metadata import ModelMetadata
from bossnet_onnx.model.session import available_cpus, open_model, resolve_providers


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
    from bossnet_onnx.model.engines import resolve_engine

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


# ------------------------------------------------------- outputs checked at load
@pytest.mark.parametrize("batch", [None, 4])
@pytest.mark.parametrize(("hostile", "message"), [
    ("reverse", "a spectrum's outputs depend on its position or neighbours in the batch"),
    ("roll3", "a spectrum's outputs depend on its position or neighbours in the batch"),
    ("mix", "a spectrum's outputs depend on its position or neighbours in the batch"),
    ("collapse", r"output 'normalized' has shape \[1, 4\] for a batch of \d+, expected \[\d+, 4\]"),
    ("nan", "returns non-finite outputs for finite spectrum-like input"),
])
def test_hostile_models_are_refused_at_load_with_one_line(tmp_path, hostile, message, batch):
    path = write_linear_model(tmp_path / f"{hostile}.onnx", hostile=hostile, batch=batch,
                              scale=2.0)
    with pytest.raises(ModelError, match=message) as info:
        open_model(path, provider="cpu")
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_wrong_output_count_is_refused(tmp_path):
    meta = linear_metadata(parameter_names=("logg", "logTeff", "FeH", "rv", "extra"),
                           stats={**linear_metadata().stats, "extra": {"MEAN": 0, "STD": 1}})
    path = write_linear_model(tmp_path / "m.onnx")
    import onnx
    from onnx import helper
    model = onnx.load(str(path))
    del model.metadata_props[:]
    helper.set_model_props(model, meta.to_props())
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match=r"output 'normalized' has shape \['batch', 4\], "
                                         r"expected \[batch, 5\]"):
        open_model(path, provider="cpu")


def _counting(monkeypatch):
    """Count the engine calls of every BossNetModel (real session runs underneath)."""
    from bossnet_onnx.model.session import BossNetModel

    calls: list[int] = []
    real = BossNetModel._run_batch

    def counted(self, chunk):
        calls.append(chunk.shape[0])
        return real(self, chunk)

    monkeypatch.setattr(BossNetModel, "_run_batch", counted)
    return calls


def test_probe_refuses_a_graph_that_permutes_only_batches_of_three_or_more(tmp_path):
    """The graph keeps rows in order for batches of 1 and 2 (what the old two-row probe saw)
    and rotates the first three rows of larger batches: refused at load, whatever the batch."""
    path = write_linear_model(tmp_path / "roll3.onnx", hostile="roll3", scale=2.0)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(3).standard_normal((4, 3900)).astype(np.float32)
    one = [sess.run(["normalized"], {"flux": x[i:i + 1]})[0][0] for i in range(4)]
    np.testing.assert_array_equal(sess.run(["normalized"], {"flux": x[:2]})[0], one[:2])
    assert not np.allclose(sess.run(["normalized"], {"flux": x[:3]})[0], one[:3])  # the trap
    for rows in (1, 2, 3, 7, 32):
        with pytest.raises(ModelError, match=r"roll3\.onnx: a spectrum's outputs depend on its "
                                             rf"position .* in a batch of {max(3, rows)} rolled"):
            open_model(path, provider="cpu", batch_rows=rows)


def test_probe_runs_at_the_run_batch_and_is_remembered_with_the_content_hash(
        tmp_path, monkeypatch):
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", str(tmp_path / "cache"))
    path = write_linear_model(tmp_path / "m.onnx")
    calls = _counting(monkeypatch)
    model = open_model(path, provider="cpu", batch_rows=7)
    assert calls == [7, 7, 7, 2, 1]  # a batch, rolled, two rows swapped; a pair, one alone
    calls.clear()
    again = open_model(path, provider="cpu", batch_rows=7)
    assert calls == [] and 7 in again.probed  # remembered: the next start runs no forward
    again.check_batch(5)
    assert calls == [5, 5, 5, 2, 1]
    calls.clear()
    model.check_batch(5)  # another model object: remembered across objects too
    assert calls == []
    # A new export at the same path (other bytes) is a new model: probed again.
    write_linear_model(path, seed=9)
    import os
    os.utime(path, ns=(1, 1))
    open_model(path, provider="cpu", batch_rows=7)
    assert calls == [7, 7, 7, 2, 1]


def test_probe_is_not_remembered_without_a_cache_nor_from_a_planted_file(tmp_path, monkeypatch):
    from bossnet_onnx.model import ort_cache

    path = write_linear_model(tmp_path / "m.onnx")
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", "off")
    calls = _counting(monkeypatch)
    open_model(path, provider="cpu", batch_rows=4)
    open_model(path, provider="cpu", batch_rows=4)
    assert calls == [4, 4, 4, 2, 1] * 2
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", str(tmp_path / "cache"))
    open_model(path, provider="cpu", batch_rows=4)
    (stored,) = (tmp_path / "cache" / ort_cache.VERDICTS_DIR).glob("probe-*.json")
    stored.chmod(0o666)  # writable by others: could have been planted, so not trusted
    calls.clear()
    open_model(path, provider="cpu", batch_rows=4)
    assert calls == [4, 4, 4, 2, 1]


def test_probe_is_distinct_finite_spectrum_like_rows():
    from bossnet_onnx.model.session import probe_inputs
    x = probe_inputs(3900)
    assert x.shape == (3, 3900) and x.dtype == np.float32 and np.isfinite(x).all()
    assert x.min() > 1.0 and x.max() < 4.0  # log of 5-50 flux units, like preprocessed spectra
    assert np.min(np.abs(x[0] - x[1])) >= 0 and not np.allclose(x[0], x[1])
    np.testing.assert_array_equal(x, probe_inputs(3900))
    many = probe_inputs(3900, 32)
    np.testing.assert_array_equal(many[:3], x)
    distances = np.abs(many[:, None, :] - many[None, :, :]).max(axis=2)
    assert (distances + np.eye(32) * 9).min() > 0.05 and many.min() > 1.0 and many.max() < 4.0


def test_run_checks_the_batch_shape_of_every_call(tmp_path, rng):
    """A model can pass the load probe and still collapse larger batches: every call is checked."""
    model = open_model(write_linear_model(tmp_path / "m.onnx"), provider="cpu")
    real = model.session

    class Collapsing:  # the real session, with its output batch axis cut to one row
        def run(self, names, feeds):
            return [out[:1] for out in real.run(names, feeds)]

    model.session = Collapsing()
    with pytest.raises(ModelError, match=r"has shape \[1, 4\] for a batch of 32, expected \[32, 4\]"):
        model.run_normalized(rng.standard_normal((5, 3900)).astype(np.float32))


def test_nonfinite_output_for_one_spectrum_is_a_failure_row_not_garbage(tmp_path):
    """log(min(flux)) inside the graph: NaN only for a spectrum with a negative input pixel."""
    layouts = __import__("layouts")
    from bossnet_onnx.run.stream import predict
    path = write_linear_model(tmp_path / "m.onnx", hostile="log-min", scale=2.0)
    wave = layouts.boss_native_wavelength()
    files = []
    for i, level in enumerate((20.0, 0.5)):  # log(0.5) < 0 in the model input: NaN for star 2
        flux = np.full(wave.size, level, np.float32) * (1 + 0.01 * np.sin(wave / 50))
        f = tmp_path / f"spec-1000-59000-000{i + 1}.fits"
        layouts.write_spec(f, wave, flux.astype(np.float32), np.full(wave.size, 4.0, np.float32),
                           plate=1000, mjd=59000, fiberid=i + 1)
        files.append(str(f))
    table = predict(files, model=path, draws=0, seed=0)
    assert table["result_flags"][0] & 1 == 0 and np.isfinite(table["teff"][0])
    assert table["result_flags"][1] & 1 == 1 and np.isnan(table["teff"][1])
    assert table["error"][1] == (f"{files[1]}[HDU 1]: model returned non-finite logg, logTeff, "
                                 f"FeH, rv for this (finite) input; no labels for this spectrum")


def test_absurd_log_teff_is_a_failure_row_not_an_overflow(tmp_path):
    layouts = __import__("layouts")
    from bossnet_onnx.run.stream import predict
    stats = {**linear_metadata().stats, "logTeff": {"MEAN": 400.0, "STD": 0.1}}
    path = write_linear_model(tmp_path / "m.onnx", metadata=linear_metadata(stats=stats))
    wave = layouts.boss_native_wavelength()
    f = tmp_path / "spec-1000-59000-0001.fits"
    layouts.write_spec(f, wave, np.full(wave.size, 20, np.float32),
                       np.full(wave.size, 4.0, np.float32), plate=1000, mjd=59000, fiberid=1)
    table = predict([str(f)], model=path, draws=2, seed=0)
    assert table["result_flags"][0] & 1 == 1
    assert "for which Teff overflows" in table["error"][0]


def test_model_that_fails_at_run_time_is_a_model_error_per_row_not_a_bug(tmp_path):
    """onnxruntime failing inside a run (here: on bright spectra; the load probe's pass) is the
    model's fault: each spectrum's row names the model and onnxruntime's first line, never
    'unexpected' (our word for a bug of ours) or a traceback."""
    import layouts
    from typer.testing import CliRunner

    from bossnet_onnx.cli import app

    model = write_linear_model(tmp_path / "m.onnx", hostile="fail-over-3")
    loaded = open_model(model, provider="cpu")  # the load probe's small batches pass
    with pytest.raises(ModelError, match=r"m\.onnx: onnxruntime failed running the model on "
                                         r"a batch of \d+ \(.*\); the model file is damaged"):
        loaded.run_physical(np.full((4, 3900), 6.5, np.float32))
    wave = layouts.boss_native_wavelength()
    files = []
    for i in range(5):
        path = tmp_path / f"spec-5000-59000-{i + 1:04d}.fits"
        layouts.write_spec(path, wave, (900 + np.sin(wave / (60 + 7 * i))).astype(np.float32),
                           np.full(wave.size, 4.0, np.float32), plate=5000, mjd=59000,
                           fiberid=i + 1)
        files.append(str(path))
    out = CliRunner().invoke(app, ["predict", *files, "--model", str(model), "--draws", "4",
                                   "-o", str(tmp_path / "cat.fits")])
    assert "Traceback" not in out.output and "unexpected" not in out.output
    failed = [line for line in out.output.splitlines() if line.startswith("failed:")]
    assert len(failed) == 5
    assert all("model error: " in line and "onnxruntime failed running the model" in line
               for line in failed)


def test_io_binding_call_gives_the_same_bits_as_run(tmp_path):
    """The CUDA path's IO-binding call, exercised on the CPU device: the same bits as `run`."""
    from onnx_fixtures import write_conv_model

    from bossnet_onnx.model.session import CALL_ROWS, CUDA_CALL_ROWS, probe_inputs
    model = open_model(write_conv_model(tmp_path / "conv.onnx"), provider="cpu", threads=2)
    x = probe_inputs(3900, CALL_ROWS)
    (plain,) = model.session.run(["normalized"], {"flux": x})
    bound = model._run_bound(x, "cpu")
    assert bound.dtype == np.float32 and bound.tobytes() == plain.tobytes()
    assert model.call_rows == CALL_ROWS
    model.provider = "CUDAExecutionProvider"  # the call size follows the device
    assert model.call_rows == CUDA_CALL_ROWS


@pytest.mark.gpu
def test_cuda_runs_bound_device_sized_calls_close_to_cpu(tmp_path):
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("no CUDA provider in this onnxruntime (CI has no GPU)")
    from onnx_fixtures import write_conv_model

    from bossnet_onnx.model.session import CUDA_CALL_ROWS, probe_inputs
    path = write_conv_model(tmp_path / "conv.onnx")
    gpu = open_model(path, provider="cuda")
    assert gpu.provider == "CUDAExecutionProvider" and gpu.call_rows == CUDA_CALL_ROWS
    x = probe_inputs(3900, 300)
    cpu = open_model(path, provider="cpu").run_normalized(x)
    # fp32 on the GPU (TF32 off, session.CUDA_OPTIONS): float32 rounding, not TF32's 1e-3
    np.testing.assert_allclose(gpu.run_normalized(x), cpu, rtol=1e-5, atol=1e-5)


def test_cuda_sessions_ask_for_full_float32():
    """onnxruntime lets cuBLAS/cuDNN use TF32 on Ampere+ GPUs unless told not to; fp32 is fp32."""
    from bossnet_onnx.model.session import provider_entries
    assert provider_entries(["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        ("CUDAExecutionProvider", {"use_tf32": "0"}), "CPUExecutionProvider"]
    assert provider_entries(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
