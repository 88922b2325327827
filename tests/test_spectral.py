"""The spectral form of BOSS Net's wide convolutions (model/spectral.py): tiled DFT products that
give the direct convolution's numbers, in the graph and in the ORT-format cache."""
from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_fixtures import write_boss_model, write_conv_model

from bossnet_onnx.convert.config import BossNetConfig
from bossnet_onnx.convert.forward import forward
from bossnet_onnx.model import spectral
from bossnet_onnx.model.cpu_form import cpu_form
from bossnet_onnx.model.session import open_model, probe_inputs

DEMO = Path(__file__).resolve().parents[1] / "models" / "bossnet-demo-synthetic-v1.onnx"
#: Three residual blocks, 8 -> 16 (narrow: direct) then 16 -> 32 (spectral, both convolutions).
WIDE = BossNetConfig(model_dim=8, dim_mults=(1, 2, 4), kernel_size=30, adapt_pool_output_dim=64,
                     num_linear=2, linear_dim=64)


def _run(path, x, name="flux"):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(
        None, {name: x})


def _he(rng, *shape):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))).astype(np.float32)


@pytest.mark.parametrize(("shape", "pads"), [((64, 64, 30), (14, 14)), ((64, 32, 30), (15, 15)),
                                         ((32, 16, 15), (7, 7)), ((24, 24, 8), (0, 0)),
                                         ((16, 32, 33), (16, 16))])
def test_a_layer_in_the_spectral_form_is_the_direct_convolution(shape, pads):
    rng = np.random.default_rng(sum(shape))
    weight = _he(rng, *shape)
    assert spectral.layer_error(weight, pads) < spectral.LAYER_RTOL
    # The measure can fail: the same chain with another kernel is far from this direct one.
    x = rng.standard_normal((shape[1], 300)).astype(np.float32)
    want = spectral._direct(x, weight, pads)
    assert np.ptp(want) > 1  # the outputs vary
    other = spectral._transformed(x, weight[:, :, ::-1].copy(), pads)
    assert np.max(np.abs(other - want)) / np.sqrt(np.mean(want ** 2)) > 0.1
    assert spectral.tile_length(shape[2]) == (64 if shape[2] <= 32 else 128)


@pytest.mark.parametrize("kernel", [30, 15])
def test_boss_graph_in_the_spectral_form_gives_the_plain_outputs(tmp_path, kernel):
    config = dataclasses.replace(WIDE, kernel_size=kernel)
    src, state = write_boss_model(tmp_path / "wide.onnx", config, seed=kernel)
    dst = tmp_path / "spectral.onnx"
    assert spectral.spectral_convolutions(src, dst) == 2
    model = onnx.load(str(dst))
    onnx.checker.check_model(model, full_check=True)
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert len(convs) == 5 - 2  # first + the 8 -> 16 block stay direct
    # The adaptive pool's gather and weighted sum run in the spectral layout too.
    assert [n.op_type for n in model.graph.node if n.name.startswith("bossnet_onnx_spectral_pool")
            ] == ["Gather", "Reshape", "Mul", "ReduceSum"]
    names = {t.name for t in model.graph.initializer}
    assert "res_blocks.1.conv1.weight" not in names and "res_blocks.0.conv1.weight" in names
    x = probe_inputs(3900, 5)
    before, after = _run(src, x)[0], _run(dst, x)[0]
    assert np.ptp(before, axis=0).min() > 1e-3  # random weights: the outputs vary
    scale = np.maximum(1.0, np.max(np.abs(before), axis=0))
    assert np.max(np.abs(after - before) / scale) < 1e-5
    reference = forward(state, config, x)  # the numpy forward pass of the converter
    assert np.max(np.abs(after - reference)) < 1e-4
    # Everything else is carried over: metadata and the linear weights' bytes.
    original = onnx.load(str(src))
    assert {p.key: p.value for p in model.metadata_props} == \
        {p.key: p.value for p in original.metadata_props}
    kept = {t.name: t.raw_data for t in original.graph.initializer}
    assert all(kept[t.name] == t.raw_data for t in model.graph.initializer if t.name in kept)


def test_the_cpu_form_chains_the_spectral_and_the_2d_rewrites(tmp_path, monkeypatch):
    src, _ = write_boss_model(tmp_path / "wide.onnx", WIDE)
    x = probe_inputs(3900, 3)
    plain = _run(src, x)[0]
    # The 2-D form counts its convolutions and the pool's gather, which the spectral form
    # already reads in its own layout.
    for setting, expected in ((None, {"spectral": 2, "conv2d": 3}),
                              ("0", {"spectral": 0, "conv2d": 5 + 1})):
        if setting is None:
            monkeypatch.delenv("BOSSNET_ONNX_SPECTRAL", raising=False)
        else:
            monkeypatch.setenv("BOSSNET_ONNX_SPECTRAL", setting)
        counts: dict = {}
        with cpu_form(src, tmp_path, counts=counts) as path:
            assert path is not None and counts == expected
            got = _run(path, x)[0]
        assert np.max(np.abs(got - plain)) < 1e-5
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]  # both temporaries removed


@pytest.mark.parametrize("case", ["demo", "conv-fixture", "strided", "garbage", "empty",
                                  "truncated"])
