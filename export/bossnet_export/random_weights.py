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

from .config import OFFICIAL_BOSS, BossNetConfig
from .network import BossNet

__all__ = ["build_random_model", "save_official_layout", "save_state_dict", "SMALL_CONFIG"]

#: A network small enough for fast tests: same topology, a few thousand times fewer weights.
SMALL_CONFIG = BossNetConfig(model_dim=2, dim_mults=(1, 2, 4), kernel_size=30,
                             adapt_pool_output_dim=64, num_linear=2, linear_dim=64)


@torch.no_grad()
def build_random_model(config: BossNetConfig = OFFICIAL_BOSS, seed: int = 0,
                       calibration_rows=None) -> BossNet:
    """A BossNet in eval mode with seeded He-initialised weights and non-trivial BatchNorm.

    Seeded: the same (config, seed) gives the same weights on every machine.
    `calibration_rows` (rows x length, float32) are model inputs for the BatchNorm statistics;
    default: log-scaled spectrum-like rows and noise (BOSS/APOGEE Net inputs). Members fed raw
    values (Gaia XP coefficients up to 1e5) need their own.
    """
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
            assert module.running_mean is not None and module.running_var is not None
            assert module.num_batches_tracked is not None
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
            module.num_batches_tracked.fill_(1000)
    _calibrate_batchnorm(model, generator, calibration_rows)
    # The last layer predicts normalised values: keep them O(1), as a trained model's are.
    last = model.linear_sequential[-1]
    assert isinstance(last.weight, torch.Tensor)
    last.weight.mul_(0.5)
    return model.eval()


@torch.no_grad()
def _calibrate_batchnorm(model: BossNet, generator: torch.Generator, rows=None) -> None:
    """Running statistics measured on spectrum-like and random inputs, then perturbed.

    A trained network's BatchNorm layers hold the mean/variance of their real inputs, which
    keeps activations O(1) all the way down; random statistics let them grow block after
    block until float32 rounding, not the export, dominates any comparison.
    """
    import numpy as np

    from .parity import spectrum_like

    rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=generator)))
    if rows is None:
        rows = np.concatenate([spectrum_like(12, 3900, rng),
                               rng.standard_normal((4, 3900)).astype(np.float32)])
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    saved = [(m.weight.clone(), m.bias.clone()) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: one pass gives the batch statistics
        m.weight.fill_(1.0)
        m.bias.zero_()
    model.train()
    model(torch.from_numpy(rows).unsqueeze(1))
    for m, (weight, bias) in zip(norms, saved):
        m.momentum = 0.1
        m.weight.copy_(weight)
        m.bias.copy_(bias)
        # Jitter so the statistics are not exactly those of the parity inputs.
        assert m.running_mean is not None and m.running_var is not None
        assert m.num_batches_tracked is not None
        m.running_mean.add_(torch.randn(m.num_features, generator=generator) * 0.05
                            * m.running_var.sqrt())
        m.running_var.mul_(0.8 + 0.4 * torch.rand(m.num_features, generator=generator))
        m.num_batches_tracked.fill_(1000)
    model.eval()


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
