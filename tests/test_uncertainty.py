"""Seeded Monte-Carlo draws: identity-keyed, reproducible, NaN-preserving."""
from __future__ import annotations

import numpy as np

from bossnet_onnx.science.uncertainty import noisy_copies, spectrum_rng, summarize_draws


def test_same_seed_and_identity_same_draws():
    a = spectrum_rng(7, "spec-1.fits|1|-1").standard_normal(5)
    b = spectrum_rng(7, "spec-1.fits|1|-1").standard_normal(5)
    np.testing.assert_array_equal(a, b)


def test_identity_and_seed_change_draws():
    base = spectrum_rng(7, "spec-1.fits|1|-1").standard_normal(5)
    assert not np.allclose(base, spectrum_rng(8, "spec-1.fits|1|-1").standard_normal(5))
    assert not np.allclose(base, spectrum_rng(7, "spec-1.fits|1|0").standard_normal(5))


def test_noisy_copies_statistics_and_nan():
    flux = np.full(20000, 10.0, dtype=np.float32)
    flux[3] = np.nan
    sigma = np.full(20000, 2.0, dtype=np.float32)
    copies = noisy_copies(flux, sigma, 4, np.random.default_rng(0))
    assert copies.shape == (5, 20000)
    np.testing.assert_array_equal(copies[0], flux)
    assert np.isnan(copies[:, 3]).all()
    resid = copies[1:, 4:] - 10.0
    assert abs(resid.std() - 2.0) < 0.02
    assert abs(resid.mean()) < 0.02


def test_zero_draws_is_just_the_flux():
    flux = np.arange(5, dtype=np.float32)
    copies = noisy_copies(flux, np.ones(5), 0, np.random.default_rng(0))
    np.testing.assert_array_equal(copies, flux[None])


def test_summarize_is_sample_std():
    values = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    np.testing.assert_allclose(summarize_draws(values), [2.0, 0.0])
    assert np.isnan(summarize_draws(values[:1])).all()
