"""The BOSS Net network as plain facts: parameter names and shapes, lengths, pool bins, grid.

Both converters and the numpy check need them: the torch network (`bossnet_export.network`)
checks its own layout against `state_shapes`, and the torch-free converter builds its graph
from them. Names follow the published checkpoints (`first_conv.conv_layer`,
`res_blocks.N.conv1`, `linear_sequential.K.linear_layer`, ...).
"""
from __future__ import annotations

import itertools

import numpy as np

from ..science.members import BOSS_GRID_POINTS, BOSS_GRID_START, BOSS_GRID_STOP
from .config import BossNetConfig

__all__ = ["N_PIXELS", "BN_EPSILON", "DERIVED_KEYS", "state_shapes", "feature_length",
           "pool_bins", "pool_gather", "position_channel", "reference_grid",
           "residual_pads"]

#: Pixels of the reference wavelength grid (3800-8900 A; stated in science/members.py).
N_PIXELS = BOSS_GRID_POINTS
#: torch.nn.BatchNorm1d's default epsilon, which the published networks use.
BN_EPSILON = 1e-5
#: Buffers the network derives itself; an older checkpoint may lack them.
DERIVED_KEYS = frozenset({"pos_enc.inv_freq"})


def _bn(prefix: str, n: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (n,), f"{prefix}.bias": (n,), f"{prefix}.running_mean": (n,),
            f"{prefix}.running_var": (n,), f"{prefix}.num_batches_tracked": ()}


def state_shapes(config: BossNetConfig) -> dict[str, tuple[int, ...]]:
    """Every state-dict key of the network `config` describes, with its shape, in order."""
    k = config.kernel_size
    dims = config.channels
    shapes: dict[str, tuple[int, ...]] = {}
    if config.pos_enc:
        shapes["pos_enc.inv_freq"] = (1,)
    shapes["first_conv.conv_layer.weight"] = (dims[0], 2 if config.pos_enc else 1, k)
    shapes["first_conv.conv_layer.bias"] = (dims[0],)
    shapes.update(_bn("first_conv.bn", dims[0]))
    for i, (c_in, c_out) in enumerate(itertools.pairwise(dims)):
        shapes[f"res_blocks.{i}.conv1.weight"] = (c_out, c_in, k)
        shapes.update(_bn(f"res_blocks.{i}.bn1", c_out))
        shapes[f"res_blocks.{i}.conv2.weight"] = (c_out, c_out, k)
        shapes.update(_bn(f"res_blocks.{i}.bn2", c_out))
    width = dims[-1] * config.adapt_pool_output_dim
    for j in range(config.num_linear):
        shapes[f"linear_sequential.{j}.linear_layer.weight"] = (config.linear_dim,
                                                                 width if j == 0 else
                                                                 config.linear_dim)
        shapes[f"linear_sequential.{j}.linear_layer.bias"] = (config.linear_dim,)
    shapes[f"linear_sequential.{config.num_linear}.weight"] = (config.num_targets,
                                                               config.linear_dim)
    shapes[f"linear_sequential.{config.num_linear}.bias"] = (config.num_targets,)
    return shapes


def residual_pads(kernel_size: int) -> tuple[int, int]:
    """Padding of a residual block's two convolutions: with an even kernel the second pads one
    pixel less, so the block keeps the length it was given (the first adds one pixel)."""
    pad = kernel_size // 2
    return pad, (pad - 1 if kernel_size % 2 == 0 else pad)


def feature_length(config: BossNetConfig, n_pixels: int = N_PIXELS) -> int:
    """Length of the feature map entering the adaptive pool (1950 for the BOSS model)."""
    k = config.kernel_size
    pad1, pad2 = residual_pads(k)
    length = (n_pixels + 2 * (k // 2) - k + 1) // 2
    for _ in config.dim_mults[1:]:
        length = length + 2 * pad1 - k + 1
        length = length + 2 * pad2 - k + 1
    return length


def pool_bins(length_in: int, length_out: int) -> list[tuple[int, int]]:
    """torch's AdaptiveAvgPool1d bins: bin i averages [floor(i*Lin/Lout), ceil((i+1)*Lin/Lout))."""
    return [((i * length_in) // length_out, -((-(i + 1) * length_in) // length_out))
            for i in range(length_out)]


def pool_gather(length_in: int, length_out: int) -> tuple[np.ndarray, np.ndarray]:
    """(index int64, weight float32), both (length_out, width): the adaptive pool as a gather.

    With 1950 -> 1024 the bins overlap and differ in width, which the TorchScript exporter
    refuses. Here `pooled[..., i] = sum_j x[..., index[i, j]] * weight[i, j]`, weight 1/(bin
    width) and 0 for the padding of narrower bins: constant Gather + Mul + ReduceSum, exact in
    every runtime and ~2 operations per output, where a dense averaging matrix would cost
    0.26 GFLOP per spectrum (a fifth of the BOSS network) multiplying zeros.
    """
    bins = pool_bins(length_in, length_out)
    width = max(stop - start for start, stop in bins)
    index = np.zeros((length_out, width), dtype=np.int64)
    weight = np.zeros((length_out, width), dtype=np.float64)
    for i, (start, stop) in enumerate(bins):
        n = stop - start
        index[i, :n] = np.arange(start, stop)
        index[i, n:] = start
        weight[i, :n] = 1.0 / n
    return index, weight.astype(np.float32)


def position_channel(length: int, inv_freq: float = 1.0) -> np.ndarray:
    """(1, 1, length) float32 sin(pixel index * inv_freq): the reference's positional channel.

    The reference builds a sinusoidal encoding whose channel count is rounded up to 2 (so
    `inv_freq` is the single frequency 1.0) and keeps only the sine channel.
    """
    pos = np.arange(length, dtype=np.float32)
    angle = pos * np.float32(inv_freq)
    return np.sin(angle.astype(np.float64)).astype(np.float32).reshape(1, 1, length)


def reference_grid(n_pixels: int = N_PIXELS, start: float = BOSS_GRID_START,
                   stop: float = BOSS_GRID_STOP) -> np.ndarray:
    """The exact float32 grid of the reference preprocessing, torch.linspace(3800, 8900, n).

    torch computes the step in float32 and each point as start + step*i (the upper half as
    stop - step*(n-1-i)) with one rounding; tests compare it with torch bit for bit.
    """
    first, last = np.float32(start), np.float32(stop)
    if n_pixels == 1:
        return np.array([first], dtype=np.float32)
    step = np.float64(np.float32((last - first) / np.float32(n_pixels - 1)))
    idx = np.arange(n_pixels, dtype=np.float64)
    lower = np.float64(first) + step * idx
    upper = np.float64(last) - step * (n_pixels - 1 - idx)
    return np.where(idx < n_pixels // 2, lower, upper).astype(np.float32)
