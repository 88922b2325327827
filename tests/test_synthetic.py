"""Physics and bookkeeping of the synthetic BOSS-like spectra (bossnet_onnx.science.synthetic)."""
from __future__ import annotations

import numpy as np
import pytest

from bossnet_onnx.science.synthetic import (
    BOSS_NPIX,
    POPULATIONS,
    air_to_vacuum,
    boss_wavelength,
    noiseless_batch,
    sample_labels,
    synthesize,
    synthesize_batch,
)
from bossnet_onnx.science.units import SPEED_OF_LIGHT_KMS

H_BETA = float(air_to_vacuum(4861.35))
H_ALPHA = float(air_to_vacuum(6562.79))
CA_K = float(air_to_vacuum(3933.66))
TIO_7054 = float(air_to_vacuum(7053.9))


def _clean(teff, logg, feh=0.0, rv=0.0):
    wave, flux = noiseless_batch([teff], logg, feh, rv, telluric=0.0)
    return wave, flux[0]


def _depth(wave, flux, centre, inner, outer=20.0):
    """1 - core / local continuum (median of the flux between inner and inner+outer A away)."""
    side = (np.abs(wave - centre) > inner) & (np.abs(wave - centre) < inner + outer)
    return 1.0 - flux[np.argmin(np.abs(wave - centre))] / np.median(flux[side])


def _fwhm(wave, flux, centre, half_window=400.0):
    m = np.abs(wave - centre) < half_window
    w, f = wave[m], flux[m]
    cont = np.interp(w, [w[0], w[-1]], [f[0], f[-1]])
    d = 1.0 - f / cont
    above = w[d > d.max() / 2]
    return above.max() - above.min()


def test_grid_is_the_boss_coadd_grid():
    wave = boss_wavelength()
    assert wave.shape == (BOSS_NPIX,)
    assert wave[0] == pytest.approx(3566.97, abs=0.01)
    assert wave[-1] == pytest.approx(10399.2, abs=0.1)
    np.testing.assert_allclose(np.diff(np.log10(wave)), 1e-4, rtol=1e-9)


def test_balmer_strength_peaks_near_ten_thousand_kelvin():
    depths = {t: _depth(*_clean(t, 4.2), H_BETA, 60.0) for t in (5000.0, 9500.0, 25000.0)}
    assert depths[9500.0] > 0.85
    assert depths[9500.0] > depths[5000.0] + 0.3
    assert depths[9500.0] > depths[25000.0] + 0.3


def test_white_dwarf_balmer_lines_are_much_wider_than_a_dwarfs():
    wd = _fwhm(*_clean(12000.0, 8.0), H_BETA)
    dwarf = _fwhm(*_clean(12000.0, 4.2), H_BETA)
    assert wd > 4 * dwarf
    assert wd > 60.0 and dwarf < 30.0


def test_calcium_k_deepens_with_metallicity():
    solar = _depth(*_clean(5500.0, 4.4, 0.0), CA_K, 20.0)
    poor = _depth(*_clean(5500.0, 4.4, -2.0), CA_K, 20.0)
    assert solar > 0.9
    assert poor < 0.5


def test_tio_band_head_appears_only_in_cool_stars():
    def ratio(teff):
        wave, flux = _clean(teff, 4.9)
        red = np.median(flux[(wave > TIO_7054 + 5) & (wave < TIO_7054 + 30)])
        blue = np.median(flux[(wave > TIO_7054 - 30) & (wave < TIO_7054 - 5)])
        return red / blue

    assert ratio(3300.0) < 0.6
    assert ratio(4500.0) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("rv", [-350.0, -37.2, 123.4, 399.0])
def test_doppler_shift_moves_the_spectrum_by_the_expected_pixels(rv):
    expected = np.log10(1.0 + rv / SPEED_OF_LIGHT_KMS) / 1e-4  # BOSS pixels
    wave, flux = noiseless_batch([5500.0, 5500.0], 4.4, 0.0, [0.0, rv], telluric=0.0)
    x = np.arange(wave.size)
    # whole-spectrum shift: least squares over trial shifts of the rest-frame spectrum
    m = (x > 200) & (x < wave.size - 200)
    trials = np.arange(np.floor(expected) - 1, np.ceil(expected) + 1, 0.005)
    chi2 = [np.sum((flux[1][m] - np.interp(x[m] - s, x, flux[0])) ** 2) for s in trials]
    assert trials[int(np.argmin(chi2))] == pytest.approx(expected, abs=0.03)
    # centroid of one line (H alpha of an A star)

    def centroid(f, centre_px):
        win = np.abs(x - centre_px) < 25
        side = (np.abs(x - centre_px) > 25) & (np.abs(x - centre_px) < 40)
        cont = np.polyval(np.polyfit(x[side], f[side], 1), x[win])
        d = 1.0 - f[win] / cont
        return float((x[win] * d).sum() / d.sum())

    _, a_star = noiseless_batch([9500.0, 9500.0], 4.2, 0.0, [0.0, rv], telluric=0.0)
    centre = (np.log10(H_ALPHA) - 3.5523) / 1e-4
    moved = centroid(a_star[1], centre + expected) - centroid(a_star[0], centre)
    assert moved == pytest.approx(expected, abs=0.25)


