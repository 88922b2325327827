"""The 2-D form of a model's 1-D convolutions (model/formulation.py) and its per-machine choice
in the ORT-format cache (ort_cache): same outputs, refused where the rewrite does not apply."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx_fixtures import write_conv_model, write_linear_model

from bossnet_onnx.model import ort_cache
from bossnet_onnx.model.formulation import conv1d_as_conv2d
from bossnet_onnx.model.session import open_model, probe_inputs


def _run(path, x, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(
        None, {"flux": x})


def test_rewrite_turns_every_1d_conv_into_2d_with_the_same_outputs(tmp_path):
    src = write_conv_model(tmp_path / "conv.onnx")
    dst = tmp_path / "conv2d.onnx"
    assert conv1d_as_conv2d(src, dst) == 3
    model = onnx.load(str(dst))
    onnx.checker.check_model(model, full_check=True)
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert len(convs) == 3
    attrs = {c.name: {a.name: list(a.ints) or a.i for a in c.attribute} for c in convs}
    second = next(a for a in attrs.values() if a.get("strides") == [1, 2])
    assert second == {"kernel_shape": [1, 30], "strides": [1, 2], "dilations": [1, 2],
                      "pads": [0, 3, 0, 3]}
    assert any(a.get("group") == 2 for a in attrs.values())
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    assert weights["w1"] == [4, 1, 1, 30] and weights["w3"] == [8, 4, 1, 5]
    x = probe_inputs(3900, 5)
    for before, after in zip(_run(src, x), _run(dst, x)):
        scale = np.maximum(1.0, np.max(np.abs(before), axis=0))
        assert np.max(np.abs(before - after) / scale) < 1e-5
        assert not np.array_equal(before, np.zeros_like(before))
    # Everything else is carried over byte for byte: metadata, names, the other weights.
    original = onnx.load(str(src))
    assert {p.key: p.value for p in model.metadata_props} == \
        {p.key: p.value for p in original.metadata_props}
    kept = {t.name: t.raw_data for t in original.graph.initializer}
    assert all(kept[t.name] == t.raw_data for t in model.graph.initializer if t.name in kept)


@pytest.mark.parametrize("case", ["no-conv", "opset-12", "external-data", "auto-pad",
                                  "not-onnx", "empty"])
def test_rewrite_leaves_what_it_cannot_handle_alone(tmp_path, case):
    src = tmp_path / "m.onnx"
    if case == "no-conv":
        write_linear_model(src)
    elif case == "opset-12":
        write_conv_model(src, opset=12)
    elif case == "external-data":
        write_conv_model(src, external_data=True)
    elif case == "auto-pad":
        write_conv_model(src, auto_pad="SAME_UPPER")
    elif case == "not-onnx":
        src.write_bytes(b"\x08\x08\x3a\xff\xff\xff\xff\x0f garbage")
    else:
        src.write_bytes(b"")
    dst = tmp_path / "out.onnx"
    expected = 2 if case == "auto-pad" else 0  # the auto_pad conv stays 1-D, the others not
    assert conv1d_as_conv2d(src, dst) == expected
    assert dst.exists() == bool(expected)


def _manifest(cache):
    (manifest,) = cache.glob("*.json")
    return json.loads(manifest.read_text())


@pytest.mark.parametrize("setting", ["conv2d", "plain", "auto"])
def test_cache_keeps_the_chosen_formulation_and_its_outputs_match(tmp_path, monkeypatch,
                                                                    setting):
    cache = tmp_path / "cache"
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", str(cache))
    monkeypatch.setenv("BOSSNET_ONNX_FORMULATION", setting)
    path = write_conv_model(tmp_path / "conv.onnx")
    model = open_model(path, provider="cpu")
    manifest = _manifest(cache)
    assert manifest["formulation"] == model.formulation
    assert manifest["formulation_setting"] == setting
    if setting != "auto":
        assert model.formulation == setting
    else:  # measured: both figures, and the 2-D form only when exact
        figures = manifest["formulation_figures"]
        assert figures["plain_s"] > 0 and figures["conv2d_s"] > 0 and figures["rows"] == 32
        assert figures["max_rel_diff"] < ort_cache.FORMULATION_RTOL
    x = probe_inputs(3900, 7)
    plain = _run(path, x, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)[0]
    got = model.run_normalized(x)
    assert np.max(np.abs(got - plain)) < 1e-5
    # Another setting is another key: a new entry, never the other's copy.
    monkeypatch.setenv("BOSSNET_ONNX_FORMULATION", "plain" if setting != "plain" else "conv2d")
    other = open_model(path, provider="cpu")
    assert len(list(cache.glob("*.ort"))) == 2
    assert other.formulation != model.formulation or setting == "auto"


@pytest.mark.parametrize("setting", [None, "plain"])
def test_cache_on_and_off_give_the_same_bits(tmp_path, monkeypatch, setting):
    """The default (2-D form) and the opt-out (plain) each give the same bits whether the
    ORT-format copy is used or the model is loaded without the cache."""
    if setting is None:
        monkeypatch.delenv("BOSSNET_ONNX_FORMULATION", raising=False)
    else:
        monkeypatch.setenv("BOSSNET_ONNX_FORMULATION", setting)
    expected = setting or ort_cache.DEFAULT_FORMULATION
    assert expected == ("plain" if setting else "conv2d")
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", str(tmp_path / "cache"))
    path = write_conv_model(tmp_path / "conv.onnx")
    cached = open_model(path, provider="cpu", threads=2)
    assert cached.formulation == expected
    assert _manifest(tmp_path / "cache")["formulation"] == expected
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", "off")
    direct = open_model(path, provider="cpu", threads=2)
    assert direct.formulation == expected
    x = probe_inputs(3900, 40)
    assert cached.run_normalized(x).tobytes() == direct.run_normalized(x).tobytes()
    assert not list(Path(tempfile.gettempdir()).glob(".conv2d.*"))  # removed once loaded


def test_without_a_usable_temporary_folder_the_cache_off_load_keeps_the_plain_form(
        tmp_path, monkeypatch):
    """With the cache off and no temporary file to write the 2-D form into, the model loads
    in its plain form (recorded as such), the same bits as the plain setting, no error."""
    monkeypatch.delenv("BOSSNET_ONNX_FORMULATION", raising=False)
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", "off")
    path = write_conv_model(tmp_path / "conv.onnx")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    fallback = open_model(path, provider="cpu", threads=2)
    assert fallback.formulation == "plain"
    monkeypatch.setenv("BOSSNET_ONNX_FORMULATION", "plain")
    plain = open_model(path, provider="cpu", threads=2)
    x = probe_inputs(3900, 8)
    assert fallback.run_normalized(x).tobytes() == plain.run_normalized(x).tobytes()


def test_converted_model_pool_gather_goes_channel_last_with_the_same_values(tmp_path):
    """A model from the torch-free converter (its graph in many `graph` fields, one per
    appended weight) is rewritten too: 2-D convolutions, and the pool's Gather on the length
    axis as Transpose, Gather of channel vectors, Transpose, which gathers the same floats."""
    pytest.importorskip("torch")
    from bossnet_export.random_weights import SMALL_CONFIG, build_random_model, save_official_layout
    from bossnet_onnx.convert import convert_checkpoint

    ckpt = save_official_layout(build_random_model(SMALL_CONFIG, seed=3), tmp_path / "ckpt")
    src = tmp_path / "small.onnx"
    convert_checkpoint(ckpt, src, name="small-random")
    dst = tmp_path / "small.conv2d.onnx"
    n_convs = 1 + 2 * (len(SMALL_CONFIG.dim_mults) - 1)
    assert conv1d_as_conv2d(src, dst) == n_convs + 1
    model = onnx.load(str(dst))
    onnx.checker.check_model(model, full_check=True)
    (gather,) = [n for n in model.graph.node if n.op_type == "Gather"]
    assert [a.i for a in gather.attribute if a.name == "axis"] == [1]
    assert sum(n.op_type == "Transpose" for n in model.graph.node) == 2
    x = probe_inputs(3900, 6)
    before, after = _run(src, x)[0], _run(dst, x)[0]
    assert np.ptp(before, axis=0).min() > 1e-3  # the random network's outputs vary
    assert np.max(np.abs(before - after)) < 1e-5 * max(1.0, float(np.abs(before).max()))
    # The gathered values are exactly the pool input's at the pool's indices: expose both in
    # the rewritten graph and gather in numpy.
    pool = next(n for n in onnx.load(str(src)).graph.node if n.op_type == "Gather")
    index = next(onnx.numpy_helper.to_array(t) for t in onnx.load(str(src)).graph.initializer
                 if t.name == pool.input[1])
    for name in (pool.input[0], pool.output[0]):
        model.graph.output.append(onnx.helper.make_tensor_value_info(
            name, onnx.TensorProto.FLOAT, None))
    exposed = tmp_path / "exposed.onnx"
    onnx.save(model, str(exposed))
    trunk, picked = _run(exposed, x)[-2:]
    assert trunk.ndim == 3 and picked.shape == (*trunk.shape[:2], index.size)
    assert picked.tobytes() == np.take(trunk, index, axis=2).tobytes()


def test_a_model_without_convolutions_is_cached_plain(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", str(cache))
    monkeypatch.setenv("BOSSNET_ONNX_FORMULATION", "conv2d")
    model = open_model(write_linear_model(tmp_path / "m.onnx"), provider="cpu")
    assert model.formulation == "plain" and _manifest(cache)["formulation"] == "plain"
    assert not list(cache.glob(".conv2d*"))  # no temporary left behind


def test_conv2d_rows_do_not_depend_on_the_thread_count(tmp_path, monkeypatch):
    """The opt-in form keeps the run engine's promise: the same bits for 1 and 2 threads."""
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("BOSSNET_ONNX_FORMULATION", "conv2d")
    path = write_conv_model(tmp_path / "conv.onnx")
    one, two = (open_model(path, provider="cpu", threads=n) for n in (1, 2))
    assert one.formulation == two.formulation == "conv2d"
    x = probe_inputs(3900, 64)
    assert one.run_normalized(x).tobytes() == two.run_normalized(x).tobytes()


