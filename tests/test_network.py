"""The re-implemented network: official key names, shapes, pooling matrix, export graph."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bossnet_export.config import OFFICIAL_BOSS, BossNetConfig  # noqa: E402
from bossnet_export.network import BossNet, ExportGraph, adaptive_pool_gather, feature_length  # noqa: E402
from bossnet_export.random_weights import SMALL_CONFIG, build_random_model  # noqa: E402

pytestmark = pytest.mark.export


def _official_keys() -> list[str]:
    """The 70 state-dict keys of the published BOSS checkpoint, written out by hand."""
    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    keys = ["pos_enc.inv_freq", "first_conv.conv_layer.weight", "first_conv.conv_layer.bias"]
    keys += [f"first_conv.bn.{k}" for k in bn]
    for i in range(4):
        keys += [f"res_blocks.{i}.conv1.weight"] + [f"res_blocks.{i}.bn1.{k}" for k in bn]
        keys += [f"res_blocks.{i}.conv2.weight"] + [f"res_blocks.{i}.bn2.{k}" for k in bn]
    for i in range(6):
        keys += [f"linear_sequential.{i}.linear_layer.weight",
                 f"linear_sequential.{i}.linear_layer.bias"]
    keys += ["linear_sequential.6.weight", "linear_sequential.6.bias"]
    return keys


@pytest.fixture(scope="module")
def official_net():
    return BossNet(OFFICIAL_BOSS).eval()


def test_official_state_dict_keys_and_size(official_net):
    state = official_net.state_dict()
    assert list(state) == _official_keys()
    assert sum(p.numel() for p in official_net.parameters()) == 72_607_520
    assert state["pos_enc.inv_freq"].tolist() == [1.0]
    assert tuple(state["first_conv.conv_layer.weight"].shape) == (4, 2, 30)
    assert tuple(state["res_blocks.3.conv2.weight"].shape) == (64, 64, 30)
    assert tuple(state["linear_sequential.0.linear_layer.weight"].shape) == (1024, 64 * 1024)
    assert tuple(state["linear_sequential.6.weight"].shape) == (4, 1024)


def test_feature_lengths(official_net):
    x = torch.zeros(1, 1, 3900)
    with torch.no_grad():
        features = official_net.convolutions(x)
    assert tuple(features.shape) == (1, 64, 1950)
    assert feature_length(OFFICIAL_BOSS) == 1950
    odd = BossNetConfig(model_dim=2, dim_mults=(1, 2), kernel_size=7, adapt_pool_output_dim=8,
                        num_linear=1, linear_dim=8)
    with torch.no_grad():
        assert BossNet(odd).convolutions(torch.zeros(1, 1, 3900)).shape[-1] == feature_length(odd)


def test_positional_channel_is_sine_of_pixel_index(official_net):
    channel = official_net.pos_enc(torch.zeros(3, 1, 3900))
    assert tuple(channel.shape) == (3, 1, 3900)
    expected = np.sin(np.arange(3900, dtype=np.float32))
    np.testing.assert_allclose(channel[2, 0].numpy(), expected, atol=2e-6, rtol=0)


@pytest.mark.parametrize(("lin", "lout"), [(1950, 1024), (1950, 64), (10, 4), (7, 7), (5, 9)])
def test_pool_gather_reproduces_adaptive_avg_pool(lin, lout):
    x = torch.randn(3, 5, lin, generator=torch.Generator().manual_seed(lin + lout))
    expected = torch.nn.AdaptiveAvgPool1d(lout)(x)
    index, weight = adaptive_pool_gather(lin, lout)
    got = (x[:, :, index] * weight).sum(dim=-1)
    assert torch.max(torch.abs(got - expected)).item() < 1e-6
    # Each bin's weights are an average: they sum to one.
    np.testing.assert_allclose(weight.sum(1).numpy(), 1.0, atol=1e-6)


def test_pool_bins_overlap_for_non_integer_ratio():
    index, weight = adaptive_pool_gather(1950, 1024)
    widths = (weight > 0).sum(dim=1)
    assert set(widths.tolist()) == {2, 3}  # 1950/1024 ~ 1.9: bins of 2 or 3 pixels
    used = index[weight > 0].numpy()
    assert np.bincount(used).max() == 2  # some pixels feed two bins
    assert index.shape == (1024, 3)


def test_residual_shortcut_pads_channels_symmetrically():
    net = BossNet(BossNetConfig(model_dim=3, dim_mults=(1, 2), kernel_size=3,
                                adapt_pool_output_dim=4, num_linear=1, linear_dim=4))
    block = net.res_blocks[0]
    assert (block.in_channels, block.out_channels) == (3, 6)
    assert (block.pad_before, block.pad_after) == (1, 2)
    with torch.no_grad():
        for p in block.parameters():
            p.zero_()
        block.bn2.running_mean.zero_()
        block.bn2.running_var.fill_(1.0)
        block.eval()
        x = torch.arange(1, 4, dtype=torch.float32).reshape(1, 3, 1).expand(1, 3, 5)
        out = block(x)
    # conv branch is zero, so out = ELU(shortcut): zeros, then channels 1..3, then two zeros.
    assert out[0, :, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 0.0, 0.0]


def test_export_graph_matches_reference_forward():
    net = build_random_model(SMALL_CONFIG, seed=5)
    graph = ExportGraph(net, [3.9, 3.8, -0.4, -7.4], [0.9, 0.1, 0.5, 60.9]).eval()
    x = torch.randn(4, 3900, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = net(x.unsqueeze(1))
        normalized, physical = graph(x)
    assert torch.max(torch.abs(normalized - reference)).item() < 1e-5
    expected = normalized * torch.tensor([0.9, 0.1, 0.5, 60.9]) + torch.tensor([3.9, 3.8, -0.4, -7.4])
    assert torch.allclose(physical, expected)
    assert reference.std(dim=0).mean().item() > 0.02


def test_random_model_is_seeded_and_varies():
    a = build_random_model(SMALL_CONFIG, seed=1).state_dict()
    b = build_random_model(SMALL_CONFIG, seed=1).state_dict()
    c = build_random_model(SMALL_CONFIG, seed=2).state_dict()
    key = "first_conv.bn.running_var"
    assert torch.equal(a[key], b[key]) and not torch.equal(a[key], c[key])
    assert not torch.allclose(a[key], torch.ones_like(a[key]))
    w = a["linear_sequential.0.linear_layer.weight"]
    assert math.isclose(w.std().item(), math.sqrt(2 / w.shape[1]), rel_tol=0.05)
