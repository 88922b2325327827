"""Export of a small BOSS Net: real torch export, real onnxruntime sessions, real numbers."""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

import onnxruntime as ort  # noqa: E402

from bossnet_export import export_model, export_module, parity, state_dict_sha256  # noqa: E402
from bossnet_export.parity import check_parity, output_spread, parity_inputs, torch_outputs  # noqa: E402
from bossnet_export.random_weights import (  # noqa: E402
    SMALL_CONFIG,
    build_random_model,
    save_official_layout,
    save_state_dict,
)
from bossnet_onnx.errors import ExportError, ParityError  # noqa: E402
from bossnet_onnx.model.metadata import DEFAULT_PARAMETER_NAMES, DEFAULT_STATS, ModelMetadata  # noqa: E402

pytestmark = pytest.mark.export

SHA = "ab" * 32


@pytest.fixture(scope="module")
def small_model():
    return build_random_model(SMALL_CONFIG, seed=3)


@pytest.fixture(scope="module")
def exported(small_model, tmp_path_factory):
    """One small export shared by the read-only checks below."""
    out = tmp_path_factory.mktemp("small") / "small.onnx"
    report = export_module(small_model, out, weights_sha256=SHA, name="small-test",
                           provenance="random-weights", description="test net")
    return out, report


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_random_model_outputs_depend_on_input(small_model):
    # A parity test on a network that ignores its input would prove nothing.
    assert output_spread(small_model, 3900) > 0.02


def test_parity_report_figures(exported):
    out, report = exported
    assert out.is_file()
    assert set(report.parity.cases) == {"random-normal-b1", "random-normal-b8",
                                        "spectrum-like-b1", "spectrum-like-b8"}
    assert report.max_abs_diff < 1e-4
    assert max(report.parity.physical_cases.values()) < 1e-4
    assert report.output_spread > 0.02
    assert "max |onnx - torch|" in report.summary()


def test_graph_has_fixed_length_and_dynamic_batch(exported):
    out, _ = exported
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    (inp,) = model.graph.input
    assert inp.name == "flux"
    batch_dim, length_dim = inp.type.tensor_type.shape.dim
    assert length_dim.HasField("dim_value") and length_dim.dim_value == 3900
    assert not length_dim.dim_param
    assert batch_dim.dim_param and not batch_dim.HasField("dim_value")
    assert [o.name for o in model.graph.output] == ["normalized", "physical"]


@pytest.mark.parametrize("batch", [1, 7])
def test_exported_graph_runs_at_any_batch(exported, small_model, batch):
    out, _ = exported
    rows = np.random.default_rng(batch).standard_normal((batch, 3900)).astype(np.float32)
    normalized, physical = _session(out).run(None, {"flux": rows})
    expected = torch_outputs(small_model, rows)
    assert normalized.shape == physical.shape == (batch, 4)
    np.testing.assert_allclose(normalized, expected, atol=1e-4, rtol=0)
    std = np.array([DEFAULT_STATS[p]["STD"] for p in DEFAULT_PARAMETER_NAMES])
    mean = np.array([DEFAULT_STATS[p]["MEAN"] for p in DEFAULT_PARAMETER_NAMES])
    np.testing.assert_allclose(physical, normalized * std + mean, rtol=1e-5, atol=1e-4)


def test_wrong_length_is_refused_by_the_graph(exported):
    out, _ = exported
    with pytest.raises(Exception, match=r"(?i)dimension|shape|index"):
        _session(out).run(None, {"flux": np.zeros((1, 3899), np.float32)})


def test_metadata_round_trip(exported):
    out, _report = exported
    model = onnx.load(str(out))
    props = {p.key: p.value for p in model.metadata_props}
    meta = ModelMetadata.from_props(props, source=str(out))
    assert meta.model_name == "small-test"
    assert meta.provenance == "random-weights"
    assert meta.description == "test net"
    assert meta.parameter_names == ("logg", "logTeff", "FeH", "rv")
    assert meta.weights_sha256 == SHA
    assert meta.stats["rv"]["STD"] == pytest.approx(60.9)
    assert meta.batch_size is None
    assert meta.opset == 18
    assert meta.model_config["kernel_size"] == 30
    assert meta.exporter["torch"] == torch.__version__
    assert "dynamo" in meta.exporter["route"]
    # The exact float32 values of the reference's torch.linspace, not a numpy re-computation.
    reference = torch.linspace(3800, 8900, 3900).numpy()
    assert meta.grid.dtype == np.float32
    np.testing.assert_array_equal(meta.grid, reference)
    assert meta.grid[0] == 3800.0 and meta.grid[-1] == 8900.0


