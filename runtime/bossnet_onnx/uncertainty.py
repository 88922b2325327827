"""Monte-Carlo draws: noisy copies of a spectrum, seeded by the spectrum's identity.

Each spectrum gets its own `numpy.random.Generator` built from (seed, identity), so its draws
do not depend on batch size, file order or how the inputs are split into shards.
"""
from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["spectrum_rng", "noisy_copies", "summarize_draws"]


def spectrum_rng(seed: int, identity: str) -> np.random.Generator:
    """Generator for one spectrum: SeedSequence of the run seed and a hash of its identity."""
    digest = hashlib.sha256(identity.encode("utf-8")).digest()
    words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *words])))


def noisy_copies(flux: np.ndarray, sigma: np.ndarray, n_draws: int,
                 rng: np.random.Generator) -> np.ndarray:
    """(1 + n_draws) x pixels: the noise-free flux, then flux + sigma * N(0, 1) copies.

    NaN flux pixels stay NaN in every copy (the interpolation drops them), as in the reference.
    """
    flux = np.asarray(flux, dtype=np.float32)
    out = np.empty((1 + n_draws, flux.shape[0]), dtype=np.float32)
    out[0] = flux
    if n_draws:
        noise = rng.standard_normal((n_draws, flux.shape[0]), dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            out[1:] = flux + np.asarray(sigma, dtype=np.float32) * noise
    return out


def summarize_draws(physical: np.ndarray) -> np.ndarray:
    """Scatter (std, ddof=1) of the draws' predictions per parameter; NaN with < 2 draws."""
    physical = np.asarray(physical, dtype=np.float64)
    if physical.shape[0] < 2:
        return np.full(physical.shape[1:], np.nan)
    return physical.std(axis=0, ddof=1)
