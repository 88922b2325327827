"""Shared fixtures: where the real survey spectra live, seeded generators."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

# ORT-format model copies (bossnet_onnx.model.ort_cache) go to a throw-away folder, not ~/.cache;
# set here so subprocesses started by tests inherit it.
os.environ.setdefault("BOSSNET_ONNX_CACHE", tempfile.mkdtemp(prefix="bossnet-onnx-cache-"))
SHARED_DATA = REPO.parent / "shared" / "data"


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