@pytest.mark.parametrize("setting", [None, "plain"])
def test_the_catalogue_header_records_the_form_that_ran(tmp_path, monkeypatch, setting):
    from astropy.io import fits
    from layouts import boss_native_wavelength, write_spec

    from bossnet_onnx.run.to_file import predict_to_file

    if setting is None:
        monkeypatch.delenv("BOSSNET_ONNX_FORMULATION", raising=False)
    else:
        monkeypatch.setenv("BOSSNET_ONNX_FORMULATION", setting)
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", str(tmp_path / "cache"))
    wave = boss_native_wavelength()
    spec = tmp_path / "spec-0001-55555-0001.fits"
    write_spec(spec, wave, (10 + np.sin(wave / 50)).astype(np.float32),
               np.ones(wave.size, np.float32), plate=1, mjd=55555, fiberid=1)
    out = tmp_path / "cat.fits"
    predict_to_file([str(spec)], out, model=write_conv_model(tmp_path / "conv.onnx"),
                    draws=2, provider="cpu")
    header = fits.getheader(out, 1)
    assert header["FORMULN"] == (setting or "conv2d")
    assert header.comments["FORMULN"] == "graph form run (spectral, conv2d or plain)"


@pytest.mark.parametrize("op", ["Gemm", "MatMul"])
def test_large_fully_connected_weights_are_used_in_place(tmp_path, op):
    """The 2-D form lists a large fully connected weight as a graph input (an overridable
    default from IR 4), so onnxruntime maps it instead of prepacking a private copy; small
    ones stay constant (prepacked). Outputs stay within float32 reassociation of the plain
    graph."""
    src = write_conv_model(tmp_path / "wide.onnx", wide_head=op)
    dst = tmp_path / "wide.conv2d.onnx"
    assert conv1d_as_conv2d(src, dst) == (3 + 1 if op == "Gemm" else 3)
    model = onnx.load(str(dst))
    onnx.checker.check_model(model, full_check=True)
    if op == "Gemm":  # the weight first (formulation._weight_first): W @ x.T, then a Transpose
        (gemm,) = [n for n in model.graph.node if n.op_type == "Gemm"]
        assert gemm.input[0] == "wide" and [a.name for a in gemm.attribute] == ["transB"]
        (transpose,) = [n for n in model.graph.node if n.input[0] == gemm.output[0]]
        assert transpose.op_type == "Transpose"
    wide_dims = [1024, 5120] if op == "Gemm" else [5120, 1024]
    assert [(i.name, [d.dim_value for d in i.type.tensor_type.shape.dim])
            for i in model.graph.input] == [("flux", [0, 3900]), ("wide", wide_dims)]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(dst), options, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["flux"]
    assert [i.name for i in session.get_overridable_initializers()] == ["wide"]
    x = probe_inputs(3900, 6)
    before, after = _run(src, x)[0], _run(dst, x)[0]
    assert np.ptp(before, axis=0).min() > 1e-3  # the random network's outputs vary
    assert np.max(np.abs(before - after)) < 1e-5 * max(1.0, float(np.abs(before).max()))
    # Small layers (the test network's) and narrow ones (< 1024 outputs, whose unpacked rows
    # can depend on the thread count) stay prepacked: nothing but flux is an input.
    for name, kwargs in (("conv", {}), ("narrow", {"wide_head": op, "wide_outputs": 1000})):
        assert conv1d_as_conv2d(write_conv_model(tmp_path / f"{name}.onnx", **kwargs),
                                tmp_path / f"{name}.2d.onnx") == 3
        assert [i.name for i in onnx.load(str(tmp_path / f"{name}.2d.onnx")).graph.input] \
            == ["flux"]


