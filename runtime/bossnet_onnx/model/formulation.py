"""Graph formulations of a model for onnxruntime's CPU kernels (chosen per machine by ort_cache).

Why: BOSS Net's convolutions are 1-D (N, C, L) with thin channels (4-64) and long kernels (30).
onnxruntime runs 1-D Conv through im2col + SGEMM, but its blocked NCHWc convolution kernels
(AVX2: blocks of 8 channels, AVX-512: 16), which keep the activations in a channel-blocked layout
and skip the im2col copy, only take 2-D convolutions. The same network written with each Conv
as a 2-D Conv over an (N, C, 1, L) view (Unsqueeze, Conv with kernel (1, k), Squeeze) is the
same arithmetic: measured on the official network (Xeon, AVX-512, 2 threads) 1.26-1.38x faster,
its outputs within 2e-6 (normalised units) of the 1-D form, the same size as the difference
between loading the `.onnx` and the ORT-format copy today.

The same rewrite moves the adaptive pool's gather to the channel-last layout: a Gather of 3072
single floats per channel along the length axis (axis 2) becomes Transpose, a Gather of whole
channel vectors (axis 1), Transpose back. A gather copies values, so its output is bit for bit
the same; measured on the official network the single gather took 6-10 % of the model stage,
the gather and both transposes take 5-7 %.

The same rewrite lists the large fully connected weight matrices (`_in_place_weights`) as graph
inputs: from IR version 4 such an initializer is an overridable default, which onnxruntime uses
in place from the mapped model instead of prepacking a private copy. The official network's
first linear layer is 268 MB, so prepacking held it twice (measured, session alone, 2 threads:
peak RSS 750 MB prepacked, 494 MB in place = 1.70x the weights; session start 0.27 s vs 0.03 s;
per-row time the same within noise). Its rows differ from the prepacked ones by <= 1.7e-6
(normalised units) and are the same bits for 1, 2 and 4 threads, as before.

Such a layer, when it is a plain Gemm (x @ W.T + bias), is also written weight first
(`_weight_first`): Gemm(W, x, bias as a column, transB) then a Transpose, W @ x.T. onnxruntime's
SGEMM packs its B operand on every call, which as x @ W.T is the whole unpacked 268 MB weight
(the layer was 46 of 175 ms per 32-row call, bound by memory); as W @ x.T it packs the 32 rows
and streams W once: the layer alone 83.5 -> 54.8 ms median, the official network's call
1.11x faster (medians of alternating rounds), rows the same bits for 1, 2 and 4 threads and
within 1.7e-6 (normalised) of the other order.

The rewrite works on the protobuf bytes directly (the runtime does not depend on the onnx
package): nodes and the conv weights' `dims` are re-encoded, every other field (the 268 MB of
linear weights included) is copied from a read-only mapping of the model, never held in memory.
A model it cannot rewrite safely (external data, opset < 13, auto_pad, subgraphs in a Conv) is
left alone: `conv1d_as_conv2d` returns 0 and writes nothing.
"""
from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .content import _Malformed, _varint, encode_varint

__all__ = ["FORMULATIONS", "conv1d_as_conv2d", "elu_on_blocks"]

#: "plain": the model as exported; "conv2d": its 1-D convolutions as 2-D ones (NCHWc kernels).
FORMULATIONS = ("plain", "conv2d")

