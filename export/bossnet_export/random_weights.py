"""Random BOSS Net weights that behave like trained ones, for tests and benchmarks.

PyTorch's default initialisation plus fresh BatchNorm statistics (mean 0, var 1) gives a
network whose output hardly changes with the input, so a parity test on it could pass even if
the graph ignored the spectrum. He initialisation and non-trivial BatchNorm parameters keep the
activations alive through the residual stack, so outputs vary with the input.

`save_official_layout` writes exactly what the published checkpoints look like (one
`torch.save` file split into N byte chunks, the last taking the remainder) so loaders are
tested against the real layout rather than a convenient one.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .config import BossNetConfig, OFFICIAL_BOSS
from .network import BossNet

__all__ = ["build_random_model", "save_official_layout", "save_state_dict", "SMALL_CONFIG"]

#: A network small enough for fast tests: same topology, a few thousand times fewer weights.
SMALL_CONFIG = BossNetConfig(model_dim=2, dim_mults=(1, 2, 4), kernel_size=30,
                             adapt_pool_output_dim=64, num_linear=2, linear_dim=64)


@torch.no_grad()
def build_random_model(config: BossNetConfig = OFFICIAL_BOSS, seed: int = 0) -> BossNet:
    """A BossNet in eval mode with seeded He-initialised weights and non-trivial BatchNorm."""
    generator = torch.Generator().manual_seed(seed)
    model = BossNet(config)
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            fan_in = module.weight[0].numel()
            std = (2.0 / fan_in) ** 0.5
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
            if module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.05)
        elif isinstance(module, nn.BatchNorm1d):
            n = module.num_features
            module.weight.copy_(0.5 + torch.rand(n, generator=generator))
            module.bias.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
            module.num_batches_tracked.fill_(1000)
    # The last layer predicts normalised values: keep them O(1), as a trained model's are.
    model.linear_sequential[-1].weight.mul_(0.5)
    return model.eval()


def save_state_dict(model: nn.Module, path: str | Path) -> Path:
    """Plain `torch.save(state_dict)`, the layout of most user checkpoints."""
    path = Path(path)
    torch.save(model.state_dict(), path)
    return path


def save_official_layout(model: BossNet, directory: str | Path, n_chunks: int = 10) -> Path:
    """model_args.yaml + model_chunk_0..n-1: the byte-split of one torch.save file."""
    import io

    import yaml

    if n_chunks < 1:
        raise ValueError(f"n_chunks is {n_chunks}; expected >= 1")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    payload = buffer.getvalue()
    size = len(payload) // n_chunks
    for i in range(n_chunks):
        stop = len(payload) if i == n_chunks - 1 else (i + 1) * size
        (directory / f"model_chunk_{i}").write_bytes(payload[i * size:stop])
    with open(directory / "model_args.yaml", "w", encoding="utf-8") as handle:
        yaml.safe_dump(model.config.to_dict(), handle, sort_keys=False)
    return directory