def test_rows_with_a_weight_used_in_place_do_not_depend_on_the_thread_count(tmp_path,
                                                                            monkeypatch):
    """Through the cache (the mapped ORT copy) and without it, 1, 2 and 4 threads."""
    path = write_conv_model(tmp_path / "wide.onnx", wide_head="Gemm")
    x = probe_inputs(3900, 64)
    rows = {}
    for cache in (str(tmp_path / "cache"), "off"):
        monkeypatch.setenv("BOSSNET_ONNX_CACHE", cache)
        for threads in (1, 2, 4):
            with open_model(path, provider="cpu", threads=threads) as model:
                assert model.formulation == "conv2d"
                rows[cache, threads] = model.run_normalized(x)
    first = next(iter(rows.values()))
    assert np.ptp(first, axis=0).min() > 1e-3
    assert all(r.tobytes() == first.tobytes() for r in rows.values())


DEMO = Path(__file__).resolve().parents[1] / "models" / "bossnet-demo-synthetic-v1.onnx"


def _optimised_for_this_cpu(src: Path, dst: Path) -> Path:
    """`src` as onnxruntime's optimiser saves it for this CPU (blocked NCHWc convolutions)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(dst)
    options.log_severity_level = 3
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    return dst


def test_elus_between_blocked_convolutions_run_on_the_blocked_tensors(tmp_path):
    """The bundled model's 2-D form, optimised for this CPU: each Elu between two blocked
    convolutions loses its round trip out of the blocked layout (ReorderOutput, Squeeze,
    Unsqueeze, ReorderInput) and gives the same bits."""
    from bossnet_onnx.model.formulation import elu_on_blocks

    conv2d = tmp_path / "conv2d.onnx"
    assert conv1d_as_conv2d(DEMO, conv2d) > 0
    optimised = _optimised_for_this_cpu(conv2d, tmp_path / "optimised.onnx")
    before = onnx.load(str(optimised))
    if not any(n.domain == "com.microsoft.nchwc" for n in before.graph.node):
        pytest.skip("onnxruntime has no blocked (NCHWc) kernels on this CPU")
    moved = tmp_path / "moved.onnx"
    count = elu_on_blocks(optimised, moved)
    assert count >= 1
    after = onnx.load(str(moved))

    def ops(model):
        return [n.op_type for n in model.graph.node]

    for op in ("ReorderOutput", "ReorderInput", "Squeeze", "Unsqueeze"):
        assert ops(after).count(op) == ops(before).count(op) - count, op
    assert ops(after).count("Elu") == ops(before).count("Elu")
    producers = {o: n for n in after.graph.node for o in n.output}
    on_blocks = [n for n in after.graph.node if n.op_type == "Elu"
                 and producers[n.input[0]].domain == "com.microsoft.nchwc"]
    assert len(on_blocks) == count
    x = probe_inputs(3900, 32)
    plain = _run(optimised, x, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    got = _run(moved, x, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(plain, got))
    assert np.ptp(plain[0], axis=0).min() > 0  # rows differ: not a constant network


def test_elu_on_blocks_leaves_other_graphs_alone(tmp_path):
    """No blocked convolutions (the graph as exported), not a model, empty: 0, nothing
    written."""
    from bossnet_onnx.model.formulation import elu_on_blocks

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x08\x3a\xff\xff\xff\xff\x0f garbage")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    for src in (DEMO, junk, empty, tmp_path / "missing.onnx"):
        dst = tmp_path / "out.onnx"
        assert elu_on_blocks(src, dst) == 0
        assert not dst.exists()


def _blocked_kernels_here(tmp_path: Path) -> bool:
    """Whether onnxruntime optimises the bundled model's 2-D form into blocked (NCHWc)
    convolutions on this CPU (x86-64 with AVX2 or AVX-512 does)."""
    conv2d = tmp_path / "blocked-check.onnx"
    assert conv1d_as_conv2d(DEMO, conv2d) > 0
    optimised = _optimised_for_this_cpu(conv2d, tmp_path / "blocked-check.opt.onnx")
    return any(n.domain == "com.microsoft.nchwc" for n in onnx.load(str(optimised)).graph.node)


def test_cache_moves_the_elus_only_when_the_bits_stay(tmp_path, monkeypatch):
    """The ORT copy of the bundled model runs its Elus on blocked tensors (the manifest says
    how many) with the bits of the cache-off load; when the check finds other bits, the copy
    is the optimiser's graph and the bits are still the same."""
    monkeypatch.delenv("BOSSNET_ONNX_FORMULATION", raising=False)
    x = probe_inputs(3900, 40)
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", "off")
    direct = open_model(DEMO, provider="cpu", threads=2).run_normalized(x)
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", str(tmp_path / "cache"))
    cached = open_model(DEMO, provider="cpu", threads=2)
    if not _blocked_kernels_here(tmp_path):
        assert _manifest(tmp_path / "cache")["elus_on_blocks"] == 0
        pytest.skip("onnxruntime has no blocked (NCHWc) kernels on this CPU")
    assert _manifest(tmp_path / "cache")["elus_on_blocks"] >= 1
    assert cached.run_normalized(x).tobytes() == direct.tobytes()

    real_time_copy = ort_cache._time_copy

    def other_bits(path, rows, threads):
        seconds, outputs = real_time_copy(path, rows, threads)
        return seconds, [np.nextafter(o, np.inf) for o in outputs]

    monkeypatch.setattr(ort_cache, "_time_copy", other_bits)
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", str(tmp_path / "cache2"))
    guarded = open_model(DEMO, provider="cpu", threads=2)
    assert _manifest(tmp_path / "cache2")["elus_on_blocks"] == 0
    assert guarded.formulation == "conv2d"
    assert guarded.run_normalized(x).tobytes() == direct.tobytes()
    assert not [p for p in (tmp_path / "cache2").iterdir() if ".tmp" in p.name]


def test_elus_on_blocks_can_be_switched_off_as_its_own_cache_entry(tmp_path, monkeypatch):
    """BOSSNET_ONNX_ELU_ON_BLOCKS=0 (the benchmark's ort-reorders side) is another key: its own
    copy, with onnxruntime's reorders, and the same bits."""
    monkeypatch.delenv("BOSSNET_ONNX_FORMULATION", raising=False)
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", str(tmp_path / "cache"))
    x = probe_inputs(3900, 40)
    moved = open_model(DEMO, provider="cpu", threads=2).run_normalized(x)
    monkeypatch.setenv("BOSSNET_ONNX_ELU_ON_BLOCKS", "0")
    kept = open_model(DEMO, provider="cpu", threads=2)
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "cache").glob("*.json")
                 if "elus_on_blocks" in p.read_text()]
    assert len(list((tmp_path / "cache").glob("*.ort"))) == 2
    moved_counts = sorted(bool(m["elus_on_blocks"]) for m in manifests)
    assert moved_counts == ([False, True] if _blocked_kernels_here(tmp_path) else [False, False])
    assert kept.formulation == "conv2d"
    assert kept.run_normalized(x).tobytes() == moved.tobytes()
