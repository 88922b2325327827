"""Model rows for one spectrum, per family member (`members.Member.input_function`).

Each function takes (spectrum, model metadata, draws, seed) and returns the model input rows
(row 0 noise-free, rows 1..draws the Monte-Carlo copies), the fraction of an interpolation grid
the spectrum covers (None for members that do not interpolate) and input-quality bits of its
own. `member_rows` picks the function the model's member names (members.MEMBERS). Pure numpy;
the constants come from the model's metadata. The input functions follow the reference code (see
members.py for the list); where the reference would crash on hostile input (a non-positive-
definite XP covariance, a band without a solution) the behaviour is documented here.
"""
from __future__ import annotations

import numpy as np

from ..errors import SpectrumError
from ..model.metadata import ModelMetadata
from ..spectrum import Spectrum
from .flags import QualityFlags
from .preprocess import astra_flux, log_scale, model_inputs, sigma_from_ivar
from .uncertainty import noisy_copies, spectrum_rng

__all__ = ["member_rows", "MemberRows", "boss_rows", "apogee_rows", "gaia_rvs_rows",
           "gaia_xp_rows", "xp_noise_factor"]

#: (model rows, grid coverage or None, quality bits)
MemberRows = tuple[np.ndarray, "float | None", int]


def boss_rows(spec: Spectrum, meta: ModelMetadata, draws: int, seed: int,
              recipe: str = "reference") -> MemberRows:
    """Interpolated, log-scaled rows (the BOSS Net recipe of preprocess.py) and coverage.

    `recipe` "astra" zeroes NaN flux first and pools the copies' clip percentile (DR19's
    production code; see preprocess)."""
    pre = meta.preprocessing
    flux = np.asarray(spec.flux, dtype=np.float32)
    if recipe == "astra":
        flux = astra_flux(flux)
    copies = flux[None, :]
    if draws:
        sigma = sigma_from_ivar(spec.ivar, flux, pre)
        copies = noisy_copies(flux, sigma, draws, spectrum_rng(seed, spec.identity))
    rows, plan = model_inputs(spec.wavelength, copies, meta.grid, pre, where=spec.location,
                              recipe=recipe)
    return rows, plan.coverage, 0


def _native_length(spec: Spectrum, meta: ModelMetadata, what: str) -> np.ndarray:
    flux = np.asarray(spec.flux, dtype=np.float32)
    if flux.shape != (meta.n_pixels,):
        raise SpectrumError(f"{spec.location}: has {flux.size} pixels; {meta.family_member.title} "
                            f"reads {what} of exactly {meta.n_pixels} (no interpolation)")
    return flux


def _sigma_as_given(spec: Spectrum, flux: np.ndarray, meta: ModelMetadata,
                    fill: float) -> np.ndarray:
    """The file's error array (NaN/inf -> `fill`), or sigma from ivar when it has none."""
    if spec.sigma is not None:
        sigma = np.asarray(spec.sigma, dtype=np.float32)
    else:
        sigma = sigma_from_ivar(spec.ivar, flux, meta.preprocessing)
    return np.nan_to_num(sigma, nan=fill, posinf=fill, neginf=fill).astype(np.float32)


def apogee_rows(spec: Spectrum, meta: ModelMetadata, draws: int, seed: int,
                recipe: str = "reference") -> MemberRows:
    """APOGEE Net: native 8575 pixels, NaN/inf -> 0 in flux and error, log-scaled copies."""
    flux = _native_length(spec, meta, "APOGEE spectra on the apStar grid")
    flux = np.nan_to_num(flux, nan=0.0, posinf=0.0, neginf=0.0)
    copies = flux[None, :]
    if draws:
        sigma = _sigma_as_given(spec, flux, meta, 0.0)
        copies = noisy_copies(flux, sigma, draws, spectrum_rng(seed, spec.identity))
    return log_scale(copies, meta.preprocessing), None, 0


def gaia_rvs_rows(spec: Spectrum, meta: ModelMetadata, draws: int, seed: int,
                  recipe: str = "reference") -> MemberRows:
    """Gaia RVS Net: the 2401-pixel mean spectrum as it is (no log), NaN -> 1."""
    flux = _native_length(spec, meta, "Gaia RVS mean spectra")
    flux = np.where(np.isnan(flux), np.float32(1.0), flux)
    copies = flux[None, :]
    if draws:
        sigma = _sigma_as_given(spec, flux, meta, 1.0)
        copies = noisy_copies(flux, sigma, draws, spectrum_rng(seed, spec.identity))
    return np.ascontiguousarray(copies, dtype=np.float32), None, 0


def xp_noise_factor(cov: np.ndarray | None, errors: np.ndarray) -> tuple[np.ndarray, bool]:
    """Lower factor L with L L^T = cov (Cholesky), and whether it fell back to the diagonal.

    A covariance that is not positive definite (rounded correlations, a damaged row) cannot be
    factorised; the reference would stop the whole run. Documented fallback: independent
    errors (L = diag(errors)), with the XP_DIAGONAL_COVARIANCE bit set on the row.
    """
    if cov is not None and np.all(np.isfinite(cov)):
        try:
            return np.linalg.cholesky(cov), False
        except np.linalg.LinAlgError:
            pass
    errors = np.nan_to_num(np.asarray(errors, dtype=np.float64), nan=0.0, posinf=0.0)
    return np.diag(np.abs(errors)), True


def gaia_xp_rows(spec: Spectrum, meta: ModelMetadata, draws: int, seed: int,
                 recipe: str = "reference") -> MemberRows:
    """Gaia XP Net: 55 BP + 55 RP coefficients as they are, NaN -> 1; draws L z per band."""
    coeffs = _native_length(spec, meta, "Gaia XP coefficients (55 BP + 55 RP)")
    coeffs = np.where(np.isnan(coeffs), np.float32(1.0), coeffs)
    copies = coeffs[None, :].astype(np.float32)
    quality = 0
    if draws:
        half = meta.n_pixels // 2
        errors = np.asarray(spec.sigma if spec.sigma is not None
                            else np.full(meta.n_pixels, np.nan), dtype=np.float64)
        covariance = spec.covariance or (None, None)
        rng = spectrum_rng(seed, spec.identity)
        noise = np.empty((draws, meta.n_pixels), dtype=np.float64)
        for band, cov in enumerate(covariance):
            lower, fell_back = xp_noise_factor(cov, errors[band * half:(band + 1) * half])
            if fell_back:
                quality |= int(QualityFlags.XP_DIAGONAL_COVARIANCE)
            z = rng.standard_normal((draws, half))
            noise[:, band * half:(band + 1) * half] = z @ lower.T
        copies = np.concatenate([copies, (coeffs[None, :] + noise).astype(np.float32)])
    return copies, None, quality


_FUNCTIONS = {f.__name__: f for f in (boss_rows, apogee_rows, gaia_rvs_rows, gaia_xp_rows)}


def member_rows(spec: Spectrum, meta: ModelMetadata, draws: int, seed: int,
                recipe: str = "reference") -> MemberRows:
    """The model rows of one spectrum by the input function its model's member names."""
    member = meta.family_member
    if recipe not in member.recipes:
        raise SpectrumError(f"{spec.location}: --recipe {recipe} is not defined for "
                            f"{member.title}; it takes {' or '.join(member.recipes)}")
    return _FUNCTIONS[member.input_function](spec, meta, draws, seed, recipe)
