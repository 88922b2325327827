"""Small real ONNX graphs with bossnet-onnx metadata, built with onnx.helper (no torch).

They let runtime tests exercise a real onnxruntime session quickly; tests that need the real
BOSS Net network export one through bossnet_export instead.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bossnet_onnx.model.metadata import (
    DEFAULT_PARAMETER_NAMES,
    DEFAULT_STATS,
    ModelMetadata,
    Preprocessing,
)

N_GRID = 3900


def linear_metadata(**overrides) -> ModelMetadata:
    grid = np.linspace(3800.0, 8900.0, N_GRID).astype(np.float32)
    fields = dict(
        model_name="linear-test", provenance="random-weights", parameter_names=DEFAULT_PARAMETER_NAMES,
        stats=DEFAULT_STATS, grid=grid, preprocessing=Preprocessing(), weights_sha256="0" * 64,
        exporter={"package": "tests"}, opset=17, description="linear test graph",
    )
    fields.update(overrides)
    return ModelMetadata(**fields)


def write_linear_model(path: Path, *, seed: int = 0, batch: int | None = None,
                       n_pixels: int = N_GRID, metadata: ModelMetadata | None = None,
                       drop_keys: tuple[str, ...] = (), scale: float = 0.05,
                       hostile: str | None = None, extra_props: dict[str, str] | None = None,
                       external_data: bool = False) -> Path:
    """flux[b, n] @ W + c -> normalized; normalized * STD + MEAN -> physical.

    `hostile` inserts a fault between the affine map and `normalized`, for the load-time
    output checks: "reverse" (batch returned reversed), "mix" (each row minus the batch mean),
    "collapse" (batch averaged to one row), "nan" (every output NaN), "log-min" (adds
    log(min(flux)): NaN for a row with a negative pixel only), "fail-over-3" (an onnxruntime
    error at run time for calls holding a model input above 5, i.e. flux above e^5,
    which the load probe's spectrum-like rows never reach), "roll3" (rows in
    order for batches of 1 and 2, the first three rotated for 3 or more: row 2 first, then rows
    0, 1, 3, ...). `extra_props` replaces metadata
    entries; `external_data` stores every tensor in its own file next to the model.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    meta = metadata or linear_metadata()
    n_out = len(meta.parameter_names)
    w = (rng.standard_normal((n_pixels, n_out)) * scale / np.sqrt(n_pixels)).astype(np.float32)
    c = rng.standard_normal(n_out).astype(np.float32) * 0.1
    std = np.array([meta.stats[p]["STD"] for p in meta.parameter_names], np.float32)
    mean = np.array([meta.stats[p]["MEAN"] for p in meta.parameter_names], np.float32)
    b = batch if batch is not None else "batch"
    fault = {
        None: [helper.make_node("Identity", ["affine"], ["normalized"])],
        "reverse": [helper.make_node("Slice", ["affine", "rev_start", "rev_end", "axis0",
                                               "rev_step"], ["normalized"])],
        "mix": [helper.make_node("ReduceMean", ["affine"], ["bmean"], axes=[0], keepdims=1),
                helper.make_node("Sub", ["affine", "bmean"], ["normalized"])],
        "collapse": [helper.make_node("ReduceMean", ["affine"], ["normalized"], axes=[0],
                                      keepdims=1)],
        "nan": [helper.make_node("Mul", ["affine", "nan"], ["normalized"])],
        "fail-over-3": [helper.make_node("ReduceMax", ["flux"], ["fmax"], keepdims=0),
                        helper.make_node("Greater", ["fmax", "five"], ["bright"]),
                        helper.make_node("Cast", ["bright"], ["bright_i"], to=TensorProto.INT64),
                        helper.make_node("Shape", ["affine"], ["shp"]),
                        helper.make_node("Slice", ["shp", "axis0", "one1"], ["bdim"]),
                        helper.make_node("Add", ["bdim", "bright_i"], ["keep"]),
                        helper.make_node("Slice", ["zero_rows", "axis0", "keep", "axis0"],
                                         ["rows"]),
                        helper.make_node("Add", ["affine", "rows"], ["normalized"])],
        "log-min": [helper.make_node("ReduceMin", ["flux"], ["fmin"], axes=[1], keepdims=1),
                    helper.make_node("Log", ["fmin"], ["logmin"]),
                    helper.make_node("Mul", ["logmin", "tiny"], ["logsmall"]),
                    helper.make_node("Add", ["affine", "logsmall"], ["normalized"])],
        "roll3": [helper.make_node("Slice", ["affine", "i2", "i3", "axis0"], ["row2"]),
                  helper.make_node("Slice", ["affine", "i0", "i2", "axis0"], ["rows01"]),
                  helper.make_node("Slice", ["affine", "i3", "rev_end_pos", "axis0"], ["rest"]),
                  helper.make_node("Concat", ["row2", "rows01", "rest"], ["normalized"], axis=0)],
    }[hostile]
    extra_init = [numpy_helper.from_array(np.array([-1], np.int64), "rev_start"),
                  numpy_helper.from_array(np.array([-(2 ** 62)], np.int64), "rev_end"),
                  numpy_helper.from_array(np.array([0], np.int64), "axis0"),
                  numpy_helper.from_array(np.array([-1], np.int64), "rev_step"),
                  numpy_helper.from_array(np.array(np.nan, np.float32), "nan"),
                  numpy_helper.from_array(np.array(1e-6, np.float32), "tiny"),
                  numpy_helper.from_array(np.array(5.0, np.float32), "five"),
                  numpy_helper.from_array(np.array([1], np.int64), "one1"),
                  numpy_helper.from_array(np.zeros((1024, n_out), np.float32), "zero_rows"),
                  *(numpy_helper.from_array(np.array([v], np.int64), f"i{v}") for v in (0, 2, 3)),
                  numpy_helper.from_array(np.array([2 ** 62], np.int64), "rev_end_pos"),
                  ] if hostile else []
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["flux", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "c"], ["affine"]),
            *fault,
            helper.make_node("Mul", ["normalized", "std"], ["scaled"]),
            helper.make_node("Add", ["scaled", "mean"], ["physical"]),
        ],
        "linear",
        [helper.make_tensor_value_info("flux", TensorProto.FLOAT, [b, n_pixels])],
        [helper.make_tensor_value_info("normalized", TensorProto.FLOAT, [b, n_out]),
         helper.make_tensor_value_info("physical", TensorProto.FLOAT, [b, n_out])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(c, "c"),
         numpy_helper.from_array(std, "std"), numpy_helper.from_array(mean, "mean"),
         *extra_init],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    props = meta.to_props()
    if batch is not None:
        import json
        io = json.loads(props["bossnet.io"])
        io["batch_size"] = batch
        props["bossnet.io"] = json.dumps(io)
    for key in drop_keys:
        props.pop(key)
    props.update(extra_props or {})
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    if external_data:
        onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=False,
                  size_threshold=0)
    else:
        onnx.save(model, str(path))
    return path


