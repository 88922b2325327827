"""The bundled default model: found as package data, labelled a synthetic demo, and accurate
on a small fixed held-out set of synthetic spectra (limits = measured values plus margin)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bossnet_onnx.errors import ModelError
from bossnet_onnx.hashing import file_sha256
from bossnet_onnx.model.files import bundled_models, default_model_path
from bossnet_onnx.model.session import open_model
from bossnet_onnx.science.preprocess import model_inputs
from bossnet_onnx.science.synthetic import sample_labels, synthesize_batch

#: Median absolute errors on the 40 spectra below must stay under these. Measured with the
#: shipped model: Teff 1.18 %, log g 0.045 dex, [Fe/H] 0.019 dex, RV 3.07 km/s (MODEL_CARD.md);
#: the limits leave a ~2x margin and stay well inside the issue's targets (5 %, 0.3, 0.25, 15).
LIMITS = {"teff_pct": 2.5, "logg": 0.1, "fe_h": 0.08, "rv": 6.0}


@pytest.fixture(scope="module")
def model():
    return open_model(None, provider="cpu", threads=1)


def test_default_model_is_packaged_and_pointed_to():
    path = default_model_path()
    assert path.suffix == ".onnx" and path.is_file()
    assert path.parent.name == "models" or path.parent.name == "bossnet_onnx_models"
    pointer = json.loads((path.parent / "default.json").read_text())
    assert pointer["model"] == path.name
    assert pointer["sha256"] == file_sha256(path)
    assert path in bundled_models()
    assert 0.5e6 < path.stat().st_size < 10e6  # "a few MB"


def test_default_model_says_it_is_a_synthetic_demo(model):
    meta = model.metadata
    assert meta.provenance == "synthetic-demo"
    assert meta.is_demo
    assert "for science, export the published weights" in meta.description
    assert meta.model_name.startswith("bossnet-demo-synthetic")
    assert meta.parameter_names == ("logg", "logTeff", "FeH", "rv")
    assert meta.n_pixels == 3900


def test_card_records_the_shipped_file():
    path = default_model_path()
    card = (path.parent / "MODEL_CARD.md").read_text()
    assert file_sha256(path) in card
    assert "demonstration model trained on synthetic spectra" in card


def test_missing_pointer_target_is_a_model_error(tmp_path, monkeypatch):
    import bossnet_onnx.model.files as mf

    (tmp_path / "default.json").write_text(json.dumps({"model": "gone.onnx"}))
    monkeypatch.setattr(mf, "_folder", lambda: tmp_path)
    with pytest.raises(ModelError, match=r"names 'gone.onnx'"):
        mf.default_model_path()
    (tmp_path / "default.json").unlink()
    with pytest.raises(ModelError, match=r"no .onnx file"):
        mf.default_model_path()


def test_accuracy_on_a_fixed_heldout_set(model):
    rng = np.random.default_rng(4242)
    labels = sample_labels(40, rng)
    wave, flux, _ = synthesize_batch(labels["teff"], labels["logg"], labels["fe_h"],
                                     labels["rv"], 50.0, rng, ebv=labels["ebv"])
    meta = model.metadata
    rows = np.concatenate([model_inputs(wave, f, meta.grid, meta.preprocessing)[0] for f in flux])
    phys = model.run_physical(rows)
    teff = 10 ** phys[:, meta.index("logTeff")]
    err = {
        "teff_pct": np.median(100 * np.abs(teff - labels["teff"]) / labels["teff"]),
        "logg": np.median(np.abs(phys[:, meta.index("logg")] - labels["logg"])),
        "fe_h": np.median(np.abs(phys[:, meta.index("FeH")] - labels["fe_h"])),
        "rv": np.median(np.abs(phys[:, meta.index("rv")] - labels["rv"])),
    }
    for key, limit in LIMITS.items():
        assert err[key] < limit, f"{key}: median error {err[key]:.3g} >= {limit}"


@pytest.mark.export
def test_training_inputs_are_the_runtime_inputs():
    """The trainer's batched preprocessing must equal the runtime's, row by row."""
    pytest.importorskip("torch")
    from bossnet_export.exporter import reference_grid
    from bossnet_export.train import SpectraInputs, labels_to_targets, targets_to_labels

    rng = np.random.default_rng(5)
    labels = sample_labels(6, rng)
    wave, flux, _ = synthesize_batch(labels["teff"], labels["logg"], labels["fe_h"],
                                     labels["rv"], labels["snr"], rng)
    flux[2, 100:180] = 0.0  # a masked segment, as the augmentation makes
    grid = reference_grid()
    batch = SpectraInputs(wave, grid).preprocess(flux)
    for i in range(len(flux)):
        single, _ = model_inputs(wave, flux[i], grid)
        np.testing.assert_array_equal(batch[i], single[0])
    back = targets_to_labels(labels_to_targets(labels))
    np.testing.assert_allclose(back["teff"], labels["teff"], rtol=1e-5)
    np.testing.assert_allclose(back["rv"], labels["rv"], atol=1e-3)
