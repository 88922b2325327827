"""The memory-mapped ORT-format copy: built once, reused, same numbers, safe fallbacks."""
from __future__ import annotations

import numpy as np
from onnx_fixtures import write_linear_model

import bossnet_onnx.ort_cache as ort_cache
from bossnet_onnx.session import open_model


def test_copy_built_once_and_reused_with_identical_outputs(tmp_path, monkeypatch, rng):
    cache = tmp_path / "cache"
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", str(cache))
    path = write_linear_model(tmp_path / "m.onnx", seed=8)
    mapped = open_model(path, provider="cpu")
    copies = list(cache.glob("m-*.ort"))
    assert len(copies) == 1
    stamp = copies[0].stat().st_mtime_ns
    again = open_model(path, provider="cpu")
    assert [p.stat().st_mtime_ns for p in cache.glob("m-*.ort")] == [stamp]
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", "off")
    direct = open_model(path, provider="cpu")
    x = rng.standard_normal((5, 3900)).astype(np.float32)
    np.testing.assert_allclose(mapped.run_physical(x), direct.run_physical(x), rtol=1e-6)
    np.testing.assert_array_equal(mapped.run_physical(x), again.run_physical(x))
    assert mapped.metadata.model_name == direct.metadata.model_name == "linear-test"


def test_changed_model_file_gets_a_new_copy(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", str(cache))
    path = write_linear_model(tmp_path / "m.onnx", seed=1)
    first = ort_cache.cached_ort_model(path)
    write_linear_model(path, seed=2)
    second = ort_cache.cached_ort_model(path)
    assert first != second and first.exists() and second.exists()


def test_cache_off_and_unwritable_fall_back_to_the_onnx(tmp_path, monkeypatch):
    path = write_linear_model(tmp_path / "m.onnx")
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", "off")
    assert ort_cache.cache_dir() is None and ort_cache.cached_ort_model(path) is None
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", str(blocker / "cache"))
    assert ort_cache.cached_ort_model(path) is None
    assert open_model(path, provider="cpu").metadata.model_name == "linear-test"


def test_default_location_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("BOSSNET_ONNX_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert ort_cache.cache_dir() == tmp_path / "bossnet-onnx"
