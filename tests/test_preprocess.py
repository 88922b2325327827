"""Preprocessing against hand-computed values and an independent np.interp recipe."""
from __future__ import annotations

import numpy as np
import pytest

from bossnet_onnx.errors import SpectrumError
from bossnet_onnx.model.metadata import Preprocessing
from bossnet_onnx.science.preprocess import (
    log_scale,
    model_inputs,
    plan_interpolation,
    sigma_from_ivar,
)

GRID = np.linspace(3800.0, 8900.0, 3900).astype(np.float32)


def reference_recipe(wave, flux, grid):
    """The recipe as the paper states it, written plainly (np.interp + percentile)."""
    keep = ~np.isnan(flux)
    x = np.interp(grid.astype(np.float32), wave.astype(np.float32)[keep], flux.astype(np.float32)[keep])
    x = np.log(np.clip(x.astype(np.float32), 1e-6, None))
    return np.clip(x, None, np.percentile(x, 95) + 1)


def test_sigma_from_ivar_hand_values():
    ivar = np.array([4.0, 1.0, 0.0, np.nan, -1.0, 0.25])
    sigma = sigma_from_ivar(ivar, np.ones(6))
    # finite sigmas 0.5, 1, 2 -> median 1 -> cap 5; zero/NaN ivar -> inf -> 5; negative -> NaN -> 5
    np.testing.assert_allclose(sigma, [0.5, 1.0, 5.0, 5.0, 5.0, 2.0])
    assert sigma.dtype == np.float32


def test_sigma_clips_at_five_times_median():
    ivar = np.array([1.0, 1.0, 1.0, 1e-4])  # sigma 1,1,1,100 -> median 1 -> 100 clipped to 5
    np.testing.assert_allclose(sigma_from_ivar(ivar, np.ones(4)), [1, 1, 1, 5])


def test_sigma_all_invalid_ivar_uses_tenth_of_median_flux():
    flux = np.array([10.0, 20.0, 30.0, np.nan])
    sigma = sigma_from_ivar(np.zeros(4), flux)
    np.testing.assert_allclose(sigma, 2.0)  # 0.1 * median(10, 20, 30)


def test_sigma_custom_constants_from_metadata():
    pre = Preprocessing(sigma_clip_factor=2.0)
    np.testing.assert_allclose(sigma_from_ivar(np.array([1.0, 1.0, 1e-4]), np.ones(3), pre), [1, 1, 2])


def test_log_scale_clips_at_own_95th_percentile_plus_one():
    logs = 0.5 * np.arange(100)  # 0 .. 49.5
    out = log_scale(np.exp(logs).astype(np.float32)[None, :])[0]
    top = 47.025 + 1  # 95th percentile of 0..49.5 (linear), + 1
    assert out.max() == pytest.approx(top, abs=1e-4)
    assert (out == out.max()).sum() == 3  # 48.5, 49, 49.5 clipped
    np.testing.assert_allclose(out[:97], logs[:97], atol=1e-4)
    # the floor: zero and negative flux become log(1e-6)
    low = log_scale(np.array([[0.0, -5.0, 1.0, 1.0]], dtype=np.float32))[0]
    assert low[0] == pytest.approx(np.log(1e-6), rel=1e-6)
    assert low[1] == pytest.approx(np.log(1e-6), rel=1e-6)


def test_model_inputs_match_plain_recipe_on_boss_grid(rng):
    wave = 10 ** (3.5523 + 1e-4 * np.arange(4648, dtype=np.float32))
    flux = (5 + rng.standard_normal(4648)).astype(np.float32)
    flux[100:130] = np.nan
    rows, plan = model_inputs(wave, flux, GRID)
    expected = reference_recipe(wave, flux, GRID)
    assert rows.shape == (1, 3900)
    np.testing.assert_allclose(rows[0], expected, atol=2e-6)
    assert plan.n_valid == 4648 - 30
    assert plan.coverage == pytest.approx(1.0)


def test_copies_share_interpolation_and_differ_per_row(rng):
    wave = np.linspace(3600, 10000, 5000)
    base = 2 + np.sin(wave / 50)
    copies = np.stack([base, base + 0.1 * rng.standard_normal(5000), base * 2])
    rows, _ = model_inputs(wave, copies, GRID)
    for k in range(3):
        np.testing.assert_allclose(rows[k], reference_recipe(wave, copies[k], GRID), atol=2e-6)
    assert not np.allclose(rows[0], rows[1])


