"""The reference BOSS Net preprocessing, in pure numpy (no I/O, constants from the model).

Recipe (Sizemore et al. 2024; hutchresearch/BOSSNet pipeline), per spectrum:

1. sigma from ivar: 1/sqrt(ivar) with NaN ivar read as 0; if every sigma is infinite, use
   `default_sigma_fraction` x median flux; clip at `sigma_clip_factor` x the median finite
   sigma; NaN sigma (negative ivar) becomes that same 5 x median.
2. Monte-Carlo copies: flux + sigma * N(0, 1) on the native pixels (NaN flux stays NaN).
3. Linear interpolation onto the model's grid (3900 points, 3800-8900 A), pixels with NaN
   flux dropped, the edge value held outside the observed range (np.interp semantics).
4. log(clip(flux, 1e-6)), then clip above at that row's own 95th percentile + 1.

Steps 3-4 are vectorised over all copies of one spectrum: the interpolation weights depend only
on the wavelengths of the valid pixels, which every copy shares, so they are computed once
(`InterpolationPlan`) and applied to a (copies x pixels) matrix. Arithmetic follows the
reference's float32 where it matters (wavelengths, the interpolated values, the log and the
percentile), so inputs agree with it to float32 rounding.

Deliberate superset of the reference, identical for finite data: pixels whose flux or
wavelength is +-inf are dropped like NaN ones (the reference would turn them into NaN model
inputs).

Recipes. `reference` (the default) is the above, as hutchresearch/BOSSNet does it. `astra` is
what SDSS DR19 ran (sdss/astra 0.6.0, pipelines/bossnet), which differs in four places:

1. NaN flux is set to 0 before anything else (`astra_flux`), so NaN pixels inside the range
   are interpolated as zeros (log floor: ln(1e-6) = -13.8) instead of being bridged.
2. The 95th-percentile clip of the Monte-Carlo copies is one percentile pooled over all copies
   (`pooled=True`), not one per copy; the noise-free row keeps its own.
3. No spectrum is rejected for its content: all-zero, all-NaN or nowhere-positive flux is still
   predicted (the readers hand such spectra over as `ReadFailure.spectrum`).
4. A non-finite label is not a failure: it is written, and `flags.parameter_flags` gives it the
   bits DR19's SQL gives NaN (1|2|3 when every label is NaN).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import SpectrumError
from ..model.metadata import Preprocessing

__all__ = [
    "sigma_from_ivar",
    "InterpolationPlan",
    "plan_interpolation",
    "log_scale",
    "model_inputs",
    "astra_flux",
    "RECIPES",
    "MAX_GAP_ANGSTROM",
]

#: Preprocessing variants: the reference code's, and DR19's production code (module docstring).
RECIPES = ("reference", "astra")

#: A grid point whose bracketing valid pixels are further apart than this counts as uncovered
#: (for the LOW_COVERAGE quality bit only; the model input is still the reference interpolation).
MAX_GAP_ANGSTROM = 20.0


_F32_MAX = np.float32(np.finfo(np.float32).max)


def _median32(values: np.ndarray) -> np.float32:
    """float32 median as the reference takes it, recomputed in float64 only when averaging the
    two middle values overflows float32 (|values| near 3.4e38), so it stays finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        median = np.float32(np.median(values))
    if np.isinf(median):
        median = np.float32(np.clip(np.median(values.astype(np.float64)), -_F32_MAX, _F32_MAX))
    return median


def sigma_from_ivar(ivar: np.ndarray, flux: np.ndarray, pre: Preprocessing = Preprocessing()) -> np.ndarray:
    """Per-pixel flux uncertainty as the reference derives it from ivar (float32)."""
    ivar = np.nan_to_num(np.asarray(ivar, dtype=np.float32))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sigma = np.sqrt(np.float32(1.0) / ivar)
    if sigma.size and np.isinf(sigma).all():
        finite_flux = np.asarray(flux, dtype=np.float32)
        finite_flux = finite_flux[np.isfinite(finite_flux)]
        default = np.float32(pre.default_sigma_fraction) * (
            _median32(finite_flux) if finite_flux.size else np.float32(1.0)
        )
        sigma = np.full(sigma.shape, default, dtype=np.float32)
    finite = sigma[np.isfinite(sigma)]
    median = _median32(finite) if finite.size else np.float32(np.nan)
    if not np.isfinite(median):
        # Not reachable with the reference's data; keeps draws finite for hostile input.
        median = np.float32(0.0)
    with np.errstate(over="ignore"):
        cap = np.minimum(np.float32(pre.sigma_clip_factor) * np.float32(median), _F32_MAX)
    sigma = np.minimum(sigma, cap)
    sigma = np.where(np.isnan(sigma), cap, sigma)
    # abs(): a negative median flux (sky-subtracted noise) must not give negative sigma.
    return np.abs(sigma).astype(np.float32)


