"""BOSS Net's forward pass in plain numpy: the check a torch-free conversion is held to.

Written from the network's definition, not from the ONNX graph: the convolutions are im2col
products, the adaptive pool averages each of torch's bins by slicing (the graph gathers them
with constant indices), the position channel and batch norm are recomputed from the weights.
A mistake in the graph builder would have to be repeated here, differently, to go unseen.
Accumulation is float64 where it matters (batch norm, pooling) and BLAS float32 elsewhere.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np

from .architecture import BN_EPSILON, pool_bins, position_channel, residual_pads
from .config import BossNetConfig

__all__ = ["forward"]


def _conv1d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, pad: int) -> np.ndarray:
    """(B, C, L) * (O, C, K) -> (B, O, L + 2 pad - K + 1), zero padding, one row at a time."""
    out_ch, in_ch, k = weight.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad)))
    length = padded.shape[2] - k + 1
    kernel = weight.reshape(out_ch, in_ch * k).T  # (C*K, O)
    out = np.empty((x.shape[0], out_ch, length), dtype=np.float32)
    for b in range(x.shape[0]):
        windows = np.lib.stride_tricks.sliding_window_view(padded[b], k, axis=1)  # (C, L', K)
        cols = np.ascontiguousarray(windows.transpose(1, 0, 2)).reshape(length, in_ch * k)
        out[b] = (cols @ kernel).T
    if bias is not None:
        out += bias[None, :, None]
    return out


def _batch_norm(x: np.ndarray, state: Mapping[str, np.ndarray], prefix: str) -> np.ndarray:
    scale = state[f"{prefix}.weight"].astype(np.float64) / np.sqrt(
        state[f"{prefix}.running_var"].astype(np.float64) + BN_EPSILON)
    shift = state[f"{prefix}.bias"] - state[f"{prefix}.running_mean"] * scale
    return (x * scale[None, :, None] + shift[None, :, None]).astype(np.float32)


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0))).astype(np.float32)


def forward(state: Mapping[str, np.ndarray], config: BossNetConfig, flux: np.ndarray
            ) -> np.ndarray:
    """Normalised outputs (B, num_targets) of the network for model rows `flux` (B, L)."""
    k = config.kernel_size
    x = np.asarray(flux, dtype=np.float32)[:, None, :]
    batch, _, length = x.shape
    if config.pos_enc:
        inv = float(state["pos_enc.inv_freq"].reshape(-1)[0])
        pos = np.broadcast_to(position_channel(length, inv), (batch, 1, length))
        x = np.concatenate([x, pos], axis=1)
    out = _conv1d(x, state["first_conv.conv_layer.weight"], state["first_conv.conv_layer.bias"],
                  k // 2)
    out = _elu(_batch_norm(out, state, "first_conv.bn"))
    half = out.shape[2] // 2
    out = out[:, :, :2 * half].reshape(batch, out.shape[1], half, 2).max(axis=3)
    pad1, pad2 = residual_pads(k)
    for i, (c_in, c_out) in enumerate(itertools.pairwise(config.channels)):
        p = f"res_blocks.{i}"
        h = _elu(_batch_norm(_conv1d(out, state[f"{p}.conv1.weight"], None, pad1), state,
                             f"{p}.bn1"))
        h = _batch_norm(_conv1d(h, state[f"{p}.conv2.weight"], None, pad2), state, f"{p}.bn2")
        grow = c_out - c_in
        shortcut = np.pad(out, ((0, 0), (grow // 2, grow - grow // 2), (0, 0)))
        out = _elu(h + shortcut)
    bins = pool_bins(out.shape[2], config.adapt_pool_output_dim)
    wide = out.astype(np.float64)
    pooled = np.stack([wide[:, :, a:b].mean(axis=2) for a, b in bins], axis=2)
    h = pooled.astype(np.float32).reshape(batch, -1)
    for j in range(config.num_linear):
        p = f"linear_sequential.{j}.linear_layer"
        h = np.maximum(h @ state[f"{p}.weight"].T + state[f"{p}.bias"], 0)
    p = f"linear_sequential.{config.num_linear}"
    return (h @ state[f"{p}.weight"].T + state[f"{p}.bias"]).astype(np.float32)
