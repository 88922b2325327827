"""Dask bag runner: same rows as a local run, sessions per worker process."""
from __future__ import annotations

import layouts  # our own module: a broken import must fail
import numpy as np
import pytest
from onnx_fixtures import write_linear_model

from bossnet_onnx.run.stream import predict

distributed = pytest.importorskip("distributed")


@pytest.mark.slow
def test_dask_local_cluster_matches_local_run(tmp_path):
    from bossnet_onnx.run.distributed import predict_dask

    wave = layouts.boss_native_wavelength()
    files = []
    for i in range(5):
        flux = (15 + np.sin(wave / (70 + i))).astype(np.float32)
        path = tmp_path / f"spec-4000-59000-{i + 1:04d}.fits"
        layouts.write_spec(path, wave, flux, np.full(wave.size, 3.0, np.float32), plate=4000,
                           mjd=59000, fiberid=i + 1)
        files.append(str(path))
    model = write_linear_model(tmp_path / "m.onnx", seed=5, scale=2.0)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        table = predict_dask(files, model=model, draws=4, seed=2, client=client,
                             files_per_partition=2)
    # Same engine on both sides (the runners are compared, not the engines: `auto` may pick
    # OpenVINO, whose last bits differ from onnxruntime's).
    local = predict(files, model=model, draws=4, seed=2, provider="cpu")
    assert table.meta["RUNNER"] == "dask"
    assert sorted(table["path"]) == sorted(local["path"])
    table.sort("path")
    local.sort("path")
    for name in ("teff", "e_teff", "logg", "e_logg", "v_rad"):
        np.testing.assert_array_equal(table[name], local[name])
