"""BOSS Net's wide convolutions as tiled DFT products (the spectral form), for onnxruntime's CPU.

Why: a 1-D convolution with C inputs, O outputs and a kernel of k taps costs C*O*k
multiply-adds per output pixel however its kernels run it (BOSS Net: k = 30; the 64 -> 64 layer
alone is 44 % of the network's 1.10 GFLOP). By the convolution theorem the same result costs
far fewer operations in the frequency domain, and every step of it is a plain matrix product
that onnxruntime's SGEMM runs near the machine's peak:

* overlap-save tiles: the padded input is cut into tiles of N samples (N = 64 for k <= 32, the
  next power of two >= 2k otherwise) that start S = N - k + 1 samples apart;
* the real DFT of every tile of every channel: one MatMul with the constant (2K, N) matrix of
  cosines and sines (K = N/2 + 1 frequencies);
* per frequency, the complex C -> O product with the DFT of the kernel: one batched MatMul of
  K real (2C, 2O) matrices (real and imaginary parts side by side);
* the inverse real DFT of each tile's first S samples (the ones the circular correlation does
  not wrap): one MatMul with a constant (S, 2K) matrix; then a Gather that puts the tiles in
  order and drops the pixels past the layer's length, and the bias.

Multiply-adds per output pixel: 2K*N/S per input channel (forward), 4K/S per input-output pair
(mixing) and 2K per output channel (inverse), against k per pair directly; with k = 30 (N = 64,
S = 35, K = 33): 64 -> 64 27 400 against 122 900 (4.5x fewer), 32 -> 64 3.9x, 32 -> 32 3.1x,
16 -> 32 2.6x; the official network's 1.10 GFLOP per forward become 0.43. The products run at
a lower fraction of the peak than the blocked convolutions and the transposes between them
copy memory, so the time gained is less. Measured on the official network (Xeon, AVX-512,
2 threads, 32 rows per call, each layer alone against the 2-D form's blocked NCHWc
convolution): 64 -> 64 2.2x faster, 32 -> 64 1.7x, 32 -> 32 1.5x, 16 -> 32 1.2x, 16 -> 16 0.95x
(so only layers with C*O >= 512 are taken); the whole model stage 1.2-1.3x.

The rounding: each output is summed in another order, through the transforms. Against float64
the transformed layers are as close as the direct ones (3e-6 against 5e-6 of the output scale
for a He-initialised 64 -> 64 layer); the official network's outputs move by <= 2e-6 in
normalised units against the plain graph.

Layout: the rewritten stretch of the graph keeps its tensors as (length, batch, channels), so
the tiles are gathered as whole (batch, channels) planes and every transpose between the
products moves contiguous channel vectors. A tensor enters that layout through one Transpose;
Elu/Relu, a channel Pad (the residual shortcut) and an Add of two such tensors stay in it; the
adaptive pool's Gather reads it directly; any other consumer gets the tensor back in its
(batch, channels, length) layout under its original name.

The rewrite reads the graph's structure and the convolution weights from a read-only mapping
(the large linear weights are never read or held: they are copied into the output from the
mapping) and builds the new nodes with the `onnx` package. A model it cannot analyse, or with
no convolution worth transforming, is left alone: `spectral_convolutions` returns 0.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .formulation import (
    _GRAPH_INITIALIZER,
    _GRAPH_NODE,
    _GRAPH_VALUE_INFO,
    _MODEL_GRAPH,
    _TENSOR_DIMS,
    _TENSOR_NAME,
    _TENSOR_TYPE,
    _enc_bytes,
    _node_parts,
    _opset,
    _rewrite_mapped,
    _spans,
    _weight_dims,
    _write_model,
)

__all__ = ["spectral_convolutions", "spectral_setting", "MIN_CHANNEL_PRODUCT", "MIN_KERNEL",
           "tile_length"]

#: Only convolutions with inputs x outputs >= this are transformed (16 -> 32 gains 1.2x, 16 -> 16
#: loses 5 %, measured as in the module doc).
MIN_CHANNEL_PRODUCT = 512
#: ... and kernels of at least this many taps (a short kernel has little to save).
MIN_KERNEL = 8
#: Convolution weights up to this size are read for the rewrite (64 x 64 x 30 floats: 0.5 MB).
MAX_WEIGHT_BYTES = 16 << 20
#: Largest |transformed - direct| of one layer on random inputs, relative to the direct output's
#: root mean square, for the layer to be rewritten (measured: 1.6e-6 to 2.1e-6 for the official
#: network's four layers).
LAYER_RTOL = 1e-5

_UNARY = ("Elu", "Relu", "LeakyRelu")


def spectral_setting() -> bool:
    """`$BOSSNET_ONNX_SPECTRAL=0` keeps every convolution direct (the benchmark's ort-blocked
    side: the 2-D form alone, the default before the spectral form)."""
    return os.environ.get("BOSSNET_ONNX_SPECTRAL", "").strip() != "0"


def tile_length(kernel: int) -> int:
    """The DFT length N for a kernel of `kernel` taps: 64, or the next power of two >= 2k."""
    n = 64
    while n < 2 * kernel:
        n *= 2
    return n


def spectral_matrices(weight: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(forward (2K, N), mix (K, 2C, 2O), inverse (S, 2K)) float32 matrices of the overlap-save
    DFT form of a correlation with `weight` (O, C, k), tiles of `n` samples; computed in
    float64."""
    out_ch, in_ch, k = weight.shape
    hop, freqs = n - k + 1, n // 2 + 1
    angle = 2 * np.pi * np.outer(np.arange(freqs), np.arange(n)) / n
    forward = np.concatenate([np.cos(angle), -np.sin(angle)], axis=0)
    padded = np.zeros((out_ch, in_ch, n))
    padded[:, :, :k] = weight
    # correlation: Y = X * conj(W); (K, C, O) real and imaginary parts
    spec = np.conj(np.fft.rfft(padded, axis=2)).transpose(2, 1, 0)
    mix = np.zeros((freqs, 2 * in_ch, 2 * out_ch))
    mix[:, :in_ch, :out_ch] = spec.real
    mix[:, in_ch:, :out_ch] = -spec.imag
    mix[:, :in_ch, out_ch:] = spec.imag
    mix[:, in_ch:, out_ch:] = spec.real
    weight_f = np.full(freqs, 2.0)
    weight_f[0] = weight_f[-1] = 1.0  # n even: the DC and Nyquist terms appear once
    angle = 2 * np.pi * np.outer(np.arange(hop), np.arange(freqs)) / n
    inverse = np.concatenate([weight_f * np.cos(angle) / n, -weight_f * np.sin(angle) / n], axis=1)
    return (forward.astype(np.float32), mix.astype(np.float32), inverse.astype(np.float32))