def test_fixed_batch_export(small_model, tmp_path):
    out = tmp_path / "b3.onnx"
    report = export_module(small_model, out, weights_sha256=SHA, batch=3)
    dims = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [3, 3900]
    assert set(report.parity.cases) == {"random-normal-b3", "spectrum-like-b3"}
    assert report.max_abs_diff < 1e-4
    assert report.metadata.batch_size == 3


def test_official_layout_and_pt_give_same_graph(small_model, tmp_path):
    save_official_layout(small_model, tmp_path / "ck", n_chunks=10)
    pt = save_state_dict(small_model, tmp_path / "w.pt")
    joined = b"".join((tmp_path / "ck" / f"model_chunk_{i}").read_bytes() for i in range(10))
    assert state_dict_sha256(small_model) == hashlib.sha256(joined).hexdigest()
    a = export_model(tmp_path / "ck", tmp_path / "a.onnx", provenance="random-weights")
    b = export_model(pt, tmp_path / "b.onnx", config=tmp_path / "ck" / "model_args.yaml")
    assert a.metadata.model_name == "ck" and b.metadata.model_name == "w"
    assert a.metadata.weights_sha256 == state_dict_sha256(small_model)
    assert b.metadata.weights_sha256 == hashlib.sha256(pt.read_bytes()).hexdigest()
    rows = parity_inputs(3900, (4,), seed=9)["spectrum-like-b4"]
    out_a = _session(tmp_path / "a.onnx").run(["normalized"], {"flux": rows})[0]
    out_b = _session(tmp_path / "b.onnx").run(["normalized"], {"flux": rows})[0]
    np.testing.assert_array_equal(out_a, out_b)


def test_parity_failure_deletes_output(small_model, tmp_path, monkeypatch):
    # A tolerance of 0 cannot be met (the check is strict <), so the fatal path must run.
    monkeypatch.setattr(parity, "PARITY_ATOL", 0.0)
    out = tmp_path / "never.onnx"
    with pytest.raises(ParityError, match=r"never\.onnx: ONNX output differs from PyTorch.*atol=0e\+00"):
        export_module(small_model, out, weights_sha256=SHA)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_tampered_initializer_fails_parity(exported, small_model, tmp_path):
    out, _ = exported
    model = onnx.load(str(out))
    target = next(t for t in model.graph.initializer if "linear_sequential.0" in t.name
                  and "weight" in t.name)
    weights = onnx.numpy_helper.to_array(target).copy()
    weights.flat[::97] += 0.05
    target.CopyFrom(onnx.numpy_helper.from_array(weights, target.name))
    bad = tmp_path / "tampered.onnx"
    onnx.save(model, str(bad))
    std = np.array([DEFAULT_STATS[p]["STD"] for p in DEFAULT_PARAMETER_NAMES])
    mean = np.array([DEFAULT_STATS[p]["MEAN"] for p in DEFAULT_PARAMETER_NAMES])
    with pytest.raises(ParityError, match=r"tampered\.onnx: ONNX output differs"):
        check_parity(small_model, bad, mean, std)


def test_int8_quantized_copy(small_model, tmp_path):
    out = tmp_path / "q.onnx"
    report = export_module(small_model, out, weights_sha256=SHA, quantize="int8", name="q")
    q = report.quantized
    assert q.output == tmp_path / "q.int8.onnx" and q.output.is_file()
    # 512x64 and 64x64 hold >= 10% of the head's weights each; the 64x4 output layer does not.
    assert (q.n_quantized, q.n_linear) == (2, SMALL_CONFIG.num_linear + 1)
    assert set(q.physical_max_abs) == {"logg", "Teff", "FeH", "rv"}
    # Quantization error is real but bounded: well under the scatter of the outputs.
    assert 0 < q.physical_max_abs["logg"] < 0.1
    assert 0 < q.physical_max_abs["Teff"] < 300
    model = onnx.load(str(q.output))
    ops = {n.op_type for n in model.graph.node}
    assert "DynamicQuantizeLinear" in ops or "MatMulInteger" in ops
    meta = ModelMetadata.from_props({p.key: p.value for p in model.metadata_props})
    assert meta.model_name == "q-int8"
    assert "int8" in meta.exporter["quantization"]
    assert "int8" in report.summary()


def test_bad_arguments_are_export_errors(small_model, tmp_path):
    with pytest.raises(ExportError, match="provenance 'mine' is not one of"):
        export_module(small_model, tmp_path / "x.onnx", weights_sha256=SHA, provenance="mine")
    with pytest.raises(ExportError, match="weights_sha256 'abc' is not a 64-digit"):
        export_module(small_model, tmp_path / "x.onnx", weights_sha256="abc")
    with pytest.raises(ExportError, match=r"folder .*nowhere does not exist"):
        export_module(small_model, tmp_path / "nowhere" / "x.onnx", weights_sha256=SHA)
    with pytest.raises(ExportError, match="--opset 17 is too old"):
        export_module(small_model, tmp_path / "x.onnx", weights_sha256=SHA, opset=17)
    with pytest.raises(ExportError, match="--quantize 'int4' is not supported"):
        export_module(small_model, tmp_path / "x.onnx", weights_sha256=SHA, quantize="int4")


