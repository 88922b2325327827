"""The BOSS Net ONNX graph built node by node with the `onnx` package, no torch.

Same contract as the torch export (`bossnet_export.exporter`): input `flux` [batch, n] with the
length fixed, outputs `normalized` and `physical`, the positional channel a constant, the
adaptive average pool a constant Gather + Mul + ReduceSum over torch's bins, the metadata
written by `model_metadata`, each batch norm folded into its convolution as the torch export's
optimiser folds it. Initializers carry the checkpoint's own names.

The file is streamed: the graph without weights is serialised once, then each weight is
appended as one more `graph.initializer` entry (protobuf merges repeated occurrences of a
message field), written straight from the array's buffer. A 290 MB network therefore never
exists twice in memory, as it would inside a ModelProto and again as its serialisation.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..model.metadata import ModelMetadata
from ..science.members import MEMBERS
from .architecture import BN_EPSILON, feature_length, pool_gather, position_channel, residual_pads
from .config import BossNetConfig

__all__ = ["build_skeleton", "checkable", "write_model", "weight_tensors", "model_doc_string", "DEFAULT_OPSET"]

DEFAULT_OPSET = 18


def model_doc_string(metadata: ModelMetadata) -> str:
    """The ModelProto's doc string, the same from either converter."""
    recipe = MEMBERS[metadata.member]
    names = metadata.parameter_names
    return (f"{recipe.title} {metadata.model_name} (member {metadata.member}): "
            f"flux[batch,{metadata.n_pixels}] ({recipe.reads}, "
            f"{recipe.input_layout['kind']}) -> normalized, physical ({', '.join(names)})")


class _Graph:
    """A list of nodes plus named constants, with fresh names for intermediate values."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.constants: dict[str, np.ndarray] = {}
        self._count = itertools.count()

    def op(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        from onnx import helper

        out = f"{op_type.lower()}_{next(self._count)}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def const(self, name: str, value: np.ndarray) -> str:
        self.constants[name] = value
        return name


def _conv_bn(g: _Graph, x: str, conv: str, pad: int, kernel: int) -> str:
    """Conv with its batch norm folded in (`weight_tensors` folds the arrays)."""
    return g.op("Conv", [x, f"{conv}.weight", f"{conv}.bias"], kernel_shape=[kernel],
                pads=[pad, pad], strides=[1], dilations=[1], group=1)


#: (convolution, its batch norm, whether the convolution has its own bias), in graph order
def _conv_layers(config: BossNetConfig) -> list[tuple[str, str, bool]]:
    layers = [("first_conv.conv_layer", "first_conv.bn", True)]
    for i in range(len(config.dim_mults) - 1):
        layers += [(f"res_blocks.{i}.conv1", f"res_blocks.{i}.bn1", False),
                   (f"res_blocks.{i}.conv2", f"res_blocks.{i}.bn2", False)]
    return layers


def _fold(state: Mapping[str, np.ndarray], conv: str, bn: str, has_bias: bool,
          ) -> tuple[np.ndarray, np.ndarray]:
    """Batch norm folded into the convolution, in float32 as the torch export's optimiser
    (onnxscript's fuse-batchnorm rule) does it, so both converters write the same numbers:
    W' = W * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta."""
    gamma, beta, mean, var = (state[f"{bn}.{k}"] for k in ("weight", "bias", "running_mean",
                                                            "running_var"))
    scale = gamma / np.sqrt(var + BN_EPSILON)
    weight = state[f"{conv}.weight"] * scale.reshape(-1, 1, 1)
    bias = state[f"{conv}.bias"] if has_bias else np.zeros_like(mean)
    return weight.astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)


