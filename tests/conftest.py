"""Shared fixtures: where the real survey spectra live, seeded generators."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
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