def test_stats_override_changes_physical_output(small_model, tmp_path):
    stats = json.loads(json.dumps(DEFAULT_STATS))
    stats["rv"] = {"MEAN": 10.0, "STD": 2.0}
    report = export_module(small_model, tmp_path / "s.onnx", weights_sha256=SHA, stats=stats)
    rows = parity_inputs(3900, (2,), seed=1)["random-normal-b2"]
    normalized, physical = _session(tmp_path / "s.onnx").run(None, {"flux": rows})
    np.testing.assert_allclose(physical[:, 3], normalized[:, 3] * 2.0 + 10.0, rtol=1e-6)
    assert report.metadata.stats["rv"] == {"MEAN": 10.0, "STD": 2.0}


def test_cli_export(small_model, tmp_path):
    from typer.testing import CliRunner

    from bossnet_onnx.cli import app

    save_official_layout(small_model, tmp_path / "ck")
    out = tmp_path / "cli.onnx"
    result = CliRunner().invoke(app, ["export", str(tmp_path / "ck"), "-o", str(out),
                                      "--name", "cli-net", "--provenance", "random-weights",
                                      "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "max |onnx - torch| =" in result.output and "batch 2" in result.output
    meta = ModelMetadata.from_props({p.key: p.value for p in onnx.load(str(out)).metadata_props})
    assert (meta.model_name, meta.batch_size) == ("cli-net", 2)


def test_cli_export_errors_are_one_line(tmp_path):
    from typer.testing import CliRunner

    from bossnet_onnx.cli import app

    (tmp_path / "ck").mkdir()
    result = CliRunner().invoke(app, ["export", str(tmp_path / "ck"), "-o",
                                      str(tmp_path / "x.onnx")])
    assert result.exit_code == 1
    assert "no model_chunk_<i> files" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(app, ["export", str(tmp_path / "ck"), "-o",
                                      str(tmp_path / "x.onnx"), "--quantize", "int4"])
    assert result.exit_code == 2


def test_int8_all_layers(exported, small_model, tmp_path):
    from bossnet_export.quantize import quantize_int8

    out, report = exported
    q = quantize_int8(out, tmp_path / "all.onnx", small_model, report.metadata, layers="all")
    assert (q.n_quantized, q.n_linear) == (3, 3)
    assert q.physical_max_abs["rv"] > 0
    with pytest.raises(ExportError, match="would overwrite the float model"):
        quantize_int8(out, out, small_model, report.metadata)


def test_cli_export_without_the_extra(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from bossnet_onnx.cli import app

    monkeypatch.setitem(sys.modules, "bossnet_export", None)  # import now raises ImportError
    result = CliRunner().invoke(app, ["export", str(tmp_path), "-o", str(tmp_path / "x.onnx"),
                                      "--converter", "torch"])
    assert result.exit_code == 1
    assert result.output.strip() == ("error: --converter torch needs the export extra: pip "
                                     "install 'bossnet-onnx[cpu,export]' (or use --converter "
                                     "numpy, which needs no torch)")
    # auto falls back to the torch-free converter, which reads the (empty) folder itself
    auto = CliRunner().invoke(app, ["export", str(tmp_path), "-o", str(tmp_path / "x.onnx")])
    assert auto.exit_code == 1 and "model_args.yaml missing" in auto.output
    assert len(auto.output.strip().splitlines()) == 1


@pytest.mark.parametrize("provider", ["cpu", "openvino"])
def test_runtime_opens_the_exported_model(exported, small_model, provider):
    # The other half of the contract: the torch-free runtime loads and runs what we wrote,
    # on every engine installed (CI installs the openvino extra).
    from bossnet_onnx.model.engine_openvino import available
    from bossnet_onnx.model.session import open_model

    if provider == "openvino" and not available():
        pytest.skip("the openvino extra is not installed")
    out, report = exported
    loaded = open_model(out, provider=provider, threads=1)
    assert loaded.engine == ("openvino" if provider == "openvino" else "onnxruntime")
    assert loaded.metadata.weights_sha256 == SHA
    rows = parity_inputs(3900, (3,), seed=4)["spectrum-like-b3"]
    physical = loaded.run_physical(rows)
    expected = report.metadata.unnormalize(torch_outputs(small_model, rows))
    np.testing.assert_allclose(physical, expected, atol=1e-4, rtol=0)
