"""One full-size test per sibling network: APOGEE Net, Gaia RVS Net and Gaia XP Net at their
published sizes (model_args.yaml of each model_* folder at 101ac2b), random He-initialised
weights in the official 10-chunk layout -> ONNX -> the fatal parity check -> the runtime.

The BOSS network's full-size test is test_export_full.py; CI runs these too (slow marker).
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from bossnet_export import export_model  # noqa: E402
from bossnet_export.config import BossNetConfig  # noqa: E402
from bossnet_export.parity import output_spread  # noqa: E402
from bossnet_export.random_weights import build_random_model, save_official_layout  # noqa: E402
from bossnet_onnx.model.session import open_model  # noqa: E402
from bossnet_onnx.science.members import MEMBERS, OFFICIAL_CONFIGS  # noqa: E402

pytestmark = [pytest.mark.export, pytest.mark.slow]

@pytest.mark.parametrize("member", ["apogee", "gaia-rvs", "gaia-xp"])
def test_full_size_member_exports_with_parity_and_runs(member, tmp_path):
    config = BossNetConfig.from_mapping(OFFICIAL_CONFIGS[member])
    n_inputs = MEMBERS[member].n_inputs
    model = build_random_model(config, seed=31)
    assert output_spread(model, n_inputs) > 0.05  # outputs move with the input
    checkpoint = save_official_layout(model, tmp_path / f"model_{member}", n_chunks=10)
    out = tmp_path / f"{member}.onnx"

    report = export_model(checkpoint, out, member=member, provenance="random-weights")

    assert report.max_abs_diff < 1e-4  # the fatal parity check, on the full network
    n_params = sum(p.numel() for p in model.parameters())
    assert report.n_parameters == n_params
    loaded = open_model(out, provider="cpu", threads=2)
    assert loaded.metadata.family_member.name == member
    rows = np.random.default_rng(3).standard_normal((3, n_inputs)).astype(np.float32)
    out_rows = loaded.run_normalized(rows)
    with torch.no_grad():
        expected = model(torch.from_numpy(rows).unsqueeze(1)).numpy()
    assert out_rows.shape == (3, len(MEMBERS[member].parameter_names))
    assert np.max(np.abs(out_rows - expected)) < 1e-4
