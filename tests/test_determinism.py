"""The same spectrum gets the same bits whatever the run around it.

Batch size, file order, shard split, resume point and thread count once changed the last bits
of the labels (with several threads onnxruntime's result for a row depends on the call's batch
size, and on the thread count when weight prepacking is off). The engine now runs every call
with its fixed shape and prepacked weights; these tests run a small convolutional BOSS Net
(the kernels of the published network) and compare every numeric column exactly.
"""
from __future__ import annotations

import layouts  # our own module: a broken import must fail
import numpy as np
import pytest
from run_helpers import interrupt_after

from bossnet_onnx.outputs.catalogue import read_catalogue
from bossnet_onnx.run.sharding import merge_catalogues
from bossnet_onnx.run.stream import predict
from bossnet_onnx.run.to_file import predict_to_file

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory):
    from bossnet_export.exporter import export_module
    from bossnet_export.random_weights import SMALL_CONFIG, build_random_model

    out = tmp_path_factory.mktemp("det-model") / "small-conv.onnx"
    export_module(build_random_model(SMALL_CONFIG, seed=11), out, weights_sha256="cd" * 32,
                  name="small-conv-determinism")
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("det-files")
    wave = layouts.boss_native_wavelength()
    out = []
    for i in range(7):
        flux = (12 + 4 * np.sin(wave / (40 + 9 * i)) + 0.2 * i).astype(np.float32)
        path = folder / f"spec-4100-59100-{i + 1:04d}.fits"
        layouts.write_spec(path, wave, flux, np.full(wave.size, 1.5 + i % 4, np.float32),
                           plate=4100, mjd=59100, fiberid=i + 1)
        out.append(str(path))
    return out


def _same(a, b) -> None:
    a, b = a.copy(), b.copy()
    a.sort("path")
    b.sort("path")
    numeric = [n for n in a.colnames if a[n].dtype.kind in "fiu"]
    for name in numeric:
        np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]), err_msg=name)
    assert np.ptp(np.asarray(a["logg"])) > 0.01  # outputs vary with the input


def test_batch_size_threads_and_file_order_do_not_change_a_bit(conv_model, files):
    base = predict(files, model=conv_model, draws=20, seed=4, provider="cpu", threads=2)
    for settings in (dict(batch_size=1), dict(batch_size=7), dict(batch_size=100),
                     dict(threads=1)):
        _same(base, predict(files, model=conv_model, draws=20, seed=4, provider="cpu",
                            **{"threads": 2, **settings}))
    _same(base, predict(files[::-1], model=conv_model, draws=20, seed=4, provider="cpu"))


def test_shards_and_resume_points_do_not_change_a_bit(conv_model, files, tmp_path, monkeypatch):
    whole = predict_to_file(files, tmp_path / "all.fits", model=conv_model, draws=20, seed=4,
                            provider="cpu")
    parts = [predict_to_file(files, tmp_path / f"s{k}.fits", model=conv_model, draws=20,
                             seed=4, provider="cpu", shard=f"{k}/2") for k in (1, 2)]
    assert sum(len(p) for p in parts) == len(files)
    merged = merge_catalogues([tmp_path / "s1.fits", tmp_path / "s2.fits"],
                              tmp_path / "merged.fits")
    _same(whole, merged)
    # interrupted after 3 spectra, then resumed
    from bossnet_onnx.run import to_file as runs
    from bossnet_onnx.run.to_file import Interrupted

    real = interrupt_after(monkeypatch, 3)
    out = tmp_path / "resumed.fits"
    with pytest.raises(Interrupted):
        predict_to_file(files, out, model=conv_model, draws=20, seed=4, provider="cpu")
    monkeypatch.setattr(runs, "stream", real)
    predict_to_file(files, out, model=conv_model, draws=20, seed=4, provider="cpu", resume=True)
    _same(whole, read_catalogue(out))