def member_metadata(member: str, **overrides) -> ModelMetadata:
    """Metadata of a family member's model as the exporter writes it (grid, stats, recipe)."""
    from bossnet_onnx.science.members import MEMBERS, OFFICIAL_STATS, input_grid

    recipe = MEMBERS[member]
    fields = dict(parameter_names=recipe.parameter_names, stats=OFFICIAL_STATS[member],
                  grid=input_grid(recipe), member=member, model_name=f"linear-{member}",
                  preprocessing=Preprocessing(version=recipe.preprocessing_version))
    fields.update(overrides)
    return linear_metadata(**fields)


def write_member_model(path: Path, member: str, *, seed: int = 0, scale: float = 0.05,
                       **overrides) -> Path:
    """A linear graph carrying `member`'s metadata (its input length and outputs)."""
    meta = member_metadata(member, **overrides)
    return write_linear_model(path, seed=seed, n_pixels=meta.n_pixels, metadata=meta,
                              scale=scale)


def write_conv_model(path: Path, *, seed: int = 0, opset: int = 17,
                     external_data: bool = False, auto_pad: str | None = None,
                     wide_head: str | None = None, wide_outputs: int = 1024) -> Path:
    """A small 1-D convolutional BOSS Net look-alike with the real metadata: flux[b, n] ->
    Unsqueeze -> Conv1d(1->4, k 30, pads) -> Elu -> Conv1d(4->8, k 30, stride 2, dilation 2)
    -> Elu -> Conv1d(8->8, k 5, group 2) -> ReduceMean over pixels -> MatMul -> normalized ->
    physical. For the graph-formulation tests (1-D convolutions of every attribute kind).

    `wide_head` ("Gemm" or "MatMul") replaces the mean by a fully connected layer like BOSS
    Net's first linear layer, big enough to be used in place (formulation.IN_PLACE_MIN_BYTES):
    MaxPool(k 3) -> flatten (5120) -> Gemm (weight 1024 x 5120, transB) or MatMul (5120 x 1024)
    -> Relu -> MatMul (1024 x outputs); `wide_outputs` sets its width (1024)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    meta = linear_metadata()
    n_out = len(meta.parameter_names)
    std = np.array([meta.stats[p]["STD"] for p in meta.parameter_names], np.float32)
    mean = np.array([meta.stats[p]["MEAN"] for p in meta.parameter_names], np.float32)

    def he(*shape):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))).astype(np.float32)

    inits = [numpy_helper.from_array(he(4, 1, 30), "w1"), numpy_helper.from_array(he(4) * 0.1, "b1"),
             numpy_helper.from_array(he(8, 4, 30), "w2"), numpy_helper.from_array(he(8) * 0.1, "b2"),
             numpy_helper.from_array(he(8, 4, 5), "w3"),
             numpy_helper.from_array(he(8, n_out), "head"),
             numpy_helper.from_array(np.array([1], np.int64), "ax1"),
             numpy_helper.from_array(np.array([2], np.int64), "ax2"),
             numpy_helper.from_array(std, "std"), numpy_helper.from_array(mean, "mean")]
    if wide_head:
        inits[5] = numpy_helper.from_array(he(wide_outputs, n_out) * 0.05, "head")
        wide = he(wide_outputs, 5120)
        inits += [numpy_helper.from_array(wide if wide_head == "Gemm" else wide.T.copy(), "wide"),
                  numpy_helper.from_array(he(wide_outputs) * 0.1, "wide_bias"),
                  numpy_helper.from_array(np.array([0, -1], np.int64), "flat")]
    pad1 = {"auto_pad": auto_pad} if auto_pad else {"pads": [14, 15]}
    unsq = (helper.make_node("Unsqueeze", ["flux", "ax1"], ["x"]) if opset >= 13 else
            helper.make_node("Unsqueeze", ["flux"], ["x"], axes=[1]))
    mean_node = (helper.make_node("ReduceMean", ["h3", "ax2"], ["pooled"], keepdims=0)
                 if opset >= 18 else
                 helper.make_node("ReduceMean", ["h3"], ["pooled"], axes=[2], keepdims=0))
    nodes = [
        unsq,
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[30], **pad1),
        helper.make_node("Elu", ["c1"], ["h1"]),
        helper.make_node("Conv", ["h1", "w2", "b2"], ["c2"], kernel_shape=[30], strides=[2],
                         dilations=[2], pads=[3, 3]),
        helper.make_node("Elu", ["c2"], ["h2"]),
        helper.make_node("Conv", ["h2", "w3"], ["h3"], group=2),
        *([mean_node] if not wide_head else [
            helper.make_node("MaxPool", ["h3"], ["p3"], kernel_shape=[3], strides=[3]),
            helper.make_node("Reshape", ["p3", "flat"], ["f3"]),
            helper.make_node("Gemm", ["f3", "wide", "wide_bias"], ["l1"], transB=1)
            if wide_head == "Gemm" else
            helper.make_node("MatMul", ["f3", "wide"], ["l1"]),
            helper.make_node("Relu", ["l1"], ["pooled"])]),
        helper.make_node("MatMul", ["pooled", "head"], ["normalized"]),
        helper.make_node("Mul", ["normalized", "std"], ["scaled"]),
        helper.make_node("Add", ["scaled", "mean"], ["physical"]),
    ]
    graph = helper.make_graph(
        nodes, "conv",
        [helper.make_tensor_value_info("flux", TensorProto.FLOAT, ["batch", N_GRID])],
        [helper.make_tensor_value_info("normalized", TensorProto.FLOAT, ["batch", n_out]),
         helper.make_tensor_value_info("physical", TensorProto.FLOAT, ["batch", n_out])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    helper.set_model_props(model, meta.to_props())
    onnx.checker.check_model(model)
    if external_data:
        onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                  location=path.name + ".data", size_threshold=0)
    else:
        onnx.save(model, str(path))
    return path


def random_boss_state(config, seed: int = 0) -> dict[str, np.ndarray]:
    """A state dict of the BOSS Net `config` describes (bossnet_onnx.convert), He-initialised
    weights and batch norms away from identity, made without torch."""
    from bossnet_onnx.convert.architecture import state_shapes

    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = {}
    for key, shape in state_shapes(config).items():
        if key.endswith("num_batches_tracked"):
            state[key] = np.array(0, np.int64)
        elif key == "pos_enc.inv_freq":
            state[key] = np.ones(shape, np.float32)
        elif key.endswith("running_var"):
            state[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif key.endswith(("running_mean", "bias")):
            state[key] = (0.05 * rng.standard_normal(shape)).astype(np.float32)
        elif ".bn" in key:
            state[key] = rng.uniform(0.8, 1.2, shape).astype(np.float32)
        else:
            state[key] = (rng.standard_normal(shape)
                          * np.sqrt(2.0 / np.prod(shape[1:]))).astype(np.float32)
    return state


def write_boss_model(path: Path, config, *, seed: int = 0) -> tuple[Path, dict]:
    """(The BOSS Net graph of `config` with random weights, written by the torch-free converter's
    own graph builder, its state dict)."""
    import onnx

    from bossnet_onnx.convert.graph import build_skeleton, weight_tensors, write_model
    from bossnet_onnx.convert.report import ModelLabels, exporter_record, model_metadata

    state = random_boss_state(config, seed)
    meta = model_metadata(config, member="boss", weights_sha256="ab" * 32,
                          exporter=exporter_record("numpy", "tests", onnx=onnx.__version__),
                          opset=18, labels=ModelLabels(name=f"random-{path.stem}"))
    skeleton, constants = build_skeleton(config, meta)
    write_model(path, skeleton, [*weight_tensors(state, config), *constants.items()])
    return path, state