_MODEL_IR, _MODEL_GRAPH, _MODEL_OPSET = 1, 7, 8
_OPSET_DOMAIN, _OPSET_VERSION = 1, 2
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_INPUT = 1, 5, 11
_GRAPH_OUTPUT, _GRAPH_VALUE_INFO = 12, 13
_NCHWC = "com.microsoft.nchwc"
#: The axes input (a one-element int64 initializer, 2) of the 2-D form's Unsqueeze/Squeeze pairs.
_AXES_NAME = "bossnet_onnx_conv2d_axis2"
_VALUE_NAME, _VALUE_TYPE = 1, 2
_TYPE_TENSOR, _TENSOR_ELEM, _TENSOR_SHAPE, _SHAPE_DIM, _DIM_VALUE = 1, 1, 2, 1, 1
_NODE_INPUT, _NODE_OUTPUT, _NODE_NAME, _NODE_OP, _NODE_ATTR, _NODE_DOMAIN = 1, 2, 3, 4, 5, 7
_ATTR_NAME, _ATTR_F, _ATTR_I, _ATTR_S, _ATTR_G, _ATTR_INTS, _ATTR_TYPE = 1, 2, 3, 4, 6, 8, 20
_ATTR_TYPE_INT, _ATTR_TYPE_INTS = 2, 7
_TENSOR_DIMS, _TENSOR_TYPE, _TENSOR_NAME, _TENSOR_RAW = 1, 2, 8, 9
_TENSOR_EXTERNAL, _TENSOR_LOCATION = 13, 14
_FLOAT, _INT64 = 1, 7


def _spans(buf) -> Iterator[tuple[int, int, Any, int, int]]:
    """(field number, wire type, value, start, end) of one message; `start:end` is the whole
    field (tag included), so an unchanged field is copied byte for byte."""
    pos, end = 0, len(buf)
    while pos < end:
        start = pos
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        value: Any = None
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise _Malformed(f"wire type {wire}")
        if pos > end:
            raise _Malformed("field runs past the end")
        yield number, wire, value, start, pos


def _key(number: int, wire: int) -> bytes:
    return encode_varint(number << 3 | wire)