class _Tiles(NamedTuple):
    """The overlap-save geometry of a layer: DFT length, hop, frequencies, output length,
    tile count, padded input length, and the (N, T) pixel of each tile sample."""
    n: int
    hop: int
    freqs: int
    out_len: int
    tiles: int
    padded: int
    pixels: np.ndarray


def _tiles(length: int, kernel: int, pads: tuple[int, int]) -> _Tiles:
    n = tile_length(kernel)
    hop = n - kernel + 1
    out_len = length + pads[0] + pads[1] - kernel + 1
    tiles = -(-out_len // hop)
    pixels = (np.arange(tiles)[None, :] * hop + np.arange(n)[:, None]).astype(np.int64)
    return _Tiles(n, hop, n // 2 + 1, out_len, tiles, tiles * hop + kernel - 1, pixels)


def _transformed(x: np.ndarray, weight: np.ndarray, pads: tuple[int, int]) -> np.ndarray:
    """numpy float32 twin of the graph's chain for one (C, L) signal: (O, L_out)."""
    out_ch, _, k = weight.shape
    g = _tiles(x.shape[1], k, pads)
    forward, mix, inverse = spectral_matrices(weight, g.n)
    xp = np.zeros((x.shape[0], g.padded), np.float32)
    xp[:, pads[0]:pads[0] + x.shape[1]] = x
    u = forward @ xp.T[g.pixels].reshape(g.n, -1)                 # (2K, T*C)
    u = u.reshape(2, g.freqs, g.tiles, -1).transpose(1, 2, 0, 3).reshape(g.freqs, g.tiles, -1)
    v = (u @ mix).reshape(g.freqs, g.tiles, 2, out_ch).transpose(2, 0, 1, 3)
    y = inverse @ v.reshape(2 * g.freqs, -1)
    y = y.reshape(g.hop, g.tiles, out_ch).transpose(1, 0, 2).reshape(-1, out_ch)
    return y[:g.out_len].T


def _direct(x: np.ndarray, weight: np.ndarray, pads: tuple[int, int]) -> np.ndarray:
    k = weight.shape[2]
    xp = np.pad(x.astype(np.float64), ((0, 0), (pads[0], pads[1])))
    length = xp.shape[1] - k + 1
    cols = np.stack([xp[:, j:j + length] for j in range(k)], axis=2)  # (C, L, k)
    return np.einsum("ocj,clj->ol", weight.astype(np.float64), cols)


def layer_error(weight: np.ndarray, pads: tuple[int, int], length: int = 300,
                seed: int = 0) -> float:
    """|transformed - direct| of a layer on random inputs, relative to the direct output's RMS."""
    x = np.random.default_rng(seed).standard_normal((weight.shape[1], length)).astype(np.float32)
    want = _direct(x, weight, pads)
    got = _transformed(x, weight, pads)
    if got.shape != want.shape:
        return float("inf")
    rms = float(np.sqrt(np.mean(want ** 2))) or 1.0
    return float(np.max(np.abs(got - want))) / rms


def spectral_convolutions(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """Write `src` with its wide 1-D convolutions in the spectral form to `dst`; the number of
    convolutions rewritten (0, and nothing written, when none qualifies or the model is outside
    what the rewrite handles: it never raises for a malformed model)."""
    return _rewrite_mapped(src, dst, _guarded)


def _guarded(model, dst: Path) -> int:
    """`_rewrite`, with anything it cannot handle (a protobuf it cannot parse, a graph shaped
    unlike any it was written for) meaning "leave the model as it is", never a failed load."""
    try:
        return _rewrite(model, dst)
    except Exception:  # noqa: BLE001 - the model then runs with its convolutions direct
        return -1


def _conv_weight_names(graphs: list) -> set[str]:
    names: set[str] = set()
    for graph in graphs:
        for num, _, value, _, _ in _spans(graph):
            if num == _GRAPH_NODE:
                node = _node_parts(value)
                if node["op"] == "Conv" and len(node["inputs"]) >= 2:
                    names.update(node["inputs"][1:3])
    return names


def _skeleton(model, fields: list, graphs: list, keep: set[str]):
    """The model as an onnx ModelProto without the bytes of its large initializers (their name,
    type and dims kept, so shapes can be inferred); every graph field merged into one."""
    import onnx

    body = []
    for graph in graphs:
        for num, _, value, start, end in _spans(graph):
            if num == _GRAPH_INITIALIZER:
                name, _, external = _weight_dims(value)
                if external:
                    raise ValueError("external data")
                if len(value) > (1 << 20) and not (name in keep and len(value) <= MAX_WEIGHT_BYTES):
                    value = b"".join(bytes(value[s:e]) for n, _, _, s, e in _spans(value)
                                     if n in (_TENSOR_DIMS, _TENSOR_TYPE, _TENSOR_NAME))
                    body.append(_enc_bytes(_GRAPH_INITIALIZER, value))
                    continue
            body.append(bytes(graph[start:end]))
    head = b"".join(bytes(model[s:e]) for num, _, _, s, e in fields if num != _MODEL_GRAPH)
    proto = onnx.ModelProto()
    proto.ParseFromString(head + _enc_bytes(_MODEL_GRAPH, b"".join(body)))
    return proto


class _Builder:
    """The rewritten node list: layout bookkeeping and fresh names."""

    def __init__(self, shapes: dict) -> None:
        self.shapes = shapes
        self.nodes: list = []
        self.inits: list = []
        self.lbc: dict[str, tuple[str, int]] = {}  # original name -> (its (L, B, C) tensor, L)
        self.has_ncl: set[str] = set()  # names whose (B, C, L) tensor exists in the graph
        self.count = 0

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"bossnet_onnx_spectral_{hint}_{self.count}"

    def const(self, value: np.ndarray, hint: str = "c") -> str:
        from onnx import numpy_helper

        name = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, out: str | None = None, **attrs) -> str:
        from onnx import helper

        out = out or self.fresh(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def ints(self, values) -> str:
        return self.const(np.asarray(values, np.int64), "shape")

    def to_lbc(self, name: str) -> tuple[str, int]:
        if name not in self.lbc:
            length = self.shapes[name][2]
            self.lbc[name] = (self.op("Transpose", [name], "lbc", perm=[2, 0, 1]), length)
            self.has_ncl.add(name)
        return self.lbc[name]

    def to_ncl(self, name: str) -> None:
        """Give the (B, C, L) form back under the original name (once)."""
        if name not in self.has_ncl:
            self.op("Transpose", [self.lbc[name][0]], "ncl", out=name, perm=[1, 2, 0])
            self.has_ncl.add(name)

    def spectral(self, node, weight: np.ndarray, bias: np.ndarray | None,
                 pads: tuple[int, int]) -> None:
        out_ch, in_ch, k = weight.shape
        x, length = self.to_lbc(node.input[0])
        n, hop, freqs, out_len, tiles, padded, idx = _tiles(length, k, pads)
        forward, mix, inverse = spectral_matrices(weight, n)
        tag = "conv"
        xp = self.op("Pad", [x, self.ints([pads[0], 0, 0, padded - length - pads[0], 0, 0])], tag)
        t = self.op("Gather", [xp, self.const(idx, "tiles")], tag, axis=0)     # (N, T, B, C)
        t = self.op("Reshape", [t, self.ints([n, -1])], tag)
        u = self.op("MatMul", [self.const(forward, "dft"), t], tag)             # (2K, T*B*C)
        u = self.op("Reshape", [u, self.ints([2, freqs, -1, in_ch])], tag)
        u = self.op("Transpose", [u], tag, perm=[1, 2, 0, 3])                   # (K, TB, 2, C)
        u = self.op("Reshape", [u, self.ints([freqs, -1, 2 * in_ch])], tag)
        v = self.op("MatMul", [u, self.const(mix, "mix")], tag)                 # (K, TB, 2O)
        v = self.op("Reshape", [v, self.ints([freqs, -1, 2, out_ch])], tag)
        v = self.op("Transpose", [v], tag, perm=[2, 0, 1, 3])                   # (2, K, TB, O)
        v = self.op("Reshape", [v, self.ints([2 * freqs, -1])], tag)
        y = self.op("MatMul", [self.const(inverse, "idft"), v], tag)            # (S, T*B*O)
        y = self.op("Reshape", [y, self.ints([hop * tiles, -1, out_ch])], tag)  # rows s*T + t
        pixel = np.arange(out_len)
        order = ((pixel % hop) * tiles + pixel // hop).astype(np.int64)
        y = self.op("Gather", [y, self.const(order, "order")], tag, axis=0)     # (L_out, B, O)
        if bias is not None:
            y = self.op("Add", [y, self.const(bias.astype(np.float32), "bias")], tag)
        self.lbc[node.output[0]] = (y, out_len)


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _candidate(node, consts: dict, shapes: dict):
    """(weight (O, C, k), bias or None, pads) of a Conv worth transforming, else None."""
    if node.op_type != "Conv" or node.domain not in ("", "ai.onnx") or len(node.output) != 1 \
            or len(node.input) not in (2, 3):
        return None
    weight = consts.get(node.input[1])
    bias = consts.get(node.input[2]) if len(node.input) == 3 and node.input[2] else None
    if weight is None or weight.dtype != np.float32 or weight.ndim != 3:
        return None
    if len(node.input) == 3 and node.input[2] and (bias is None or bias.shape != (weight.shape[0],)
                                                   or bias.dtype != np.float32):
        return None
    attrs = _attrs(node)
    if set(attrs) - {"group", "strides", "dilations", "pads", "kernel_shape", "auto_pad"}:
        return None
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    if auto_pad not in (b"NOTSET", "NOTSET") or attrs.get("group", 1) != 1 \
            or list(attrs.get("strides", [1])) != [1] or list(attrs.get("dilations", [1])) != [1] \
            or list(attrs.get("kernel_shape", [weight.shape[2]])) != [weight.shape[2]]:
        return None
    pads = tuple(int(p) for p in attrs.get("pads", [0, 0]))
    shape = shapes.get(node.input[0])
    out_ch, in_ch, k = weight.shape
    if len(pads) != 2 or min(pads) < 0 or max(pads) >= k or shape is None or len(shape) != 3 \
            or shape[1] != in_ch or not isinstance(shape[2], int) \
            or shape[2] + pads[0] + pads[1] < k:
        return None
    if in_ch * out_ch < MIN_CHANNEL_PRODUCT or k < MIN_KERNEL:
        return None
    if not np.all(np.isfinite(weight)) or layer_error(weight, pads) > LAYER_RTOL:
        return None
    return weight, bias, pads


def _channel_pads(node, consts: dict) -> list[int] | None:
    """The (L, B, C) pads of a constant Pad that pads only the channel axis of a 3-D tensor."""
    if node.op_type != "Pad" or node.domain not in ("", "ai.onnx") or len(node.input) < 2:
        return None
    if _attrs(node).get("mode", b"constant") not in (b"constant", "constant"):
        return None
    if len(node.input) > 2 and node.input[2]:
        value = consts.get(node.input[2])
        if value is None or value.size != 1 or float(value.reshape(-1)[0]) != 0.0:
            return None
    if len(node.input) > 3 and node.input[3]:
        return None  # axes input
    pads = consts.get(node.input[1])
    if pads is None or pads.shape != (6,) or any(int(pads[i]) != 0 for i in (0, 2, 3, 5)) \
            or int(pads.min()) < 0:
        return None
    return [0, 0, int(pads[1]), 0, 0, int(pads[4])]


def _pool_gather(node, consts: dict, length: int) -> np.ndarray | None:
    if node.op_type != "Gather" or node.domain not in ("", "ai.onnx") \
            or _attrs(node).get("axis", 0) not in (2, -1):
        return None
    idx = consts.get(node.input[1])
    if idx is None or idx.ndim != 1 or idx.dtype != np.int64 or idx.size == 0 \
            or int(idx.min()) < 0 or int(idx.max()) >= length:
        return None
    return idx


def _weighted_pool(nodes: list, at: int, idx: np.ndarray, consts: dict, shapes: dict,
                   users: dict, outputs: set[str]) -> tuple[list[int], np.ndarray, str] | None:
    """The adaptive pool after the pool Gather at `nodes[at]` (of `idx`): Reshape to
    (B, C, P, w), Mul by a constant (P, w), ReduceSum over the last axis (keepdims 0), each
    the only user of the one before: (their positions, the (P, w) weights, the sum's output)."""
    gather = nodes[at]

    def only_user(name: str, op: str):
        found = users.get(name, [])
        if len(found) != 1 or name in outputs or nodes[found[0]].op_type != op \
                or nodes[found[0]].domain not in ("", "ai.onnx"):
            return None
        return found[0]

    shape = shapes.get(gather.input[0])
    r_at = only_user(gather.output[0], "Reshape")
    if r_at is None or shape is None or len(shape) != 3:
        return None
    target = consts.get(nodes[r_at].input[1])
    if target is None or target.shape != (4,) or int(target[0]) not in (-1, 0) \
            or int(target[1]) != shape[1] or int(target[2]) * int(target[3]) != idx.size \
            or (_attrs(nodes[r_at]).get("allowzero", 0) != 0 and int(target[0]) == 0):
        return None
    pool, width = int(target[2]), int(target[3])
    m_at = only_user(nodes[r_at].output[0], "Mul")
    if m_at is None:
        return None
    other = [i for i in nodes[m_at].input if i != nodes[r_at].output[0]]
    weights = consts.get(other[0]) if len(other) == 1 else None
    if weights is None or weights.dtype != np.float32 \
            or weights.shape not in ((pool, width), (1, 1, pool, width)):
        return None
    s_at = only_user(nodes[m_at].output[0], "ReduceSum")
    if s_at is None:
        return None
    total = nodes[s_at]
    axes = consts.get(total.input[1]) if len(total.input) > 1 and total.input[1] \
        else np.asarray(_attrs(total).get("axes", []))
    if axes is None or [int(a) for a in np.ravel(axes)] not in ([3], [-1]) \
            or _attrs(total).get("keepdims", 1) != 0:
        return None
    return [r_at, m_at, s_at], weights.reshape(pool, width), total.output[0]


def _rewrite(model, dst: Path) -> int:
    import onnx

    if _opset(model) < 13:
        return 0
    fields = list(_spans(model))
    graphs = [f[2] for f in fields if f[0] == _MODEL_GRAPH]
    if not graphs:
        return 0
    proto = _skeleton(model, fields, graphs, _conv_weight_names(graphs))
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # noqa: BLE001 - a graph onnx cannot follow is left alone
        return 0
    graph = inferred.graph
    shapes: dict = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    consts = {}
    for tensor in graph.initializer:
        if tensor.HasField("raw_data") or len(tensor.float_data) or len(tensor.int64_data) \
                or not any(tensor.dims):
            try:
                consts[tensor.name] = onnx.numpy_helper.to_array(tensor)
            except Exception:  # noqa: BLE001
                continue
    inputs = {v.name for v in graph.input}
    consts = {k: v for k, v in consts.items() if k not in inputs}  # overridable: not constant
    nodes = list(graph.node)
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
           for node in nodes for a in node.attribute):
        return 0  # a subgraph may read any tensor of the outer graph by name
    # A tensor's (L, B, C) form is worth making only if a transformed convolution reads it.
    plans = [_candidate(node, consts, shapes) for node in nodes]
    if not any(plans):
        return 0
    b = _Builder(shapes)
    replaced: set[str] = set()
    count = 0
    users: dict[str, list[int]] = {}
    for at, node in enumerate(nodes):
        for name in node.input:
            users.setdefault(name, []).append(at)
    outputs = {v.name for v in graph.output}
    skip: set[int] = set()
    for at, (node, plan) in enumerate(zip(nodes, plans)):
        if at in skip:
            continue
        ins = list(node.input)
        if plan is not None:
            b.spectral(node, *plan)
            replaced.update(ins[1:])
            count += 1
            continue
        in_lbc = [i for i in ins if i in b.lbc]
        if in_lbc and node.op_type in _UNARY and node.domain in ("", "ai.onnx") \
                and len(ins) == 1 and len(node.output) == 1:
            x, length = b.lbc[ins[0]]
            y = b.op(node.op_type, [x], "act")
            b.nodes[-1].attribute.extend(node.attribute)
            b.lbc[node.output[0]] = (y, length)
            continue
        if in_lbc and node.op_type == "Add" and node.domain in ("", "ai.onnx") and len(ins) == 2 \
                and len(node.output) == 1 and shapes.get(ins[0]) is not None \
                and shapes.get(ins[0]) == shapes.get(ins[1]) and len(shapes[ins[0]]) == 3 \
                and isinstance(shapes[ins[0]][2], int):
            (a, length), (c, _) = b.to_lbc(ins[0]), b.to_lbc(ins[1])
            b.lbc[node.output[0]] = (b.op("Add", [a, c], "add"), length)
            continue
        pads = _channel_pads(node, consts) if in_lbc and ins[0] in b.lbc else None
        if pads is not None:
            x, length = b.lbc[ins[0]]
            b.lbc[node.output[0]] = (b.op("Pad", [x, b.ints(pads)], "pad"), length)
            continue
        idx = _pool_gather(node, consts, b.lbc[ins[0]][1]) if in_lbc and ins[0] in b.lbc \
            and ins[1] not in b.lbc else None
        if idx is not None:
            g = b.op("Gather", [b.lbc[ins[0]][0], ins[1]], "pool", axis=0)  # (P*w, B, C)
            pool = _weighted_pool(nodes, at, idx, consts, shapes, users, outputs)
            if pool is None:
                b.op("Transpose", [g], "pool", out=node.output[0], perm=[1, 2, 0])
                continue
            # The weighted sum over each bin's w pixels in the (length, batch, channels)
            # layout, over a middle axis, then one transpose of the pooled (P, B, C) tensor.
            taken, weights, out = pool
            skip.update(taken)
            pooled, width = weights.shape
            channels = shapes[ins[0]][1]
            r = b.op("Reshape", [g, b.ints([pooled, width, -1, channels])], "pool")
            m = b.op("Mul", [r, b.const(weights.reshape(pooled, width, 1, 1), "poolw")], "pool")
            t = b.op("ReduceSum", [m, b.ints([1])], "pool", keepdims=0)  # (P, B, C)
            b.op("Transpose", [t], "pool", out=out, perm=[1, 2, 0])
            continue
        for name in in_lbc:
            b.to_ncl(name)
        b.nodes.append(node)
    for value in graph.output:
        if value.name in b.lbc:
            b.to_ncl(value.name)
    if not count:
        return 0
    used = {i for node in b.nodes for i in node.input}
    dropped = {name for name in replaced if name not in used}
    return _write(model, fields, graphs, b, dropped, dst, count)


def _write(model, fields: list, graphs: list, b: _Builder, dropped: set[str], dst: Path,
           count: int) -> int:
    pieces: list = [_enc_bytes(_GRAPH_NODE, node.SerializeToString()) for node in b.nodes]
    for graph in graphs:
        for num, _, value, start, end in _spans(graph):
            if num in (_GRAPH_NODE, _GRAPH_VALUE_INFO):
                continue  # value_info: shapes onnxruntime infers again
            if num == _GRAPH_INITIALIZER and _weight_dims(value)[0] in dropped:
                continue
            pieces.append(graph[start:end])
    pieces += [_enc_bytes(_GRAPH_INITIALIZER, t.SerializeToString()) for t in b.inits]
    _write_model(model, fields, [pieces] + [[] for _ in graphs[1:]], dst)
    return count

