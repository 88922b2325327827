"""The full-size official BOSS configuration: chunked checkpoint -> ONNX -> parity, int8 copy.

Random weights stand in for the published ones (which cannot be downloaded here); they have the
exact official shapes (72.6M parameters), the official 10-chunk byte-split layout, and
non-trivial BatchNorm statistics, so the outputs move with the input.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

import onnxruntime as ort  # noqa: E402

from bossnet_export import OFFICIAL_BOSS, export_model  # noqa: E402
from bossnet_export.parity import output_spread, parity_inputs, torch_outputs  # noqa: E402
from bossnet_export.random_weights import build_random_model, save_official_layout  # noqa: E402
from bossnet_onnx.model.metadata import ModelMetadata  # noqa: E402

pytestmark = [pytest.mark.export, pytest.mark.slow]


def test_full_size_official_layout_export(tmp_path):
    model = build_random_model(OFFICIAL_BOSS, seed=2024)
    assert output_spread(model, 3900) > 0.1
    checkpoint = save_official_layout(model, tmp_path / "model_boss", n_chunks=10)
    out = tmp_path / "bossnet-boss.onnx"

    report = export_model(checkpoint, out, provenance="random-weights", quantize="int8")

    # Parity on the full network: normalised outputs agree far inside the 1e-4 tolerance.
    assert report.n_parameters == 72_607_520
    assert report.max_abs_diff < 1e-4
    assert report.output_spread > 0.1
    assert set(report.parity.cases) == {"random-normal-b1", "random-normal-b8",
                                        "spectrum-like-b1", "spectrum-like-b8"}
    # One file, no external data, comfortably below protobuf's 2 GB limit.
    assert 280e6 < out.stat().st_size < 320e6
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".data"]

    model_proto = onnx.load(str(out), load_external_data=False)
    dims = model_proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[1].dim_value == 3900 and dims[0].dim_param
    meta = ModelMetadata.from_props({p.key: p.value for p in model_proto.metadata_props})
    joined = b"".join((checkpoint / f"model_chunk_{i}").read_bytes() for i in range(10))
    assert meta.weights_sha256 == hashlib.sha256(joined).hexdigest()
    assert meta.model_name == "model_boss"
    assert meta.model_config == OFFICIAL_BOSS.to_dict()
    del model_proto

    # A batch size the parity check did not use.
    rows = parity_inputs(3900, (5,), seed=77)["spectrum-like-b5"]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    normalized, _ = session.run(None, {"flux": rows})
    expected = torch_outputs(model, rows)
    assert np.max(np.abs(normalized - expected)) < 1e-4
    # The same parity on the second engine, when installed (CI installs the openvino extra).
    from bossnet_onnx.model.engine_openvino import available
    from bossnet_onnx.model.session import open_model

    if available():
        loaded = open_model(out, provider="openvino", threads=2)
        assert loaded.engine == "openvino" and loaded.provider == "OpenVINO-CPU"
        assert np.max(np.abs(loaded.run_normalized(rows) - expected)) < 1e-4
        del loaded

    q = report.quantized
    assert q.n_quantized == 1  # the 65536 x 1024 layer, 92% of the weights
    assert q.file_bytes < 0.4 * out.stat().st_size
    assert all(np.isfinite(v) and v > 0 for v in q.physical_max_abs.values())
    # Measured: logg 0.026 dex, Teff 36 K, [Fe/H] 0.011 dex, RV 1.4 km/s; bounds leave room.
    assert q.physical_max_abs["logg"] < 0.2 and q.physical_max_abs["FeH"] < 0.2
    assert q.physical_max_abs["Teff"] < 300 and q.physical_max_abs["rv"] < 15
