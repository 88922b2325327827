"""Graph formulations of a model for onnxruntime's CPU kernels (chosen per machine by ort_cache).

Why: BOSS Net's convolutions are 1-D (N, C, L) with thin channels (4-64) and long kernels (30).
onnxruntime runs 1-D Conv through im2col + SGEMM, but its blocked NCHWc convolution kernels
(AVX2: blocks of 8 channels, AVX-512: 16), which keep the activations in a channel-blocked layout
and skip the im2col copy, only take 2-D convolutions. The same network written with each Conv
as a 2-D Conv over an (N, C, 1, L) view (Unsqueeze, Conv with kernel (1, k), Squeeze) is the
same arithmetic: measured on the official network (Xeon, AVX-512, 2 threads) 1.3-1.5x faster,
its outputs within 2e-6 (normalised units) of the 1-D form, the same size as the difference
between loading the `.onnx` and the ORT-format copy today.

The rewrite works on the protobuf bytes directly (the runtime does not depend on the onnx
package): nodes and the conv weights' `dims` are re-encoded, every other field (the 268 MB of
linear weights included) is copied from a read-only mapping of the model, never held in memory.
A model it cannot rewrite safely (external data, opset < 13, auto_pad, subgraphs in a Conv) is
left alone: `conv1d_as_conv2d` returns 0 and writes nothing.
"""
from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .content import _Malformed, _varint

__all__ = ["FORMULATIONS", "conv1d_as_conv2d"]

#: "plain": the model as exported; "conv2d": its 1-D convolutions as 2-D ones (NCHWc kernels).
FORMULATIONS = ("plain", "conv2d")

_MODEL_GRAPH, _MODEL_OPSET = 7, 8
_OPSET_DOMAIN, _OPSET_VERSION = 1, 2
_GRAPH_NODE, _GRAPH_INITIALIZER = 1, 5
_NODE_INPUT, _NODE_OUTPUT, _NODE_NAME, _NODE_OP, _NODE_ATTR, _NODE_DOMAIN = 1, 2, 3, 4, 5, 7
_ATTR_NAME, _ATTR_S, _ATTR_G, _ATTR_INTS, _ATTR_TYPE = 1, 4, 6, 8, 20
_ATTR_TYPE_INTS = 7
_TENSOR_DIMS, _TENSOR_TYPE, _TENSOR_NAME, _TENSOR_RAW = 1, 2, 8, 9
_TENSOR_EXTERNAL, _TENSOR_LOCATION = 13, 14
_INT64 = 7


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


def _enc_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _enc_varint(number << 3 | wire)


def _enc_bytes(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + _enc_varint(len(payload)) + payload


def _enc_ints(number: int, values: list[int]) -> bytes:
    return b"".join(_key(number, 0) + _enc_varint(v) for v in values)


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
    return (_enc_bytes(_ATTR_NAME, name.encode()) + _enc_ints(_ATTR_INTS, mapped)
            + _key(_ATTR_TYPE, 0) + _enc_varint(_ATTR_TYPE_INTS))


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


def _weight_4d(buf) -> bytes:
    """The initializer with dims (o, i, k) written as (o, i, 1, k); data bytes unchanged."""
    dims = _ints(buf, _TENSOR_DIMS)
    body = _enc_ints(_TENSOR_DIMS, [dims[0], dims[1], 1, dims[2]])
    body += b"".join(bytes(buf[s:e]) for num, _, _, s, e in _spans(buf) if num != _TENSOR_DIMS)
    return _enc_bytes(_GRAPH_INITIALIZER, body)


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


def _graph_pieces(graph) -> tuple[list, int]:
    """The graph's fields with every 1-D Conv rewritten (pieces: bytes or mapped slices)."""
    fields = list(_spans(graph))
    weights: dict[str, tuple[list[int], bool]] = {}
    for num, _, value, _, _ in fields:
        if num == _GRAPH_INITIALIZER:
            name, dims, external = _weight_dims(value)
            weights[name] = (dims, external)
    if any(external for _, external in weights.values()):
        return [], 0  # external data: paths are relative to the model's folder; leave it alone
    axes = "bossnet_onnx_conv2d_axis2"
    rewritten: dict[int, bytes] = {}
    conv_weights: set[str] = set()
    for index, (num, _, value, _, _) in enumerate(fields):
        if num != _GRAPH_NODE:
            continue
        node = _node_parts(value)
        if node["op"] != "Conv" or node["domain"] not in ("", "ai.onnx") \
                or len(node["inputs"]) < 2 or len(node["outputs"]) != 1:
            continue
        dims, _ = weights.get(node["inputs"][1], ([], False))
        if len(dims) != 3:
            continue
        attrs = [_attr_2d(a) for a in node["attrs"]]
        if any(a is None for a in attrs):
            continue
        out = node["outputs"][0]
        tag = f"{node['name'] or out}__conv2d"
        x4, y4 = f"{tag}_x", f"{tag}_y"
        rewritten[index] = (
            _node([node["inputs"][0], axes], [x4], f"{tag}_unsqueeze", "Unsqueeze")
            + _node([x4, *node["inputs"][1:]], [y4], tag, "Conv",
                    tuple(a for a in attrs if a is not None))
            + _node([y4, axes], [out], f"{tag}_squeeze", "Squeeze"))
        conv_weights.add(node["inputs"][1])
    if not rewritten:
        return [], 0
    pieces: list = []
    for index, (num, _, value, start, end) in enumerate(fields):
        if index in rewritten:
            pieces.append(rewritten[index])
        elif num == _GRAPH_INITIALIZER and _weight_dims(value)[0] in conv_weights:
            pieces.append(_weight_4d(value))
        else:
            pieces.append(graph[start:end])
    axis_tensor = (_enc_ints(_TENSOR_DIMS, [1]) + _key(_TENSOR_TYPE, 0) + _enc_varint(_INT64)
                   + _enc_bytes(_TENSOR_NAME, axes.encode())
                   + _enc_bytes(_TENSOR_RAW, (2).to_bytes(8, "little")))
    pieces.append(_enc_bytes(_GRAPH_INITIALIZER, axis_tensor))
    return pieces, len(rewritten)


def conv1d_as_conv2d(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """Write `src` with its 1-D convolutions as 2-D ones to `dst`; the number rewritten.

    0 (and nothing written) when there is nothing to rewrite or the model is outside what the
    rewrite handles; never raises for a malformed model (the caller keeps the plain form).
    """
    count = 0
    try:
        with open(src, "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return 0
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                view = memoryview(mapped)
                try:
                    count = _rewrite(view, Path(dst))
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
    graphs = [f for f in fields if f[0] == _MODEL_GRAPH]
    if len(graphs) != 1:
        return 0
    pieces, count = _graph_pieces(graphs[0][2])
    if not count:
        return 0
    size = sum(len(p) for p in pieces)
    with open(dst, "wb") as out:
        for num, _, _, start, end in fields:
            if num == _MODEL_GRAPH:
                out.write(_key(_MODEL_GRAPH, 2) + _enc_varint(size))
                for piece in pieces:
                    out.write(piece)
            else:
                out.write(model[start:end])
    return count