@dataclass(frozen=True, eq=False)  # holds arrays: == would be ambiguous, compare fields
class InterpolationPlan:
    """Weights that map a spectrum's valid pixels onto the model grid.

    `valid` selects the native pixels used (finite flux and wavelength); output point j is
    `v[lo[j]] * (1 - frac[j]) + v[lo[j] + 1] * frac[j]` of the valid values `v`.
    `coverage` is the fraction of grid points bracketed by valid pixels at most
    MAX_GAP_ANGSTROM apart.

    `apply` gathers straight from the native pixels (the two bracketing indices are composed
    with `valid` once per spectrum) and reuses its float64 buffers, so the copies of a spectrum
    (noise-free + Monte-Carlo draws) cost two gathers and three in-place operations in all.
    The arithmetic is the same float64 products and sum, rounded once to float32, so the rows
    are bit-identical to the straightforward form (tests/test_preprocess.py keeps that form
    and compares bytes).
    """

    valid: np.ndarray
    lo: np.ndarray
    frac: np.ndarray
    coverage: float
    n_valid: int
    _left: np.ndarray = field(init=False, repr=False)
    _right: np.ndarray = field(init=False, repr=False)
    _keep: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        native = np.flatnonzero(self.valid)
        object.__setattr__(self, "_left", native[self.lo])
        object.__setattr__(self, "_right", native[self.lo + 1])
        object.__setattr__(self, "_keep", 1.0 - np.asarray(self.frac, dtype=np.float64))

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Interpolate rows of `values` (copies x native pixels) onto the grid, float32 out."""
        v = np.asarray(values, dtype=np.float32)
        out = np.take(v, self._left, axis=-1).astype(np.float64)
        out *= self._keep
        right = np.take(v, self._right, axis=-1).astype(np.float64)
        right *= self.frac
        out += right
        return out.astype(np.float32)


def plan_interpolation(wavelength: np.ndarray, flux: np.ndarray, grid: np.ndarray,
                       where: str = "spectrum") -> InterpolationPlan:
    """Interpolation weights for one spectrum; SpectrumError if nothing can be interpolated."""
    with np.errstate(over="ignore"):  # a wavelength beyond float32 becomes inf and is dropped
        wave32 = np.asarray(wavelength, dtype=np.float32)
    flux = np.asarray(flux)
    if wave32.shape != flux.shape:
        raise SpectrumError(
            f"{where}: wavelength has {wave32.shape[0]} pixels but flux has {flux.shape[0]}"
        )
    valid = np.isfinite(flux) & np.isfinite(wave32)
    n_valid = int(valid.sum())
    if n_valid == 0:
        raise SpectrumError(f"{where}: no finite flux pixels (all NaN/inf); nothing to predict from")
    w = wave32[valid].astype(np.float64)
    if n_valid > 1 and not np.all(np.diff(w) > 0):
        raise SpectrumError(
            f"{where}: wavelength is not strictly increasing; expected a sorted wavelength array"
        )
    g = np.asarray(grid, dtype=np.float32).astype(np.float64)
    if n_valid == 1:
        raise SpectrumError(
            f"{where}: only one pixel has finite flux and wavelength ({w[0]:.1f} A); at least two "
            f"are needed to interpolate onto the model grid"
        )
    inside = (g >= w[0]) & (g <= w[-1])
    if not inside.any():
        raise SpectrumError(
            f"{where}: valid pixels span {w[0]:.1f}-{w[-1]:.1f} A, which does not overlap the "
            f"model grid {g[0]:.0f}-{g[-1]:.0f} A"
        )
    # np.interp semantics: hold the edge values outside [w0, w_end].
    lo = np.clip(np.searchsorted(w, g, side="right") - 1, 0, n_valid - 2)
    step = w[lo + 1] - w[lo]
    frac = np.clip((g - w[lo]) / step, 0.0, 1.0)
    covered = inside & (step <= MAX_GAP_ANGSTROM)
    return InterpolationPlan(valid, lo, frac, float(covered.mean()), n_valid)


def astra_flux(flux: np.ndarray) -> np.ndarray:
    """DR19's first step: float32 flux with NaN set to 0 (+-inf become +-float32 max, as
    numpy's nan_to_num does)."""
    return np.nan_to_num(np.asarray(flux, dtype=np.float32), nan=0.0)


def log_scale(interpolated: np.ndarray, pre: Preprocessing = Preprocessing(),
              pooled: bool = False) -> np.ndarray:
    """log(clip(flux, floor)), clipped above at the quantile + offset (float32): each row's own,
    or with `pooled` one quantile over all rows together (DR19's Monte-Carlo copies)."""
    x = np.log(np.maximum(np.asarray(interpolated, dtype=np.float32), np.float32(pre.flux_floor)))
    if pooled:
        top = np.asarray(np.quantile(x, pre.clip_quantile)).astype(np.float32)
    else:
        top = np.quantile(x, pre.clip_quantile, axis=-1, keepdims=True).astype(np.float32)
    return np.minimum(x, top + np.float32(pre.clip_offset)).astype(np.float32)


def model_inputs(wavelength: np.ndarray, fluxes: np.ndarray, grid: np.ndarray,
                 pre: Preprocessing = Preprocessing(), where: str = "spectrum",
                 recipe: str = "reference") -> tuple[np.ndarray, InterpolationPlan]:
    """Model input rows (copies x grid) for one spectrum's flux copies sharing `wavelength`.

    `fluxes` is 1-D (one spectrum) or 2-D (copies x native pixels, e.g. the noise-free flux
    followed by the Monte-Carlo draws). The validity mask comes from the first row. With
    `recipe="astra"` the caller has already zeroed NaN flux (`astra_flux`) and rows 1.. share
    one pooled clip percentile.
    """
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
    fluxes = np.atleast_2d(np.asarray(fluxes, dtype=np.float32))
    plan = plan_interpolation(wavelength, fluxes[0], grid, where)
    # Copies may carry inf where huge flux met huge sigma; keep them finite before the log.
    rows = plan.apply(fluxes)
    rows = np.nan_to_num(rows, nan=pre.flux_floor, posinf=np.finfo(np.float32).max,
                         neginf=pre.flux_floor)
    if recipe == "astra" and rows.shape[0] > 1:
        return np.concatenate([log_scale(rows[:1], pre), log_scale(rows[1:], pre, pooled=True)]
                              ), plan
    return log_scale(rows, pre), plan