def test_partial_coverage_fraction():
    wave = np.linspace(3800, 6350, 3000)  # half of 3800-8900
    _, plan = model_inputs(wave, np.ones_like(wave), GRID)
    assert plan.coverage == pytest.approx(0.5, abs=0.002)


def test_gap_counts_as_uncovered():
    wave = np.concatenate([np.linspace(3800, 5000, 500), np.linspace(7550, 8900, 500)])
    plan = plan_interpolation(wave, np.ones_like(wave), GRID)
    assert plan.coverage == pytest.approx(1 - 2550 / 5100, abs=0.003)


def test_errors_name_the_spectrum():
    wave = np.linspace(3800, 8900, 100)
    with pytest.raises(SpectrumError, match=r"x\.fits\[HDU 1\]: no finite flux"):
        model_inputs(wave, np.full(100, np.nan), GRID, where="x.fits[HDU 1]")
    with pytest.raises(SpectrumError, match="not strictly increasing"):
        model_inputs(wave[::-1], np.ones(100), GRID)
    with pytest.raises(SpectrumError, match="does not overlap"):
        model_inputs(np.linspace(9000, 10000, 100), np.ones(100), GRID)
    with pytest.raises(SpectrumError, match="wavelength has 100 pixels but flux has 99"):
        model_inputs(wave, np.ones(99), GRID)


def test_infinite_flux_pixels_are_dropped():
    wave = np.linspace(3700, 9000, 2000)
    flux = np.ones(2000)
    flux[500] = np.inf
    rows, plan = model_inputs(wave, flux, GRID)
    assert np.isfinite(rows).all()
    assert plan.n_valid == 1999


def _apply_before_issue_21(plan, values):
    """InterpolationPlan.apply as it was written before the gather was composed with `valid`
    (kept verbatim here: the rows must not change by a single bit)."""
    v = np.asarray(values, dtype=np.float32)[..., plan.valid].astype(np.float64)
    out = v[..., plan.lo] * (1.0 - plan.frac) + v[..., plan.lo + 1] * plan.frac
    return out.astype(np.float32)


def _real_boss_spectra(shared_data):
    from bossnet_onnx.readers import read_spectra

    specs = []
    for path in sorted(shared_data.glob("*spec-*.fits*")):
        specs.extend(s for s in read_spectra(str(path)) if s.kind == "boss")
    return specs


def test_interpolation_rows_are_bit_identical_to_the_previous_form(rng, shared_data):
    """21 copies (noise-free + 20 draws, NaN and inf pixels, gaps, partial coverage) of
    synthetic and real SDSS/LAMOST spectra: the same bytes as before, through model_inputs too."""
    from bossnet_onnx.science.uncertainty import noisy_copies

    wave = 10 ** (3.5523 + 1e-4 * np.arange(4648))
    flux = (5 + rng.standard_normal(4648)).astype(np.float32)
    flux[100:130], flux[700], flux[4000:4100] = np.nan, np.inf, np.nan
    cases = [(wave, flux, np.abs(rng.standard_normal(4648)).astype(np.float32)),
             (np.linspace(3800, 6350, 3000), np.ones(3000, np.float32), np.ones(3000, np.float32))]
    real = _real_boss_spectra(shared_data)
    assert len(real) >= 8
    pre = Preprocessing()
    from bossnet_onnx.science.preprocess import sigma_from_ivar

    cases += [(s.wavelength, np.asarray(s.flux, np.float32), sigma_from_ivar(s.ivar, s.flux, pre))
              for s in real]
    for wave, flux, sigma in cases:
        copies = noisy_copies(flux, sigma, 20, np.random.default_rng(7))
        assert copies.shape[0] == 21
        plan = plan_interpolation(wave, copies[0], GRID)
        now, before = plan.apply(copies), _apply_before_issue_21(plan, copies)
        assert now.dtype == before.dtype == np.float32
        assert now.tobytes() == before.tobytes()
        rows, _ = model_inputs(wave, copies, GRID)
        expected = log_scale(np.nan_to_num(before, nan=pre.flux_floor,
                                           posinf=np.finfo(np.float32).max,
                                           neginf=pre.flux_floor), pre)
        assert rows.tobytes() == expected.tobytes()