def test_models_without_a_wide_convolution_are_left_alone(tmp_path, case):
    src = tmp_path / "m.onnx"
    if case == "demo":
        src = DEMO  # 4 -> 8 -> 16 channels: nothing wide enough to gain
    elif case == "conv-fixture":
        write_conv_model(src)
    elif case == "strided":
        _write_layer_model(src, strides=[2])
    elif case == "garbage":
        src.write_bytes(b"\x08\x08\x3a\xff\xff\xff\xff\x0f garbage")
    elif case == "truncated":  # a wide model cut inside its graph
        whole = write_boss_model(tmp_path / "wide.onnx", WIDE)[0].read_bytes()
        src.write_bytes(whole[:len(whole) // 3])
    else:
        src.write_bytes(b"")
    dst = tmp_path / "out.onnx"
    assert spectral.spectral_convolutions(src, dst) == 0
    assert not dst.exists()


def _write_layer_model(path: Path, strides=(1,)) -> Path:
    """x (B, 32, 200) -> Conv 32 -> 32 (k 16, pads 8/7, bias) -> y; Elu(y) = e (a graph output);
    Add(e, x) = s; ReduceMean over the length (a consumer outside the spectral layout) = m."""
    rng = np.random.default_rng(3)
    plain = list(strides) == [1]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[8, 7], strides=list(strides)),
             helper.make_node("Elu", ["y"], ["e"]),
             helper.make_node("Add", ["e", "x"], ["s"]) if plain else
             helper.make_node("Identity", ["e"], ["s"]),
             helper.make_node("ReduceMean", ["s", "axes"], ["m"], keepdims=0)]
    length = 200 if plain else 100
    graph = helper.make_graph(
        nodes, "layer", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 32, 200])],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, ["b", 32, length]),
         helper.make_tensor_value_info("m", TensorProto.FLOAT, ["b", 32])],
        [numpy_helper.from_array(_he(rng, 32, 32, 16), "w"),
         numpy_helper.from_array((0.1 * rng.standard_normal(32)).astype(np.float32), "b"),
         numpy_helper.from_array(np.array([2], np.int64), "axes")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def test_tensors_leave_the_spectral_layout_for_other_consumers_and_graph_outputs(tmp_path):
    src = _write_layer_model(tmp_path / "layer.onnx")
    dst = tmp_path / "spectral.onnx"
    assert spectral.spectral_convolutions(src, dst) == 1
    model = onnx.load(str(dst))
    onnx.checker.check_model(model, full_check=True)
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    assert producers["e"] == "Transpose" and producers["s"] == "Transpose"  # back, same names
    assert producers["m"] == "ReduceMean"
    x = np.random.default_rng(0).standard_normal((3, 32, 200)).astype(np.float32)
    for before, after in zip(_run(src, x, "x"), _run(dst, x, "x")):
        assert before.shape == after.shape and np.ptp(before) > 0.1
        assert np.max(np.abs(after - before)) / np.max(np.abs(before)) < 1e-5


def test_cache_records_the_spectral_form_and_the_opt_out_is_its_own_entry(tmp_path, monkeypatch):
    monkeypatch.delenv("BOSSNET_ONNX_FORMULATION", raising=False)
    monkeypatch.delenv("BOSSNET_ONNX_SPECTRAL", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", str(cache))
    src, _ = write_boss_model(tmp_path / "wide.onnx", WIDE, seed=5)
    x = probe_inputs(3900, 32)
    model = open_model(src, provider="cpu", threads=2)
    got = model.run_normalized(x)
    monkeypatch.setenv("BOSSNET_ONNX_SPECTRAL", "0")
    direct = open_model(src, provider="cpu", threads=2)
    manifests = sorted(json.loads(p.read_text())["spectral_convs"] for p in cache.glob("*.json"))
    assert manifests == [0, 2]
    assert (model.formulation, direct.formulation) == ("spectral", "conv2d")
    scale = np.maximum(1.0, np.max(np.abs(got), axis=0))
    assert np.max(np.abs(direct.run_normalized(x) - got) / scale) < 1e-5
    # The cache off gives the same bits as the cached copy (the same rewrite, then loaded).
    monkeypatch.delenv("BOSSNET_ONNX_SPECTRAL")
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", "off")
    uncached = open_model(src, provider="cpu", threads=2)
    assert uncached.formulation == "spectral"
    assert uncached.run_normalized(x).tobytes() == got.tobytes()
    assert not list(Path(tempfile.gettempdir()).glob(".conv2d.*"))


def test_rows_do_not_depend_on_the_thread_count(tmp_path, monkeypatch):
    """As for the direct form (test_determinism): a row's bits do not change with 1, 2 or 4
    threads for calls of the engine's fixed size."""
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", "off")
    monkeypatch.delenv("BOSSNET_ONNX_SPECTRAL", raising=False)
    src, _ = write_boss_model(tmp_path / "wide.onnx", WIDE, seed=9)
    x = probe_inputs(3900, 32)
    rows = [open_model(src, provider="cpu", threads=t).run_normalized(x) for t in (1, 2, 4)]
    assert rows[0].tobytes() == rows[1].tobytes() == rows[2].tobytes()
