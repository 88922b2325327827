"""Property tests: whatever the flux/ivar (NaN, inf, negative, huge, zero), preprocessing gives
finite float32 model rows of the right shape, or a SpectrumError with a clear message."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bossnet_onnx.errors import SpectrumError
from bossnet_onnx.preprocess import model_inputs, sigma_from_ivar
from bossnet_onnx.uncertainty import noisy_copies

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
def test_sigma_is_finite_non_negative(flux, ivar):
    sigma = sigma_from_ivar(ivar, flux)
    assert sigma.shape == (N,) and sigma.dtype == np.float32
    assert np.all(np.isfinite(sigma)) and np.all(sigma >= 0)


@SETTINGS
@given(flux=arrays(np.float32, N, elements=values), ivar=arrays(np.float32, N, elements=values),
       start=st.floats(3000, 9500), span=st.floats(10, 8000), draws=st.integers(0, 3))
def test_model_rows_finite_or_clear_error(flux, ivar, start, span, draws):
    wave = np.linspace(start, start + span, N)
    sigma = sigma_from_ivar(ivar, flux)
    copies = noisy_copies(flux, sigma, draws, np.random.default_rng(0))
    try:
        rows, plan = model_inputs(wave, copies, GRID, where="prop.fits[HDU 1]")
    except SpectrumError as exc:
        assert str(exc).startswith("prop.fits[HDU 1]: ")
        assert ("no finite flux" in str(exc)) or ("does not overlap" in str(exc))
        return
    assert rows.shape == (1 + draws, 3900) and rows.dtype == np.float32
    assert np.all(np.isfinite(rows))
    assert 0.0 <= plan.coverage <= 1.0