@pytest.mark.parametrize("snr", [8.0, 30.0, 150.0])
def test_returned_ivar_gives_the_requested_snr(snr):
    rng = np.random.default_rng(7)
    for teff, logg in ((3400.0, 4.9), (5800.0, 4.4), (20000.0, 4.0)):
        wave, flux, ivar = synthesize(teff, logg, -0.5, 10.0, snr, rng, telluric=1.0)
        assert wave.shape == flux.shape == ivar.shape == (BOSS_NPIX,)
        measured = np.median(flux * np.sqrt(ivar))
        assert measured == pytest.approx(snr, rel=0.10)
        # the noise really is the noise ivar claims: normalised residuals have unit scatter
        _, clean = noiseless_batch([teff], logg, -0.5, 10.0)
        resid = (flux - clean[0] * np.median(flux) / np.median(clean[0])) * np.sqrt(ivar)
        assert np.std(resid) == pytest.approx(1.0, abs=0.15)


def test_flux_is_in_sdss_like_units_and_finite():
    rng = np.random.default_rng(3)
    labels = sample_labels(64, rng)
    _wave, flux, ivar = synthesize_batch(labels["teff"], labels["logg"], labels["fe_h"],
                                        labels["rv"], labels["snr"], rng, ebv=labels["ebv"])
    assert flux.dtype == np.float32 and ivar.dtype == np.float32
    assert np.isfinite(flux).all() and np.isfinite(ivar).all() and (ivar > 0).all()
    medians = np.median(flux, axis=1)
    assert medians.min() > 1.0 and medians.max() < 120.0


def test_same_seed_same_spectrum_and_different_seed_differs():
    a = synthesize(6000.0, 4.3, -1.0, 55.0, 20.0, np.random.default_rng(11))
    b = synthesize(6000.0, 4.3, -1.0, 55.0, 20.0, np.random.default_rng(11))
    c = synthesize(6000.0, 4.3, -1.0, 55.0, 20.0, np.random.default_rng(12))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[1], c[1])


def test_batch_rows_match_single_spectra():
    teff = np.array([3500.0, 7000.0, 15000.0])
    _, batch = noiseless_batch(teff, [4.8, 4.2, 8.0], [0.0, -1.0, 0.0], [-100.0, 0.0, 250.0])
    for i in range(3):
        _, one = noiseless_batch(teff[i:i + 1], [4.8, 4.2, 8.0][i], [0.0, -1.0, 0.0][i],
                                 [-100.0, 0.0, 250.0][i])
        np.testing.assert_allclose(batch[i], one[0], rtol=1e-10)


def test_other_wavelength_grids_are_served_by_resampling():
    lamost = 10 ** (3.5682 + 1e-4 * np.arange(3909))
    wave, flux = noiseless_batch([5800.0], 4.4, 0.0, 0.0, wavelength=lamost)
    _, native = noiseless_batch([5800.0], 4.4, 0.0, 0.0)
    np.testing.assert_array_equal(wave, lamost)
    boss = boss_wavelength()
    expected = np.interp(lamost[100:-100], boss, native[0])
    scale = np.median(flux[0][100:-100]) / np.median(expected)
    np.testing.assert_allclose(flux[0][100:-100], expected * scale, rtol=0.02)
    with pytest.raises(ValueError, match="generator covers"):
        noiseless_batch([5800.0], 4.4, 0.0, 0.0, wavelength=np.linspace(2000.0, 5000.0, 100))


def test_sampled_labels_cover_the_brief_and_are_plausible():
    labels = sample_labels(20000, np.random.default_rng(0))
    t, g, m = labels["teff"], labels["logg"], labels["fe_h"]
    assert t.min() >= 3000 and t.max() <= 30000 and t.min() < 3100 and t.max() > 29000
    assert g.min() >= 0 and g.max() <= 9 and g.min() < 0.3 and g.max() > 8.6
    assert m.min() >= -2.5 and m.max() <= 0.5
    assert np.abs(labels["rv"]).max() <= 400 and np.abs(labels["rv"]).max() > 390
    assert labels["snr"].min() >= 5 and labels["snr"].max() <= 200
    giants = labels["population"] == POPULATIONS.index("giant")
    wds = labels["population"] == POPULATIONS.index("white_dwarf")
    assert t[giants].max() < 6500 and np.median(g[giants]) < 3.0
    assert g[wds].min() > 6.5 and t[wds].min() >= 6000
    # log-uniform-ish Teff: each decade-third holds a fair share
    edges = np.histogram(np.log10(t), bins=3)[0] / t.size
    assert edges.min() > 0.15
