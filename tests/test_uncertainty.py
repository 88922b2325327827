"""Seeded Monte-Carlo draws: identity-keyed, reproducible, NaN-preserving."""
from __future__ import annotations

import numpy as np
import pytest

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


def test_correlations_equal_numpy_corrcoef():
    from bossnet_onnx.science.uncertainty import correlations

    rng = np.random.default_rng(7)
    for n, p in ((3, 2), (20, 4), (500, 4)):
        mixing = rng.normal(size=(p, p))
        draws = rng.normal(size=(n, p)) @ mixing + rng.normal(size=p) * 1e3
        np.testing.assert_allclose(correlations(draws), np.corrcoef(draws, rowvar=False),
                                   rtol=0, atol=1e-12)


def test_correlations_are_nan_where_undefined():
    from bossnet_onnx.science.uncertainty import correlations

    assert np.isnan(correlations(np.ones((2, 3)))).all()  # two draws: always +-1, so NaN
    draws = np.column_stack([np.arange(5.0), np.full(5, 4.0), [1.0, 3, 2, 5, np.nan]])
    rho = correlations(draws)
    assert rho[0, 0] == pytest.approx(1.0, abs=1e-15)
    assert np.isnan(rho[1]).all() and np.isnan(rho[:, 2]).all()  # constant, not finite


def test_label_correlations_use_teff_of_each_draw_and_name_the_pairs():
    from bossnet_onnx.science.columns import CORRELATION_PAIRS, correlation_name
    from bossnet_onnx.science.uncertainty import label_correlations

    rng = np.random.default_rng(3)
    names = ("logg", "logTeff", "FeH", "rv")
    physical = np.column_stack([rng.normal(4.4, 0.1, 50), rng.normal(3.76, 0.02, 50),
                                rng.normal(-0.2, 0.1, 50), rng.normal(10, 5, 50)])
    physical[:, 2] += 0.8 * physical[:, 0]  # correlated on purpose
    labels = {"teff": 10 ** physical[:, 1], "logg": physical[:, 0], "fe_h": physical[:, 2],
              "bn_v_r": physical[:, 3]}
    got = label_correlations(physical, names)
    assert list(got) == [correlation_name(a, b) for a, b in CORRELATION_PAIRS]
    for a, b in CORRELATION_PAIRS:
        expected = np.corrcoef(labels[a], labels[b])[0, 1]
        assert abs(got[correlation_name(a, b)] - expected) < 1e-12
    # a member without RV: the three pairs only
    assert list(label_correlations(physical[:, :3], names[:3])) == [
        "rho_teff_logg", "rho_teff_fe_h", "rho_logg_fe_h"]


def test_draw_identity_does_not_depend_on_the_cpus_power_function():
    """A spec file's wavelengths are float32 10**loglam, which numpy rounds differently on
    AVX-512 and AVX2 machines (1 ulp at ~20 % of the pixels): the same file must get the same
    draws on both, so the identity hashes flux, ivar and the pixel count, not wavelength bits.
    Flux or ivar one ulp apart is another spectrum."""
    from bossnet_onnx.spectrum import Spectrum

    rng = np.random.default_rng(5)
    loglam = np.linspace(3.5798, 4.0149, 4648, dtype=np.float32)
    wave = (np.float32(10.0) ** loglam).astype(np.float64)
    flux = rng.normal(10, 1, wave.size).astype(np.float32)
    ivar = rng.uniform(0.5, 2, wave.size).astype(np.float32)
    other_cpu = wave.astype(np.float32)
    other_cpu[::5] = np.nextafter(other_cpu[::5], np.float32(np.inf))
    a = Spectrum(wave, flux, ivar, source="a.fits", format="sdss-spec")
    b = Spectrum(other_cpu.astype(np.float64), flux.copy(), ivar.copy(), source="elsewhere/b.fits",
                 format="memory")
    assert a.identity == b.identity
    bumped = flux.copy()
    bumped[100] = np.nextafter(bumped[100], np.float32(np.inf))
    assert Spectrum(wave, bumped, ivar, source="a.fits", format="x").identity != a.identity
    bumped = ivar.copy()
    bumped[7] = np.nextafter(bumped[7], np.float32(0))
    assert Spectrum(wave, flux, bumped, source="a.fits", format="x").identity != a.identity
