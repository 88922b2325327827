"""Property tests: whatever the flux/ivar (NaN, inf, negative, huge, zero), preprocessing gives
finite float32 model rows of the right shape, or a SpectrumError with a clear message."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bossnet_onnx.errors import SpectrumError
from bossnet_onnx.science.preprocess import model_inputs, sigma_from_ivar
from bossnet_onnx.science.uncertainty import noisy_copies

GRID = np.linspace(3800.0, 8900.0, 3900).astype(np.float32)
N = 300

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([0.0, -1.0, 1e-30, 1e30, 3.4e38, -3.4e38, np.nan, np.inf, -np.inf]),
)
SETTINGS = settings(derandomize=True, max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(flux=arrays(np.float32, N, elements=values), ivar=arrays(np.float32, N, elements=values))
# all-infinite sigma with flux at -+float32 max: the float32 median of an even count overflowed
# (found by this property) and gave infinite or zero sigma
@example(flux=np.full(N, -3.4e38, np.float32), ivar=np.zeros(N, np.float32))
@example(flux=np.full(N, 3.4e38, np.float32), ivar=np.zeros(N, np.float32))
def test_sigma_is_finite_non_negative(flux, ivar):
    sigma = sigma_from_ivar(ivar, flux)
    assert sigma.shape == (N,) and sigma.dtype == np.float32
    assert np.all(np.isfinite(sigma)) and np.all(sigma >= 0)
    if not (np.nan_to_num(ivar) > 0).any():
        return
    # some positive finite ivar: no sigma goes beyond 5 x the median of the finite ones
    assert sigma.max() <= 5 * np.median(sigma) * (1 + 1e-6) + 1e-30


def test_huge_flux_without_ivar_gives_a_tenth_of_its_median():
    """0.1 x median flux when no ivar is usable, also at the float32 limit (no overflow)."""
    for value, expect in ((20.0, 2.0), (3.4e38, 3.4e37), (-3.4e38, 1.7e38)):
        sigma = sigma_from_ivar(np.zeros(6, np.float32), np.full(6, value, np.float32))
        np.testing.assert_allclose(sigma, expect, rtol=1e-6)


@SETTINGS
@given(flux=arrays(np.float32, N, elements=values), ivar=arrays(np.float32, N, elements=values),
       start=st.floats(3000, 9500), span=st.floats(10, 8000), draws=st.integers(0, 3))
def test_model_rows_finite_or_clear_error(flux, ivar, start, span, draws):
    wave = np.linspace(start, start + span, N)
    sigma = sigma_from_ivar(ivar, flux)
    copies = noisy_copies(flux, sigma, draws, np.random.default_rng(0))
    try:
        rows, plan = model_inputs(wave, copies, GRID, where="prop.fits[HDU 1]")
    except SpectrumError as exc:  # the property is "finite rows OR this clear error"
        assert str(exc).startswith("prop.fits[HDU 1]: ")  # noqa: PT017
        assert any(  # noqa: PT017
            s in str(exc) for s in ("no finite flux", "does not overlap",
                                           "only one pixel")), str(exc)
        return
    assert rows.shape == (1 + draws, 3900) and rows.dtype == np.float32
    assert np.all(np.isfinite(rows))
    assert 0.0 <= plan.coverage <= 1.0


waves = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                  st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -5000.0, 1e300]))


@SETTINGS
@given(flux=arrays(np.float32, N, elements=values),
       wave=st.one_of(arrays(np.float64, N, elements=waves),
                      arrays(np.float64, N, elements=st.floats(3000, 10000), unique=True)
                      .map(np.sort)))
def test_any_wavelength_array_gives_rows_or_a_clear_error(flux, wave):
    """Unsorted, repeated, NaN, inf or out-of-range wavelengths: rows or one SpectrumError."""
    try:
        rows, plan = model_inputs(wave, flux, GRID, where="w.fits[HDU 1]")
    except SpectrumError as exc:
        message = str(exc)
        assert message.startswith("w.fits[HDU 1]: ") and "\n" not in message
        assert any(s in message for s in ("no finite flux", "does not overlap", "only one pixel",
                                          "not strictly increasing")), message
        return
    assert rows.shape == (1, 3900) and rows.dtype == np.float32
    assert np.all(np.isfinite(rows))
    assert plan.n_valid == int((np.isfinite(flux) & np.isfinite(wave.astype(np.float32))).sum())


def test_length_mismatch_is_a_spectrum_error():
    with pytest.raises(SpectrumError, match=rf"^m\.fits: wavelength has {N + 1} pixels but flux "
                                            rf"has {N}$"):
        model_inputs(np.linspace(4000, 8000, N + 1), np.ones(N, np.float32), GRID, where="m.fits")


def test_one_valid_pixel_is_a_clear_error_wherever_it_lies():
    """Inside the grid too (it used to read 'does not overlap' unless it hit a grid point)."""
    flux = np.full(N, np.nan, np.float32)
    flux[100] = 5.0
    for start in (4000.0, 3800.0):  # 3800: the pixel sits exactly on a grid point
        wave = start + np.arange(N) - 100.0
        with pytest.raises(SpectrumError, match=rf"^p\.fits: only one pixel has finite flux and "
                                                rf"wavelength \({start:.1f} A\); at least two"):
            model_inputs(wave, flux, GRID, where="p.fits")
