"""Monte-Carlo draws: noisy copies of a spectrum, seeded by the spectrum's identity.

Each spectrum gets its own `numpy.random.Generator` built from (seed, identity), so its draws
do not depend on batch size, file order or how the inputs are split into shards.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

__all__ = ["spectrum_rng", "noisy_copies", "summarize_draws", "check_draws", "MAX_DRAWS",
           "correlations", "label_correlations"]

#: Upper limit of `--draws`. Draws are generated, preprocessed and run in pieces of a few dozen
#: rows, so memory does not grow with it; the limit bounds the time one spectrum can take
#: (10,000 draws of the full BOSS network: ~50 s a spectrum on 2 cores) and catches typos.
MAX_DRAWS = 10_000


def check_draws(draws: int) -> int:
    """`draws` if usable, else ValueError: 0 (no uncertainties) or 2 .. MAX_DRAWS.

    One draw gives a scatter of NaN (std with ddof=1 needs two), so it is refused rather than
    silently filling every e_* column with NaN.
    """
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)):
        raise ValueError(f"draws must be an integer, got {draws!r}")
    draws = int(draws)
    if draws == 1 or not 0 <= draws <= MAX_DRAWS:
        raise ValueError(f"draws must be 0 (no uncertainties) or between 2 and {MAX_DRAWS}, "
                         f"got {draws}; the scatter of the draws needs at least 2")
    return draws


_WORD = 0xFFFFFFFF


def _seed_entropy(seed: int, identity_words: list[int]) -> list[int]:
    """SeedSequence entropy holding the whole seed, whatever its size or sign.

    Seeds 0 .. 2**32-1 keep the words they always had (their draws are unchanged); any other
    seed appends its higher 32-bit words and a tag word (count of those words, bit 31 for a
    negative seed), so that no two seeds share an entropy: seeds used to repeat every 2**32.
    """
    seed = int(seed)
    magnitude = abs(seed)
    entropy = [magnitude & _WORD, *identity_words]
    if 0 <= seed <= _WORD:
        return entropy
    high = []
    rest = magnitude >> 32
    while rest:
        high.append(rest & _WORD)
        rest >>= 32
    return entropy + high + [len(high) | (0x80000000 if seed < 0 else 0)]


def spectrum_rng(seed: int, identity: str) -> np.random.Generator:
    """Generator for one spectrum: SeedSequence of the run seed and a hash of its identity."""
    digest = hashlib.sha256(identity.encode("utf-8")).digest()
    words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(_seed_entropy(seed, words))))


def noisy_copies(flux: np.ndarray, sigma: np.ndarray, n_draws: int,
                 rng: np.random.Generator, *, include_flux: bool = True) -> np.ndarray:
    """(1 + n_draws) x pixels: the noise-free flux, then flux + sigma * N(0, 1) copies.

    NaN flux pixels stay NaN in every copy (the interpolation drops them), as in the reference.
    With `include_flux=False` only the n_draws noisy rows: successive calls on one generator
    continue its stream, so draws made in pieces equal the draws made at once.
    """
    flux = np.asarray(flux, dtype=np.float32)
    first = 1 if include_flux else 0
    out = np.empty((first + n_draws, flux.shape[0]), dtype=np.float32)
    if include_flux:
        out[0] = flux
    if n_draws:
        noise = rng.standard_normal((n_draws, flux.shape[0]), dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            out[first:] = flux + np.asarray(sigma, dtype=np.float32) * noise
    return out


def summarize_draws(physical: np.ndarray) -> np.ndarray:
    """Scatter (std, ddof=1) of the draws' predictions per parameter; NaN with < 2 draws."""
    physical = np.asarray(physical, dtype=np.float64)
    if physical.shape[0] < 2:
        return np.full(physical.shape[1:], np.nan)
    return physical.std(axis=0, ddof=1)


def correlations(draws: np.ndarray) -> np.ndarray:
    """Pearson correlation matrix (parameters x parameters) of draws x parameters predictions.

    What `numpy.corrcoef(draws, rowvar=False)` gives (to 1e-12, tested), without its
    RuntimeWarnings: NaN for a parameter that does not vary or is not finite in every draw, and
    NaN everywhere with fewer than 3 draws (two points always correlate +-1).
    """
    x = np.asarray(draws, dtype=np.float64)
    n, p = x.shape
    if n < 3:
        return np.full((p, p), np.nan)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        d = x - x.mean(axis=0)
        cov = d.T @ d
        sd = np.sqrt(np.diag(cov))
        rho = cov / sd[:, None] / sd[None, :]
    usable = np.isfinite(sd) & (sd > 0)
    rho[~(usable[:, None] & usable[None, :])] = np.nan
    return np.clip(rho, -1.0, 1.0)


def label_correlations(physical: np.ndarray, parameter_names: Sequence[str]) -> dict[str, float]:
    """`rho_<a>_<b>` of the member's label pairs (columns.CORRELATION_PAIRS, and with bn_v_r
    where it predicts RV) from the draws' physical outputs (draws x parameters, the noise-free
    row excluded): teff as 10**logTeff of each draw, the others as the network gives them."""
    from .columns import CORRELATION_PAIRS, LABEL_PARAMETERS, correlation_name

    physical = np.asarray(physical, dtype=np.float64)
    labels = [name for name, parameter in LABEL_PARAMETERS.items()
              if parameter in parameter_names]
    values = np.empty((physical.shape[0], len(labels)))
    for k, name in enumerate(labels):
        column = physical[:, list(parameter_names).index(LABEL_PARAMETERS[name])]
        with np.errstate(over="ignore"):
            values[:, k] = np.power(10.0, column) if name == "teff" else column
    rho = correlations(values)
    return {correlation_name(a, b): float(rho[labels.index(a), labels.index(b)])
            for a, b in CORRELATION_PAIRS if a in labels and b in labels}