def _enc_bytes(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + encode_varint(len(payload)) + payload


def _enc_ints(number: int, values: list[int]) -> bytes:
    return b"".join(_key(number, 0) + encode_varint(v) for v in values)


def _ints(buf, number: int) -> list[int]:
    """A repeated int64 field, packed or not (non-negative values only)."""
    out: list[int] = []
    for num, wire, value, _, _ in _spans(buf):
        if num != number:
            continue
        if wire == 0:
            out.append(int(value))
        elif wire == 2:
            pos, mv = 0, value
            while pos < len(mv):
                v, pos = _varint(mv, pos)
                out.append(v)
    if any(v >= 1 << 62 for v in out):
        raise _Malformed("negative value")  # two's complement: not a shape, pad or stride
    return out


def _text(value) -> str:
    return bytes(value).decode("utf-8")


def _node_parts(buf) -> dict:
    parts: dict = {"inputs": [], "outputs": [], "name": "", "op": "", "domain": "", "attrs": []}
    for num, _, value, _, _ in _spans(buf):
        if num == _NODE_INPUT:
            parts["inputs"].append(_text(value))
        elif num == _NODE_OUTPUT:
            parts["outputs"].append(_text(value))
        elif num == _NODE_NAME:
            parts["name"] = _text(value)
        elif num == _NODE_OP:
            parts["op"] = _text(value)
        elif num == _NODE_DOMAIN:
            parts["domain"] = _text(value)
        elif num == _NODE_ATTR:
            parts["attrs"].append(value)
    return parts


def _attr_2d(buf) -> bytes | None:
    """The AttributeProto of a 1-D Conv, for its (1, k) 2-D form; None if it cannot be mapped."""
    name, extra_fields = "", False
    for num, _, value, _, _ in _spans(buf):
        if num == _ATTR_NAME:
            name = _text(value)
        elif num in (_ATTR_S, _ATTR_G):
            extra_fields = True
    if name == "group":
        return bytes(buf)
    if name == "auto_pad":
        return bytes(buf) if not extra_fields or _auto_pad_notset(buf) else None
    if name not in ("kernel_shape", "strides", "dilations", "pads"):
        return None
    values = _ints(buf, _ATTR_INTS)
    if name == "pads":
        if len(values) != 2:
            return None
        mapped = [0, values[0], 0, values[1]]
    else:
        if len(values) != 1:
            return None
        mapped = [1, values[0]]
    return _attr_ints(name, mapped)


def _auto_pad_notset(buf) -> bool:
    for num, _, value, _, _ in _spans(buf):
        if num == _ATTR_S:
            return bytes(value) in (b"", b"NOTSET")
    return True


def _node(inputs: list[str], outputs: list[str], name: str, op: str,
          attrs: tuple[bytes, ...] = ()) -> bytes:
    body = b"".join(_enc_bytes(_NODE_INPUT, i.encode()) for i in inputs)
    body += b"".join(_enc_bytes(_NODE_OUTPUT, o.encode()) for o in outputs)
    body += _enc_bytes(_NODE_NAME, name.encode()) + _enc_bytes(_NODE_OP, op.encode())
    body += b"".join(_enc_bytes(_NODE_ATTR, a) for a in attrs)
    return _enc_bytes(_GRAPH_NODE, body)


def _weight_dims(buf) -> tuple[str, list[int], bool]:
    """(name, dims, stored outside the file) of an initializer TensorProto."""
    name, external = "", False
    for num, wire, value, _, _ in _spans(buf):
        if num == _TENSOR_NAME:
            name = _text(value)
        elif num == _TENSOR_EXTERNAL or (num == _TENSOR_LOCATION and wire == 0 and value == 1):
            external = True
    return name, _ints(buf, _TENSOR_DIMS), external


def _tensor_type(buf) -> int:
    for num, wire, value, _, _ in _spans(buf):
        if num == _TENSOR_TYPE and wire == 0:
            return int(value)
    return 0


def _attr_int(name: str, value: int) -> bytes:
    return (_enc_bytes(_ATTR_NAME, name.encode()) + _key(_ATTR_I, 0) + encode_varint(value)
            + _key(_ATTR_TYPE, 0) + encode_varint(_ATTR_TYPE_INT))


def _attr_ints(name: str, values: list[int]) -> bytes:
    return (_enc_bytes(_ATTR_NAME, name.encode()) + _enc_ints(_ATTR_INTS, values)
            + _key(_ATTR_TYPE, 0) + encode_varint(_ATTR_TYPE_INTS))


def _scalar_attributes(node: dict) -> dict[str, int | float | None]:
    """A node's attributes by name: the value of each plain int or float attribute, None for
    any other (lists, strings, tensors, graphs) that these rewrites do not read."""
    out: dict[str, int | float | None] = {}
    for attr in node["attrs"]:
        name, value, other = "", None, False
        for num, wire, v, _, end in _spans(attr):
            if num == _ATTR_NAME:
                name = _text(v)
            elif num == _ATTR_I and wire == 0:
                value = int(v)
            elif num == _ATTR_F and wire == 5:
                value = struct.unpack("<f", bytes(attr[end - 4:end]))[0]
            elif num != _ATTR_TYPE:
                other = True
        out[name] = None if other else value
    return out


def _int_attributes(node: dict) -> dict[str, int | None]:
    """A node's attributes by name: the value of each plain int attribute, None for any other
    (floats, lists, tensors, graphs) that this rewrite does not read."""
    return {name: value if isinstance(value, int) else None
            for name, value in _scalar_attributes(node).items()}


def _gather_axis(node: dict) -> int | None:
    """The axis of a Gather node (0 when absent); None for an attribute this does not read."""
    attrs = _int_attributes(node)
    if set(attrs) - {"axis"}:
        return None
    return attrs.get("axis", 0)


def _pool_gathers(nodes: list[tuple[tuple[int, int], dict]], weights: dict,
                  ) -> dict[tuple[int, int], bytes]:
    """The adaptive pool's Gather (axis 2 of the trunk output, constant 1-D int64 indices, its
    result reshaped) as Transpose, Gather on axis 1, Transpose: the same values, gathered as
    whole channel vectors instead of single floats."""
    reshaped = {node["inputs"][0] for _, node in nodes
                if node["op"] == "Reshape" and node["inputs"]}
    produced = {out for _, node in nodes for out in node["outputs"]}
    rewritten: dict[tuple[int, int], bytes] = {}
    for where, node in nodes:
        if node["op"] != "Gather" or node["domain"] not in ("", "ai.onnx") \
                or len(node["inputs"]) != 2 or len(node["outputs"]) != 1:
            continue
        dims, _, dtype = weights.get(node["inputs"][1], ([], True, 0))
        out = node["outputs"][0]
        if _gather_axis(node) != 2 or len(dims) != 1 or dtype != _INT64 \
                or out not in reshaped or node["inputs"][0] not in produced:
            continue
        tag = f"{node['name'] or out}__channel_last"
        perm = _attr_ints("perm", [0, 2, 1])
        rewritten[where] = (
            _node([node["inputs"][0]], [f"{tag}_x"], f"{tag}_in", "Transpose", (perm,))
            + _node([f"{tag}_x", node["inputs"][1]], [f"{tag}_y"], tag, "Gather",
                    (_attr_int("axis", 1),))
            + _node([f"{tag}_y"], [out], f"{tag}_out", "Transpose", (perm,)))
    return rewritten


def _input_value(name: str, dims: list[int]) -> bytes:
    """A graph `input` (ValueInfoProto) of a float tensor of fixed `dims`."""
    shape = b"".join(_enc_bytes(_SHAPE_DIM, _key(_DIM_VALUE, 0) + encode_varint(d)) for d in dims)
    tensor = _key(_TENSOR_ELEM, 0) + encode_varint(_FLOAT) + _enc_bytes(_TENSOR_SHAPE, shape)
    value = _enc_bytes(_VALUE_NAME, name.encode()) + _enc_bytes(_VALUE_TYPE,
                                                                  _enc_bytes(_TYPE_TENSOR, tensor))
    return _enc_bytes(_GRAPH_INPUT, value)


#: A fully connected weight is used in place only from this size: below it a prepacked copy
#: costs little memory (the official network's 1024x1024 layers are 4 MB each).
IN_PLACE_MIN_BYTES = 16 << 20
#: ... and only if it has at least this many outputs (and more inputs than outputs). Unpacked,
#: MLAS's SGEMM splits the outputs between threads and blocks the sum over the inputs by a
#: stride that widens when a thread's share of outputs falls below 128 columns, which changes
#: the rounding; 1024 outputs keep every thread's share at >= 128 up to 8 threads, so the
#: layer's results do not depend on the thread count there (prepacked weights are blocked the
#: same way for any thread count). Measured: a 64-output layer unpacked differs between 1 and
#: 2 threads; a 1024-output one is the same bits for 1 to 8.
IN_PLACE_MIN_OUTPUTS = 1024


def _gemm_trans_b(node: dict) -> int | None:
    """The transB attribute of a Gemm (0 when absent); None for one this does not read."""
    trans_b = _int_attributes(node).get("transB", 0)
    return trans_b if trans_b in (0, 1) else None


def _in_place_weights(nodes: list[tuple[tuple[int, int], dict]], weights: dict,
                      inputs: set[str]) -> list[str]:
    """The large fully connected weight matrices (the B input of a Gemm or MatMul that is a
    float initializer of at least IN_PLACE_MIN_BYTES, with at least IN_PLACE_MIN_OUTPUTS
    outputs and more inputs than outputs), to be listed as graph inputs so that onnxruntime
    treats them as overridable: it uses them in place from the mapped model instead of
    building a prepacked private copy (the official network's 268 MB first layer would be
    held twice)."""
    names: list[str] = []
    for _, node in nodes:
        if node["op"] not in ("Gemm", "MatMul") or node["domain"] not in ("", "ai.onnx") \
                or len(node["inputs"]) < 2:
            continue
        name = node["inputs"][1]
        dims, _, dtype = weights.get(name, ([], True, 0))
        trans_b = _gemm_trans_b(node) if node["op"] == "Gemm" else 0
        if len(dims) != 2 or dtype != _FLOAT or trans_b is None or name in inputs \
                or name in names:
            continue
        outputs, sums = (dims[0], dims[1]) if trans_b else (dims[1], dims[0])
        if 4 * outputs * sums >= IN_PLACE_MIN_BYTES and outputs >= IN_PLACE_MIN_OUTPUTS \
                and sums > outputs:
            names.append(name)
    return names


def _plain_gemm(node: dict) -> bool:
    """A Gemm computing x @ W.T + bias and nothing else: transB 1, transA 0, alpha and beta 1
    (or absent), three inputs, one output."""
    if len(node["inputs"]) != 3 or len(node["outputs"]) != 1 or not node["inputs"][2]:
        return False
    seen = _scalar_attributes(node)
    return (seen.get("transB") == 1 and seen.get("transA", 0) == 0
            and seen.get("alpha", 1.0) == 1.0 and seen.get("beta", 1.0) == 1.0
            and set(seen) <= {"transA", "transB", "alpha", "beta"})


def _weight_first(nodes: list[tuple[tuple[int, int], dict]], in_place: list[str],
                  tensors: dict) -> tuple[dict[tuple[int, int], bytes], list[bytes]]:
    """Each plain Gemm (`_plain_gemm`) on an in-place weight W as Gemm(W, x, bias as a column,
    transB) and a Transpose: W @ x.T instead of x @ W.T, the same sums.

    Why: onnxruntime's SGEMM packs the B operand of every call; as x @ W.T that is the whole
    268 MB weight, each call, and the layer is bound by memory (46 ms of a 175 ms call of 32
    rows); as W @ x.T it packs the 32 rows and streams W once. The layer alone (2 threads, 32
    rows): 83.5 -> 54.8 ms median; rows the same bits for 1, 2 and 4 threads, within 4.8e-6 of
    the other order. ({node position: its nodes}, the new bias initializers)."""
    rewritten: dict[tuple[int, int], bytes] = {}
    extra: list[bytes] = []
    for where, node in nodes:
        if node["op"] != "Gemm" or node["domain"] not in ("", "ai.onnx") \
                or not node["inputs"] or len(node["inputs"]) < 3 \
                or node["inputs"][1] not in in_place or not _plain_gemm(node):
            continue
        x, weight, bias = node["inputs"]
        buf, weight_buf = tensors.get(bias), tensors.get(weight)
        if buf is None or weight_buf is None:
            continue
        _, bias_dims, external = _weight_dims(buf)
        raw = [v for num, _, v, _, _ in _spans(buf) if num == _TENSOR_RAW]
        n_out = _ints(weight_buf, _TENSOR_DIMS)[0]
        if external or bias_dims != [n_out] or _tensor_type(buf) != _FLOAT or len(raw) != 1 \
                or len(raw[0]) != 4 * n_out:
            continue
        out = node["outputs"][0]
        tag = f"{node['name'] or out}__weight_first"
        column = f"{tag}_bias"
        extra.append(_enc_bytes(_GRAPH_INITIALIZER, _enc_ints(_TENSOR_DIMS, [n_out, 1])
                                + _key(_TENSOR_TYPE, 0) + encode_varint(_FLOAT)
                                + _enc_bytes(_TENSOR_NAME, column.encode())
                                + _enc_bytes(_TENSOR_RAW, bytes(raw[0]))))
        rewritten[where] = (
            _node([weight, x, column], [f"{tag}_y"], tag, "Gemm", (_attr_int("transB", 1),))
            + _node([f"{tag}_y"], [out], f"{tag}_t", "Transpose", (_attr_ints("perm", [1, 0]),)))
    return rewritten, extra


def _weight_4d(buf) -> bytes:
    """The initializer with dims (o, i, k) written as (o, i, 1, k); data bytes unchanged."""
    dims = _ints(buf, _TENSOR_DIMS)
    body = _enc_ints(_TENSOR_DIMS, [dims[0], dims[1], 1, dims[2]])
    body += b"".join(bytes(buf[s:e]) for num, _, _, s, e in _spans(buf) if num != _TENSOR_DIMS)
    return _enc_bytes(_GRAPH_INITIALIZER, body)


def _ir_version(model) -> int:
    for num, wire, value, _, _ in _spans(model):
        if num == _MODEL_IR and wire == 0:
            return int(value)
    return 0


def _opset(model) -> int:
    for num, _, value, _, _ in _spans(model):
        if num == _MODEL_OPSET:
            domain, version = "", 0
            for n, _, v, _, _ in _spans(value):
                if n == _OPSET_DOMAIN:
                    domain = _text(v)
                elif n == _OPSET_VERSION:
                    version = int(v)
            if domain in ("", "ai.onnx"):
                return version
    return 0


def _graph_pieces(graphs: list, in_place: bool = True) -> tuple[list[list], int]:
    """Each graph field's fields with every 1-D Conv rewritten (pieces: bytes or mapped
    slices), one list per field, and (`in_place`) the fully connected weights listed as graph
    inputs (`_in_place_weights`). A model can hold its graph in several `graph` fields, which
    protobuf merges (the converter's streamed writer appends each weight as one more)."""
    fields = [((g, i), f) for g, graph in enumerate(graphs) for i, f in enumerate(_spans(graph))]
    weights: dict[str, tuple[list[int], bool, int]] = {}
    for _, (num, _, value, _, _) in fields:
        if num == _GRAPH_INITIALIZER:
            name, dims, external = _weight_dims(value)
            weights[name] = (dims, external, _tensor_type(value))
    if any(external for _, external, _ in weights.values()):
        return [], 0  # external data: paths are relative to the model's folder; leave it alone
    axes = _AXES_NAME
    nodes = [(where, _node_parts(value)) for where, (num, _, value, _, _) in fields
             if num == _GRAPH_NODE]
    rewritten: dict[tuple[int, int], bytes] = {}
    conv_weights: set[str] = set()
    for where, node in nodes:
        if node["op"] != "Conv" or node["domain"] not in ("", "ai.onnx") \
                or len(node["inputs"]) < 2 or len(node["outputs"]) != 1:
            continue
        dims, _, _ = weights.get(node["inputs"][1], ([], False, 0))
        if len(dims) != 3:
            continue
        attrs = [_attr_2d(a) for a in node["attrs"]]
        if any(a is None for a in attrs):
            continue
        out = node["outputs"][0]
        tag = f"{node['name'] or out}__conv2d"
        x4, y4 = f"{tag}_x", f"{tag}_y"
        rewritten[where] = (
            _node([node["inputs"][0], axes], [x4], f"{tag}_unsqueeze", "Unsqueeze")
            + _node([x4, *node["inputs"][1:]], [y4], tag, "Conv",
                    tuple(a for a in attrs if a is not None))
            + _node([y4, axes], [out], f"{tag}_squeeze", "Squeeze"))
        conv_weights.add(node["inputs"][1])
    if not rewritten:
        return [], 0
    rewritten.update(_pool_gathers(nodes, weights))
    in_place_names: list[str] = []
    extra: list[bytes] = []
    if in_place:
        inputs = {_text(v) for _, (num, _, value, _, _) in fields if num == _GRAPH_INPUT
                  for n, _, v, _, _ in _spans(value) if n == _VALUE_NAME}
        in_place_names = _in_place_weights(nodes, weights, inputs)
        tensors = {_weight_dims(value)[0]: value for _, (num, _, value, _, _) in fields
                   if num == _GRAPH_INITIALIZER}
        heads, extra = _weight_first(nodes, in_place_names, tensors)
        rewritten.update(heads)
    pieces: list[list] = [[] for _ in graphs]
    for (g, i), (num, _, value, start, end) in fields:
        if (g, i) in rewritten:
            pieces[g].append(rewritten[(g, i)])
        elif num == _GRAPH_INITIALIZER and _weight_dims(value)[0] in conv_weights:
            pieces[g].append(_weight_4d(value))
        else:
            pieces[g].append(graphs[g][start:end])
    axis_tensor = (_enc_ints(_TENSOR_DIMS, [1]) + _key(_TENSOR_TYPE, 0) + encode_varint(_INT64)
                   + _enc_bytes(_TENSOR_NAME, axes.encode())
                   + _enc_bytes(_TENSOR_RAW, (2).to_bytes(8, "little")))
    pieces[0].append(_enc_bytes(_GRAPH_INITIALIZER, axis_tensor))
    pieces[0].extend(_input_value(name, weights[name][0]) for name in in_place_names)
    pieces[0].extend(extra)
    return pieces, len(rewritten)


def conv1d_as_conv2d(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """Write `src` with its 1-D convolutions as 2-D ones (and the pool gather channel-last) to
    `dst`; the number of nodes rewritten.

    0 (and nothing written) when there is nothing to rewrite or the model is outside what the
    rewrite handles; never raises for a malformed model (the caller keeps the plain form).
    """
    return _rewrite_mapped(src, dst, _rewrite)


def _rewrite_mapped(src: str | os.PathLike, dst: str | os.PathLike, rewrite) -> int:
    """`rewrite(mapped model bytes, dst)` on a read-only mapping of `src`: its count, or 0
    with `dst` removed when it rewrote nothing, or the model is empty, unreadable or
    malformed."""
    count = 0
    try:
        with open(src, "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return 0
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                view = memoryview(mapped)
                try:
                    count = rewrite(view, Path(dst))
                except (ValueError, IndexError, UnicodeDecodeError, _Malformed):
                    count = -1
                # the exception (and the slices its frames held) is gone: release the mapping
                view.release()
    except OSError:
        count = -1
    if count <= 0:
        Path(dst).unlink(missing_ok=True)
    return max(count, 0)


def _rewrite(model, dst: Path) -> int:
    if _opset(model) < 13:  # Unsqueeze/Squeeze take their axes as an input from opset 13
        return 0
    fields = list(_spans(model))
    graphs = [f[2] for f in fields if f[0] == _MODEL_GRAPH]
    if not graphs:
        return 0
    # From IR version 4 an initializer listed as a graph input is an overridable default (before
    # it, every initializer had to be listed): only then does listing one change how it is held.
    pieces, count = _graph_pieces(graphs, in_place=_ir_version(model) >= 4)
    if not count:
        return 0
    _write_model(model, fields, pieces, dst)
    return count


def _write_model(model, fields: list, pieces: list[list], dst: Path) -> None:
    """`model` to `dst` with its k-th graph field made of `pieces[k]` (bytes or mapped slices)
    and every other field copied byte for byte."""
    g = 0
    with open(dst, "wb") as out:
        for num, _, _, start, end in fields:
            if num == _MODEL_GRAPH:
                out.write(_key(_MODEL_GRAPH, 2) + encode_varint(sum(len(p) for p in pieces[g])))
                for piece in pieces[g]:
                    out.write(piece)
                g += 1
            else:
                out.write(model[start:end])


def _blocked_elu_chains(nodes: list[tuple[int, dict]], graph_outputs: set[str]
                        ) -> dict[int, tuple[str, str, set[int]]]:
    """Elu nodes that onnxruntime's layout optimiser wrapped in a round trip out of its blocked
    layout and back (ReorderOutput, Squeeze, Elu, Unsqueeze, ReorderInput, each the only user of
    the one before): {Elu position: (blocked input, blocked output, positions to drop)}."""
    producer = {out: (i, node) for i, node in nodes for out in node["outputs"]}
    users: dict[str, int] = {}
    for _, node in nodes:
        for name in node["inputs"]:
            users[name] = users.get(name, 0) + 1

    def single(name: str) -> bool:
        return users.get(name, 0) == 1 and name not in graph_outputs

    chains: dict[int, tuple[str, str, set[int]]] = {}
    for i, node in nodes:
        if node["op"] != "ReorderInput" or node["domain"] != _NCHWC \
                or not _plain_layout(node) or len(node["inputs"]) != 1:
            continue
        steps = [(i, node)]
        for op, domain in (("Unsqueeze", ""), ("Elu", ""), ("Squeeze", ""),
                           ("ReorderOutput", _NCHWC)):
            found = producer.get(steps[-1][1]["inputs"][0]) if steps[-1][1]["inputs"] else None
            if found is None or found[1]["op"] != op or found[1]["domain"] != domain \
                    or len(found[1]["outputs"]) != 1 or not single(found[1]["outputs"][0]):
                break
            steps.append(found)
        else:
            (_, unsqueeze), (elu_at, _), (_, squeeze), (_, reorder) = steps[1:]
            if unsqueeze["inputs"][1:] != [_AXES_NAME] or squeeze["inputs"][1:] != [_AXES_NAME]:
                continue  # only the Squeeze/Unsqueeze pair of our own 2-D form (axis 2)
            if not _plain_layout(reorder, {"channels"}):
                continue  # channels_last or anything else: another layout
            chains[elu_at] = (reorder["inputs"][0], node["outputs"][0],
                              {at for at, _ in steps if at != elu_at})
    return chains


def _plain_layout(node: dict, allowed: frozenset[str] | set[str] = frozenset()) -> bool:
    """A Reorder node between NCHW and the blocked layout: channels_last absent or 0, and no
    attribute but those and `allowed` (int-valued)."""
    attrs = _int_attributes(node)
    if attrs.get("channels_last", 0) != 0:
        return False
    return all(name in allowed and value is not None for name, value in attrs.items()
               if name != "channels_last")


def elu_on_blocks(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """Write `src`, a model as onnxruntime's optimiser saved it for this CPU (blocked NCHWc
    convolutions), to `dst` with each Elu between two blocked convolutions run on the blocked
    tensor itself; the number of Elus moved (0, and nothing written, when there are none).

    Why: onnxruntime's layout optimiser keeps a tensor in its blocked layout only through the
    operators it knows (Relu, Sigmoid, Tanh, Add, ...), not Elu, so around each of BOSS Net's
    Elus it converts the activations out of the blocked layout and back (ReorderOutput,
    Squeeze, Unsqueeze, ReorderInput). Elu is element-wise and Elu(0) = 0 keeps the blocked
    layout's zero padding, so applying it to the blocked tensor gives the same numbers without
    the two copies; the caller checks the outputs are the same bits before using the result.
    """
    return _rewrite_mapped(src, dst, _move_elus)


def _move_elus(model, dst: Path) -> int:
    fields = list(_spans(model))
    graphs = [f[2] for f in fields if f[0] == _MODEL_GRAPH]
    if len(graphs) != 1:
        return 0
    graph_fields = list(_spans(graphs[0]))
    nodes = [(i, _node_parts(value)) for i, (num, _, value, _, _) in enumerate(graph_fields)
             if num == _GRAPH_NODE]
    outputs = {_text(v) for num, _, value, _, _ in graph_fields if num == _GRAPH_OUTPUT
               for n, _, v, _, _ in _spans(value) if n == _VALUE_NAME}
    chains = _blocked_elu_chains(nodes, outputs)
    if not chains:
        return 0
    parts = dict(nodes)
    dropped = set().union(*(drop for _, _, drop in chains.values()))
    kept = {blocked_out for _, blocked_out, _ in chains.values()}  # the moved Elus' outputs
    gone = {name for at in dropped | set(chains) for name in parts[at]["outputs"]} - kept
    pieces = []
    for i, (num, _, value, start, end) in enumerate(graph_fields):
        if i in chains:
            elu = parts[i]
            blocked_in, blocked_out, _ = chains[i]
            pieces.append(_node([blocked_in], [blocked_out], elu["name"] or blocked_out, "Elu",
                                tuple(bytes(a) for a in elu["attrs"])))
        elif i in dropped:
            continue
        elif num == _GRAPH_VALUE_INFO and any(
                n == _VALUE_NAME and _text(v) in gone for n, _, v, _, _ in _spans(value)):
            continue  # the shape of a tensor that no longer exists
        else:
            pieces.append(graphs[0][start:end])
    _write_model(model, fields, [pieces], dst)
    return len(chains)
