"""Shared fixtures: where the real survey spectra live, seeded generators."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

# ORT-format model copies (bossnet_onnx.model.ort_cache) go to a throw-away folder, not ~/.cache;
# set here so subprocesses started by tests inherit it.
if "BOSSNET_ONNX_CACHE" not in os.environ:
    _OWN_CACHE: Path | None = Path(tempfile.mkdtemp(prefix="bossnet-onnx-cache-"))
    os.environ["BOSSNET_ONNX_CACHE"] = str(_OWN_CACHE)
else:
    _OWN_CACHE = None
# two full-size ORT copies at most (the default bound is 2 GB); tests of eviction set their own
os.environ.setdefault("BOSSNET_ONNX_CACHE_MAX_MB", "800")
SHARED_DATA = REPO.parent / "shared" / "data"


# Disk: CI machines can have a few GB free and full-size models are 290 MB each. pyproject sets
# pytest's tmp_path retention to "failed": a passed test's tmp_path goes as soon as it ends. The
# session's ORT-cache folder goes at the end.
def pytest_sessionfinish(session, exitstatus):
    if _OWN_CACHE is not None:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


@pytest.fixture
def shared_data() -> Path:
    """The folder of public SDSS/LAMOST spectra; tests using it skip cleanly without it."""
    if not SHARED_DATA.is_dir() or not any(SHARED_DATA.glob("*.fits*")):
        pytest.skip(f"real survey spectra not available at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 64 KiB tmpfs (a really full disk for write-failure tests); skips where mounting is
    not allowed (not root, no CAP_SYS_ADMIN). Yields a function making more of them."""
    import subprocess

    mounted = []

    def mount(name: str = "small", options: str = "size=64k") -> Path:
        where = tmp_path / name
        where.mkdir()
        try:
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                                  capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:  # no mount command
            pytest.skip(f"cannot mount a tmpfs here: {exc}")
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", str(where)], capture_output=True)
