"""BOSS Net (Sizemore et al. 2024) re-implemented so the official state dict loads strictly.

Submodule and parameter names follow the published checkpoints exactly (`first_conv.conv_layer`,
`res_blocks.N.conv1`, `linear_sequential.K.linear_layer`, ...), because a renamed key would make
`load_state_dict(strict=True)` fail on the real weights. `BossNet.forward` reproduces the
reference computation (including its adaptive average pool) and is the PyTorch side of the
parity check; `export_graph` builds the fixed-shape variant that is handed to the ONNX exporter.
"""
from __future__ import annotations

import itertools

import torch
from torch import nn

from bossnet_onnx.convert.architecture import N_PIXELS, feature_length, pool_gather, residual_pads

from .config import BossNetConfig

__all__ = ["BossNet", "ExportGraph", "adaptive_pool_gather", "feature_length", "N_PIXELS"]

class SinusoidalPosition(nn.Module):
    """One extra input channel holding sin(pixel index).

    The reference builds a sinusoidal encoding whose channel count is rounded up to 2
    (so `inv_freq` is the single frequency 1.0) and keeps only the first (sine) channel.
    `inv_freq` is a buffer in the official state dict, so it is kept as one here.
    """

    inv_freq: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        channels = 2
        inv_freq = 1.0 / (10000 ** (torch.arange(0, channels, 2).float() / channels))
        self.register_buffer("inv_freq", inv_freq)

    def channel(self, length: int) -> torch.Tensor:
        """(1, 1, length) sine channel, computed in float32 like the reference."""
        pos = torch.arange(length, device=self.inv_freq.device).to(self.inv_freq.dtype)
        return torch.sin(pos * self.inv_freq[0]).reshape(1, 1, length)

    def forward(self, flux: torch.Tensor) -> torch.Tensor:
        batch, _, length = flux.shape
        return self.channel(length).to(flux.dtype).expand(batch, 1, length)


class FirstBlock(nn.Module):
    """Conv (with bias) -> BatchNorm -> ELU -> MaxPool(2): halves the spectrum length."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv_layer = nn.Conv1d(in_channels, out_channels, kernel_size,
                                    padding=kernel_size // 2)
        self.bn = nn.BatchNorm1d(out_channels)
        self.elu = nn.ELU()
        self.pool = nn.MaxPool1d(kernel_size=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.elu(self.bn(self.conv_layer(x))))


class ResidualBlock(nn.Module):
    """Two bias-free convolutions with BatchNorm; the shortcut grows by zero channels.

    With an even kernel the second convolution pads one pixel less so the block keeps the
    length it was given (the first convolution adds one pixel).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        pad, pad2 = residual_pads(kernel_size)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernel_size, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm1d(out_channels)
        self.conv2 = nn.Conv1d(out_channels, out_channels, kernel_size,
                               padding=pad2, bias=False)
        self.bn2 = nn.BatchNorm1d(out_channels)
        self.elu = nn.ELU()
        grow = out_channels - in_channels
        self.pad_before = grow // 2
        self.pad_after = grow - self.pad_before

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.elu(self.bn1(self.conv1(x)))))
        shortcut = x
        if self.out_channels != self.in_channels:
            # Pad on the channel axis: (last dim left, right, channel front, back).
            shortcut = nn.functional.pad(x, (0, 0, self.pad_before, self.pad_after))
        return self.elu(out + shortcut)


class LinearBlock(nn.Module):
    """Linear -> ReLU; the wrapper exists only because the checkpoint names `linear_layer`."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear_layer = nn.Linear(in_features, out_features)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.linear_layer(x))


class BossNet(nn.Module):
    """The reference network: flux (B, 1, L) -> normalised parameters (B, num_targets)."""

    def __init__(self, config: BossNetConfig) -> None:
        super().__init__()
        self.config = config
        dims = config.channels
        self.pos_enc = SinusoidalPosition() if config.pos_enc else None
        self.first_conv = FirstBlock(2 if config.pos_enc else 1, dims[0], config.kernel_size)
        self.res_blocks = nn.ModuleList(
            ResidualBlock(c_in, c_out, config.kernel_size) for c_in, c_out in itertools.pairwise(dims)
        )
        self.adapt_pool = nn.AdaptiveAvgPool1d(config.adapt_pool_output_dim)
        width = dims[-1] * config.adapt_pool_output_dim
        self.linear_sequential = nn.Sequential(
            LinearBlock(width, config.linear_dim),
            *(LinearBlock(config.linear_dim, config.linear_dim)
              for _ in range(config.num_linear - 1)),
            nn.Linear(config.linear_dim, config.num_targets),
        )

    def convolutions(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, L) flux -> (B, C, L') features before pooling."""
        if self.pos_enc is not None:
            x = torch.cat([x, self.pos_enc(x)], dim=1)
        out = self.first_conv(x)
        for block in self.res_blocks:
            out = block(out)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.adapt_pool(self.convolutions(x))
        return self.linear_sequential(out.flatten(1))


def adaptive_pool_gather(length_in: int, length_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(index, weight) of `bossnet_onnx.convert.architecture.pool_gather` as torch tensors."""
    index, weight = pool_gather(length_in, length_out)
    return torch.from_numpy(index), torch.from_numpy(weight)


class ExportGraph(nn.Module):
    """What goes into the ONNX file: flux (B, 3900) -> (normalized, physical).

    The positional channel and the pooling gather indices are constants of the graph, so the length
    axis is fixed to `n_pixels` and only the batch axis may vary. `physical` applies the
    normalisation statistics in the network's output order.
    """

    position: torch.Tensor | None
    pool_index: torch.Tensor
    pool_weight: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, net: BossNet, means: list[float], stds: list[float],
                 n_pixels: int = N_PIXELS) -> None:
        super().__init__()
        config = net.config
        if len(means) != config.num_targets or len(stds) != config.num_targets:
            raise ValueError(f"{len(means)} MEAN / {len(stds)} STD values for "
                             f"{config.num_targets} network outputs")
        self.net = net
        self.n_pixels = n_pixels
        if net.pos_enc is not None:
            self.register_buffer("position", net.pos_enc.channel(n_pixels).detach().clone())
        else:
            self.position = None
        length = feature_length(config, n_pixels)
        index, weight = adaptive_pool_gather(length, config.adapt_pool_output_dim)
        self.register_buffer("pool_index", index)
        self.register_buffer("pool_weight", weight)
        self.register_buffer("mean", torch.tensor(means, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(stds, dtype=torch.float32))

    def forward(self, flux: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = flux.unsqueeze(1)
        if self.position is not None:
            x = torch.cat([x, self.position.expand(flux.shape[0], 1, self.n_pixels)], dim=1)
        out = self.net.first_conv(x)
        for block in self.net.res_blocks:
            out = block(out)
        # index_select exports as one Gather on the length axis (advanced indexing would add
        # two Transposes of the whole feature map).
        picked = out.index_select(2, self.pool_index.flatten())
        pooled = (picked.unflatten(2, tuple(self.pool_index.shape)) * self.pool_weight).sum(dim=-1)
        normalized = self.net.linear_sequential(pooled.flatten(1))
        return normalized, normalized * self.std + self.mean