def build_skeleton(config: BossNetConfig, metadata: ModelMetadata, *, inv_freq: float = 1.0,
                   opset: int = DEFAULT_OPSET) -> tuple[Any, dict[str, np.ndarray]]:
    """(ModelProto without weight initializers, the graph's own constants).

    The weight initializers are the state-dict names `write_model` appends; the constants
    (position channel, pool indices and weights, MEAN/STD, shapes) are returned to be
    appended the same way.
    """
    from onnx import TensorProto, helper

    n = metadata.n_pixels
    k = config.kernel_size
    batch: int | str = metadata.batch_size if metadata.batch_size is not None else "batch"
    g = _Graph()
    x = g.op("Unsqueeze", ["flux", g.const("const.axis1", np.array([1], np.int64))])
    if config.pos_enc:
        rows = g.op("Shape", ["flux"], start=0, end=1)
        shape = g.op("Concat", [rows, g.const("const.position_shape",
                                              np.array([1, n], np.int64))], axis=0)
        pos = g.op("Expand", [g.const("const.position", position_channel(n, inv_freq)), shape])
        x = g.op("Concat", [x, pos], axis=1)
    out = _conv_bn(g, x, "first_conv.conv_layer", k // 2, k)
    out = g.op("MaxPool", [g.op("Elu", [out], alpha=1.0)], kernel_shape=[2], strides=[2])
    pad1, pad2 = residual_pads(k)
    for i, (c_in, c_out) in enumerate(itertools.pairwise(config.channels)):
        p = f"res_blocks.{i}"
        h = g.op("Elu", [_conv_bn(g, out, f"{p}.conv1", pad1, k)], alpha=1.0)
        h = _conv_bn(g, h, f"{p}.conv2", pad2, k)
        shortcut = out
        if c_out != c_in:
            grow = c_out - c_in
            pads = np.array([0, grow // 2, 0, 0, grow - grow // 2, 0], np.int64)
            shortcut = g.op("Pad", [out, g.const(f"const.{p}.pads", pads)], mode="constant")
        out = g.op("Elu", [g.op("Add", [h, shortcut])], alpha=1.0)
    length = feature_length(config, n)
    index, weight = pool_gather(length, config.adapt_pool_output_dim)
    picked = g.op("Gather", [out, g.const("const.pool_index", index.reshape(-1))], axis=2)
    picked = g.op("Reshape", [picked, g.const("const.pool_shape", np.array(
        [0, config.channels[-1], *index.shape], np.int64))])
    pooled = g.op("ReduceSum", [g.op("Mul", [picked, g.const("const.pool_weight", weight)]),
                                g.const("const.axis3", np.array([3], np.int64))], keepdims=0)
    h = g.op("Flatten", [pooled], axis=1)
    for j in range(config.num_linear):
        p = f"linear_sequential.{j}.linear_layer"
        h = g.op("Relu", [g.op("Gemm", [h, f"{p}.weight", f"{p}.bias"], transB=1)])
    last = f"linear_sequential.{config.num_linear}"
    g.nodes.append(helper.make_node("Gemm", [h, f"{last}.weight", f"{last}.bias"],
                                    ["normalized"], transB=1))
    means = np.array([metadata.stats[p]["MEAN"] for p in metadata.parameter_names], np.float32)
    stds = np.array([metadata.stats[p]["STD"] for p in metadata.parameter_names], np.float32)
    scaled = g.op("Mul", ["normalized", g.const("const.std", stds)])
    g.nodes.append(helper.make_node("Add", [scaled, g.const("const.mean", means)],
                                    ["physical"]))
    targets = config.num_targets
    graph = helper.make_graph(
        g.nodes, "bossnet",
        [helper.make_tensor_value_info("flux", TensorProto.FLOAT, [batch, n])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch, targets])
         for name in ("normalized", "physical")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="bossnet-onnx")
    model.ir_version = min(model.ir_version, 10)  # onnxruntime >= 1.17 reads IR 10
    helper.set_model_props(model, metadata.to_props())
    model.doc_string = model_doc_string(metadata)
    return model, g.constants


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int) -> bytes:
    return _varint(field << 3 | 2)  # length-delimited


#: ModelProto.graph = 7, GraphProto.initializer = 5, TensorProto.raw_data = 9
_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_RAW = 7, 5, 9


def _append_initializer(handle: BinaryIO, name: str, array: np.ndarray) -> None:
    from onnx import TensorProto, helper

    array = np.asarray(array)
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    if not little.flags.c_contiguous:
        little = np.ascontiguousarray(little)
    header = TensorProto(name=name, dims=list(array.shape),
                         data_type=helper.np_dtype_to_tensor_dtype(array.dtype))
    head = header.SerializeToString()
    raw = memoryview(little.reshape(-1)).cast("B")  # type: ignore[arg-type]
    tensor_len = len(head) + len(_key(_TENSOR_RAW)) + len(_varint(raw.nbytes)) + raw.nbytes
    graph_len = len(_key(_GRAPH_INITIALIZER)) + len(_varint(tensor_len)) + tensor_len
    handle.write(_key(_MODEL_GRAPH) + _varint(graph_len) + _key(_GRAPH_INITIALIZER)
                 + _varint(tensor_len) + head + _key(_TENSOR_RAW) + _varint(raw.nbytes))
    handle.write(raw)


def write_model(path: str | Path, skeleton: Any,
                tensors: Iterable[tuple[str, np.ndarray]]) -> None:
    """The skeleton, then each (name, array) as one more initializer, straight to `path`."""
    with open(path, "wb") as handle:
        handle.write(skeleton.SerializeToString())
        for name, array in tensors:
            _append_initializer(handle, name, array)


def weight_tensors(state: Mapping[str, np.ndarray], config: BossNetConfig,
                   ) -> list[tuple[str, np.ndarray]]:
    """The arrays the graph reads: convolutions with their batch norms folded in, then the
    linear layers as they are in the state dict."""
    tensors: list[tuple[str, np.ndarray]] = []
    for conv, bn, has_bias in _conv_layers(config):
        weight, bias = _fold(state, conv, bn, has_bias)
        tensors += [(f"{conv}.weight", weight), (f"{conv}.bias", bias)]
    tensors += [(key, state[key]) for key in state if key.startswith("linear_sequential.")]
    return tensors


def checkable(skeleton: Any, tensors: Iterable[tuple[str, np.ndarray]]) -> Any:
    """A copy of the skeleton that onnx.checker can judge without the weights' bytes: each
    initializer declared as a typed graph input (full_check also infers every shape)."""
    from onnx import ModelProto, helper

    copy = ModelProto()
    copy.CopyFrom(skeleton)
    for name, array in tensors:
        copy.graph.input.append(helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(np.asarray(array).dtype), list(array.shape)))
    return copy
