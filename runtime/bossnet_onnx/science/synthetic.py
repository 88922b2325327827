"""Physically motivated, BOSS-like synthetic stellar spectra in pure numpy.

Why this exists: the published BOSS Net weights and training set cannot be had in every
environment, yet the package must run out of the box and its tests need spectra whose true labels
are known. The spectra here are not model atmospheres; they are a cheap parametric caricature
with the right *dependences* (what gets stronger or broader with Teff, log g, [Fe/H], where lines
sit and how they move with RV), fast enough to train a network on tens of thousands of them.

Ingredients, all evaluated in the star's rest frame and then Doppler shifted
(lambda_obs = lambda_rest * (1 + v/c)):

- Planck continuum, ultraviolet line blanketing that grows with [Fe/H] and coolness, a Balmer
  jump below 3647 A, optional interstellar reddening;
- Balmer series whose strength peaks near 9-10 kK and whose Lorentzian (Stark) wings broaden with
  log g, so that white dwarfs (log g ~ 8) have lines tens of Angstrom wide;
- metal lines (Ca II H&K and the triplet, Mg b, Na D, Na I 8190, K I, Ca I 4227, Fe I/II blends,
  Sr II, a forest of weak lines) scaling with [Fe/H] and strengthening towards cool stars, with
  gravity-sensitive pressure wings; He I in hot stars;
- molecular bands: G band (CH), CN 3883, TiO below ~4000 K (4955, 5167, 5448, 6159, 7054, ...),
  CaH (dwarfs), VO (latest M);
- telluric O2/H2O absorption in the observed frame (it does not move with RV);
- instrumental resolution R ~ 2000 as a Gaussian convolution in log-lambda (computed on a grid
  three times finer than the BOSS pixels, then integrated over each pixel);
- noise: sigma^2 proportional to (flux + sky) / throughput, scaled so that the median per-pixel
  S/N of the noise-free spectrum equals the requested S/N.

Metal and molecular features are held as optical-depth templates (fixed at import, from a fixed
seed) whose amplitudes depend on the labels; summing optical depths and exponentiating gives
saturation and blending for free. Every random draw comes from the caller's
`numpy.random.Generator`, so output is deterministic for a given generator state.
"""
from __future__ import annotations

import numpy as np

from .units import SPEED_OF_LIGHT_KMS

__all__ = [
    "BOSS_LOGLAM0",
    "BOSS_DLOGLAM",
    "BOSS_NPIX",
    "RESOLUTION",
    "POPULATIONS",
    "boss_wavelength",
    "air_to_vacuum",
    "noiseless_batch",
    "noise_sigma",
    "synthesize_batch",
    "synthesize",
    "sample_labels",
]

#: BOSS coadd native grid: log10(lambda) = BOSS_LOGLAM0 + BOSS_DLOGLAM * i, i < BOSS_NPIX.
BOSS_LOGLAM0 = 3.5523
BOSS_DLOGLAM = 1e-4
BOSS_NPIX = 4648
#: Instrumental resolving power (FWHM).
RESOLUTION = 2000.0

#: Label populations drawn by `sample_labels` (index = value of its "population" array).
POPULATIONS = ("dwarf", "giant", "hot_giant", "hot_subdwarf", "white_dwarf")

_OVERSAMPLE = 3  # fine grid points per native pixel
_TPL_STEP = 6  # template points per native pixel (a multiple of _OVERSAMPLE)
_TPL_X0 = -250.0  # template domain in native pixel units (~3380 A ...)
_TPL_X1 = 4950.0  # (... ~11000 A)
_INTRINSIC_SIGMA_PX = 0.35  # ~24 km/s: thermal + micro/macro turbulence of the weak lines
_MARGIN_PX = 6  # native pixels computed beyond each end so the convolution has no edge effect
_WING_CUT = 100.0  # Lorentzian wings are dropped beyond this many HWHM ...
_WING_FLOOR = 1.0 / (1.0 + _WING_CUT ** 2)  # ... by subtracting their value there
_TEMPLATE_SEED = 20240917  # fixed: templates are part of the model, not of the caller's draw


# --------------------------------------------------------------------------- grids and units
def boss_wavelength(npix: int = BOSS_NPIX) -> np.ndarray:
    """The BOSS coadd wavelength grid in vacuum Angstrom."""
    return 10.0 ** (BOSS_LOGLAM0 + BOSS_DLOGLAM * np.arange(npix))


def air_to_vacuum(air: np.ndarray | float) -> np.ndarray:
    """Vacuum wavelength for an air wavelength (Morton 2000), because BOSS works in vacuum."""
    air = np.asarray(air, dtype=np.float64)
    vac = air.copy()
    for _ in range(3):
        s2 = (1e4 / vac) ** 2
        n = 1.0 + 8.34254e-5 + 2.406147e-2 / (130.0 - s2) + 1.5998e-4 / (38.9 - s2)
        vac = air * n
    return vac


def _to_x(wavelength: np.ndarray) -> np.ndarray:
    """Native pixel coordinate of a wavelength on the (extended) BOSS grid."""
    return (np.log10(wavelength) - BOSS_LOGLAM0) / BOSS_DLOGLAM


def _to_wave(x: np.ndarray) -> np.ndarray:
    return 10.0 ** (BOSS_LOGLAM0 + BOSS_DLOGLAM * x)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


# --------------------------------------------------------------------------- line lists (air A)
_BALMER = {  # air wavelength: (peak optical depth of the wing, base HWHM at log g 4, A)
    6562.79: (3.0, 5.0), 4861.35: (2.6, 6.0), 4340.47: (2.2, 6.0), 4101.74: (1.9, 5.5),
    3970.07: (1.6, 5.0), 3889.05: (1.3, 4.5), 3835.38: (1.1, 4.0), 3797.90: (0.9, 3.5),
    3770.63: (0.75, 3.0), 3750.15: (0.6, 2.6), 3734.37: (0.5, 2.3), 3721.94: (0.4, 2.0),
}
_FE_I = (4045.81, 4063.59, 4071.74, 4143.87, 4202.03, 4250.79, 4271.76, 4325.76, 4383.55,
         4404.75, 4415.12, 4528.61, 4920.50, 4957.60, 5227.19, 5269.54, 5328.04, 5371.49,
         5405.77, 5429.70, 5446.92, 5615.64, 6252.56, 6494.98, 8688.63)
_TEMPLATE_LINES = {
    # class: [(air wavelength, peak optical depth at unit class weight), ...]
    "neutral": [(w, 0.9) for w in _FE_I] + [
        (4226.73, 3.0), (6122.22, 0.8), (6162.17, 0.9), (6102.72, 0.6),  # Ca I
        (3829.36, 1.2), (3832.30, 1.5), (3838.29, 1.8), (5167.32, 1.5), (5172.68, 2.0),
        (5183.60, 2.2), (8806.76, 0.6),  # Mg I
        (5889.95, 2.5), (5895.92, 2.0),  # Na D cores
        (3944.01, 1.0), (3961.52, 1.2),  # Al I
        (4030.75, 0.9), (4033.06, 0.8), (5206.04, 0.8), (5208.42, 0.9),  # Mn I, Cr I
        (4254.35, 0.7), (4274.80, 0.7), (7664.90, 0.8), (7698.96, 0.7),  # Cr I, K I
        (8183.26, 0.6), (8194.82, 0.7),  # Na I
    ],
    "ionized": [
        (4233.17, 0.8), (4923.92, 0.9), (5018.44, 1.0), (5169.03, 0.9), (5316.62, 0.7),
        (4549.47, 0.6), (4583.84, 0.6), (4077.71, 1.3), (4215.52, 1.0),  # Fe II, Sr II
        (4395.03, 0.5), (4443.79, 0.5), (4501.27, 0.5), (4571.97, 0.5),  # Ti II
        (6141.71, 0.5), (6496.90, 0.5),  # Ba II
    ],
    "hot_metal": [
        (4481.13, 1.0), (4481.33, 0.8), (6347.10, 0.6), (6371.36, 0.5), (4267.26, 0.4),
        (7771.94, 0.8), (7774.17, 0.7), (7775.39, 0.6), (3933.66, 0.6),
    ],
    "he1": [
        (4026.19, 0.6), (4387.93, 0.3), (4471.48, 0.8), (4713.15, 0.3), (4921.93, 0.5),
        (5015.68, 0.4), (5875.62, 0.9), (6678.15, 0.6), (7065.19, 0.4),
    ],
    "ca2_hk": [(3933.66, 8.0), (3968.47, 7.0)],
    "ca2_triplet": [(8498.02, 1.5), (8542.09, 2.5), (8662.14, 2.2)],
    "balmer_core": [(w, 1.2) for w in _BALMER],
}
#: Molecular bands: (head air wavelength, e-folding length A, peak optical depth, direction)
#: direction +1 = degraded to the red (absorption longward of the head), -1 = to the blue.
_BANDS = {
    "tio": [(4954.6, 45.0, 0.8, 1), (5166.9, 50.0, 0.8, 1), (5448.0, 60.0, 0.8, 1),
            (5597.0, 40.0, 0.5, 1), (5847.0, 50.0, 0.6, 1), (6158.9, 80.0, 1.0, 1),
            (6651.0, 60.0, 0.7, 1), (7053.9, 100.0, 1.5, 1), (7087.0, 50.0, 0.6, 1),
            (7589.0, 80.0, 0.7, 1), (8432.0, 60.0, 0.6, 1), (8859.0, 100.0, 0.7, 1)],
    "cah": [(6382.0, 30.0, 0.7, 1), (6750.0, 120.0, 0.8, 1), (6946.0, 40.0, 0.4, 1)],
    "vo": [(7334.0, 60.0, 0.6, 1), (7851.0, 80.0, 0.7, 1)],
    "cn": [(3883.0, 30.0, 1.0, -1), (4215.0, 35.0, 0.5, -1)],
}
#: Pressure-broadened wings, evaluated per spectrum because their width depends on log g:
#: (air wavelength, class, peak wing optical depth, base HWHM A)
_WING_LINES = [
    (3933.66, "ca2_wing", 40.0, 1.0), (3968.47, "ca2_wing", 32.0, 1.0),
    (5167.32, "mgb_wing", 2.0, 0.8), (5172.68, "mgb_wing", 3.0, 0.8),
    (5183.60, "mgb_wing", 3.5, 0.8),
    (5889.95, "nad_wing", 3.5, 0.8), (5895.92, "nad_wing", 2.8, 0.8),
    (8498.02, "cat_wing", 1.2, 1.5), (8542.09, "cat_wing", 2.2, 1.5),
    (8662.14, "cat_wing", 1.9, 1.5),
    (8183.26, "alkali_ir", 1.0, 1.0), (8194.82, "alkali_ir", 1.2, 1.0),
    (7664.90, "alkali_ir", 1.3, 1.0), (7698.96, "alkali_ir", 1.0, 1.0),
]
_BALMER_LIMIT_VAC = float(air_to_vacuum(3646.0))


# --------------------------------------------------------------------------- templates
class _Templates:
    """Optical-depth templates on a fine log-lambda grid (6 points per BOSS pixel)."""

    def __init__(self) -> None:
        rng = np.random.default_rng(_TEMPLATE_SEED)
        self.x = np.arange(_TPL_X0, _TPL_X1, 1.0 / _TPL_STEP)
        self.wave = _to_wave(self.x)
        names: list[str] = []
        rows: list[np.ndarray] = []
        for name, lines in _TEMPLATE_LINES.items():
            waves, depths = np.array(lines, dtype=np.float64).T
            raw = self._deltas(air_to_vacuum(waves), depths)
            if name in ("neutral", "ionized"):
                raw += self._forest(rng, 700 if name == "neutral" else 250)
            names.append(name)
            rows.append(self._smooth(raw))
        for name, bands in _BANDS.items():
            names.append(name)
            rows.append(self._smooth(self._bands(bands)))
        names.append("gband")
        rows.append(self._smooth(self._gband()))
        names.append("cool_haze")
        rows.append(self._smooth(self._forest(rng, 600, lo=4000.0, hi=9500.0, power=0.0)))
        names.append("telluric")
        rows.append(self._smooth(self._telluric(rng)))
        self.names = tuple(names)
        self.index = {n: i for i, n in enumerate(names)}
        self.tau = np.stack(rows)
        self.rest_names = tuple(n for n in names if n != "telluric")
        self.rows_rest = np.array([self.index[n] for n in self.rest_names])

    def _deltas(self, vac: np.ndarray, peak: np.ndarray) -> np.ndarray:
        """Cloud-in-cell deltas whose smoothed peak equals `peak` (keeps exact line centres)."""
        raw = np.zeros_like(self.x)
        u = (_to_x(vac) - _TPL_X0) * _TPL_STEP
        i = np.floor(u).astype(int)
        f = u - i
        area = peak * np.sqrt(2.0 * np.pi) * _INTRINSIC_SIGMA_PX * _TPL_STEP
        np.add.at(raw, i, area * (1.0 - f))
        np.add.at(raw, i + 1, area * f)
        return raw

    def _forest(self, rng: np.random.Generator, n: int, lo: float = 3550.0, hi: float = 10400.0,
                power: float = 3.0) -> np.ndarray:
        """Weak unresolved lines, denser to the blue as in real stellar spectra."""
        # inverse-CDF draw from density ~ lambda^-power on [lo, hi]
        u = rng.random(n)
        if power == 0.0:
            wave = lo + (hi - lo) * u
        else:
            a, b = lo ** (1 - power), hi ** (1 - power)
            wave = (a + (b - a) * u) ** (1.0 / (1 - power))
        peak = 10 ** rng.uniform(np.log10(0.02), np.log10(0.35), n)
        return self._deltas(wave, peak)

    def _bands(self, bands: list[tuple[float, float, float, int]]) -> np.ndarray:
        raw = np.zeros_like(self.x)
        for head_air, length, peak, direction in bands:
            d = (self.wave - air_to_vacuum(head_air)) * direction
            inside = d >= 0
            raw[inside] += peak * np.exp(-d[inside] / length)
        return raw

    def _gband(self) -> np.ndarray:
        w = self.wave
        return (0.7 * np.exp(-0.5 * ((w - air_to_vacuum(4305.0)) / 6.0) ** 2)
                + 0.6 * np.exp(-0.5 * ((w - air_to_vacuum(4313.0)) / 1.5) ** 2))

    def _telluric(self, rng: np.random.Generator) -> np.ndarray:
        raw = np.zeros_like(self.x)
        for lo, hi, n, top in ((6867.0, 6890.0, 20, 0.8), (7594.0, 7630.0, 30, 1.8),
                               (7160.0, 7340.0, 60, 0.25), (8130.0, 8350.0, 70, 0.25),
                               (8950.0, 9800.0, 150, 0.4)):
            wave = air_to_vacuum(rng.uniform(lo, hi, n))
            raw += self._deltas(wave, rng.uniform(0.2, 1.0, n) * top)
        return raw

    def _smooth(self, raw: np.ndarray) -> np.ndarray:
        sig = _INTRINSIC_SIGMA_PX * _TPL_STEP
        half = int(np.ceil(5 * sig))
        k = np.exp(-0.5 * (np.arange(-half, half + 1) / sig) ** 2)
        return np.convolve(raw, k / k.sum(), mode="same")

    def sample(self, rows: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Linear interpolation of template `rows` (C,) at native coordinates x (N, J)."""
        u = (x - _TPL_X0) * _TPL_STEP
        i = np.floor(u).astype(np.intp)
        f = u - i
        out = np.empty((rows.shape[0], *x.shape))
        for c, r in enumerate(rows):
            t = self.tau[r]
            out[c] = t[i] * (1.0 - f) + t[i + 1] * f
        return out

    def combine_shifted(self, weights: np.ndarray, x_first: float, n_fine: int,
                        dx: np.ndarray) -> np.ndarray:
        """sum_c weights[:, c] * template_c at x_first + j/_OVERSAMPLE - dx, shape (N, n_fine).

        The fine grid steps by a whole number of template points and the Doppler shift is one
        constant per spectrum, so each spectrum needs one weighted template sum (a matrix
        product) and a strided two-point interpolation with a single fraction.
        """
        step = _TPL_STEP // _OVERSAMPLE
        base = (x_first - _TPL_X0) * _TPL_STEP - _TPL_STEP * dx[:, 0]
        ib = np.floor(base).astype(np.intp)
        frac = (base - ib)[:, None]
        lo, hi = int(ib.min()), int(ib.max()) + step * n_fine + 2
        combined = weights @ self.tau[self.rows_rest, lo:hi]
        idx = (ib - lo)[:, None] + step * np.arange(n_fine)[None, :]
        return (np.take_along_axis(combined, idx, axis=1) * (1.0 - frac)
                + np.take_along_axis(combined, idx + 1, axis=1) * frac)


_TEMPLATES: _Templates | None = None


def _templates() -> _Templates:
    global _TEMPLATES
    if _TEMPLATES is None:
        _TEMPLATES = _Templates()
    return _TEMPLATES


def _instrument_kernel(resolution: float) -> np.ndarray:
    """Gaussian LSF in fine-grid points, convolved with the pixel (3 fine points wide)."""
    sigma_px = SPEED_OF_LIGHT_KMS / resolution / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    sigma_px /= SPEED_OF_LIGHT_KMS * np.log(10.0) * BOSS_DLOGLAM
    sig = sigma_px * _OVERSAMPLE
    half = int(np.ceil(4 * sig))
    g = np.exp(-0.5 * (np.arange(-half, half + 1) / sig) ** 2)
    k = np.convolve(g, np.ones(_OVERSAMPLE))
    return k / k.sum()


# --------------------------------------------------------------------------- label physics
def _col(v: np.ndarray | float, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)).reshape(n, 1)


def _balmer_strength(teff: np.ndarray) -> np.ndarray:
    """Peaks near 9.5 kK: n=2 population rises with T, then hydrogen ionises."""
    d = np.log10(teff / 9500.0)
    width = np.where(d < 0, 0.16, 0.25)
    return np.exp(-0.5 * (d / width) ** 2)


def _weights(teff, logg, feh) -> dict[str, np.ndarray]:
    """Amplitude of each template / wing class for labels given as (N, 1) columns."""
    theta = 5040.0 / teff
    no_metals = _sigmoid((logg - 6.8) / 0.15)  # DA white dwarfs: heavy elements have settled
    metal = 10.0 ** feh * (1.0 - no_metals)
    f_neutral = theta ** 2.5 * _sigmoid((7500.0 - teff) / 700.0)
    f_ca2 = (1.0 + theta) * _sigmoid((10500.0 - teff) / 1000.0)
    cool = (np.logaddexp(0.0, (4100.0 - teff) / 150.0) * 150.0 / 900.0) ** 1.5
    dwarfness = _sigmoid((logg - 3.8) / 0.3)
    s_h = _balmer_strength(teff)
    w = {
        "neutral": metal * f_neutral,
        "ionized": metal * np.exp(-0.5 * ((teff - 7000.0) / 2600.0) ** 2)
        * 10 ** (-0.25 * (logg - 4.0)),
        "hot_metal": metal * np.exp(-0.5 * (np.log10(teff / 11000.0) / 0.12) ** 2),
        "he1": _sigmoid((teff - 14500.0) / 1500.0) * (1.0 - 0.8 * no_metals),
        "ca2_hk": metal * f_ca2,
        "ca2_triplet": metal * theta * _sigmoid((8500.0 - teff) / 900.0)
        * 10 ** (-0.2 * (logg - 4.0)),
        "balmer_core": s_h * (1.0 + 0.15 * np.clip(4.0 - logg, -4.0, 4.0)),
        "tio": 10 ** (0.5 * feh) * (1.0 - no_metals) * cool,
        "cah": 10 ** (0.3 * feh) * (1.0 - no_metals) * cool * dwarfness,
        "vo": 10 ** (0.5 * feh) * (1.0 - no_metals) * _sigmoid((3250.0 - teff) / 100.0),
        "cn": metal * np.exp(-0.5 * ((teff - 4700.0) / 700.0) ** 2)
        * 10 ** (-0.3 * (logg - 3.0)),
        "gband": metal ** 0.7 * np.exp(-0.5 * ((teff - 5000.0) / 900.0) ** 2) * (1 - no_metals),
        "cool_haze": metal ** 0.5 * cool,
        # wings
        "ca2_wing": metal * theta ** 2 * _sigmoid((8000.0 - teff) / 800.0),
        "mgb_wing": metal * f_neutral * 10 ** (0.4 * (logg - 4.4)),
        "nad_wing": metal * theta ** 3 * _sigmoid((7000.0 - teff) / 700.0)
        * 10 ** (0.4 * (logg - 4.4)),
        "cat_wing": metal * theta * _sigmoid((8500.0 - teff) / 900.0)
        * 10 ** (-0.1 * (logg - 4.0)),
        "alkali_ir": metal * theta ** 4 * _sigmoid((4500.0 - teff) / 400.0)
        * 10 ** (0.6 * (logg - 4.4)),
        "s_h": s_h,
        "no_metals": no_metals,
        "metal": metal,
        "theta": theta,
    }
    return w


def _planck(wave_a: np.ndarray, teff: np.ndarray) -> np.ndarray:
    """B_lambda up to a constant; exponent clipped so 3000 K in the far blue stays finite."""
    hc_k = 1.4387769e8  # h c / k in Angstrom K
    z = np.minimum(hc_k / (wave_a * teff), 700.0)
    return wave_a ** -5 / np.expm1(z)


# --------------------------------------------------------------------------- synthesis
def _add_lorentzian(tau: np.ndarray, wave_rest: np.ndarray, x_fine: np.ndarray, centre: float,
                    peak: np.ndarray, gamma: np.ndarray) -> None:
    """tau += peak / (1 + (d/gamma)^2), cut to zero at |d| = 100 gamma (speed).

    The cut-off is per spectrum, so a row does not depend on what else is in its batch.
    """
    half = _WING_CUT * float(gamma.max())  # Angstrom
    lo, hi = _to_x(np.array([max(centre - half, 1.0), centre + half]))
    a = int(np.searchsorted(x_fine, lo - 8.0))  # 8 px: beyond the largest Doppler shift
    b = int(np.searchsorted(x_fine, hi + 8.0))
    if b <= a:
        return
    d = (wave_rest[:, a:b] - centre) / gamma
    tau[:, a:b] += peak * np.maximum(1.0 / (1.0 + d * d) - _WING_FLOOR, 0.0)


def noiseless_batch(teff, logg, fe_h, rv, *, wavelength: np.ndarray | None = None,
                    ebv=0.0, telluric=1.0, resolution: float = RESOLUTION,
                    flux_scale=1.0) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free spectra (N, npix) for label arrays; flux median over the grid = flux_scale.

    `wavelength` defaults to the BOSS coadd grid; any other grid (vacuum A, 3400-10900 A) is
    served by computing on the BOSS-like log grid and interpolating, as a survey would resample.
    """
    teff = np.atleast_1d(np.asarray(teff, dtype=np.float64))
    n = teff.shape[0]
    teff = teff.reshape(n, 1)
    logg, feh, rv = _col(logg, n), _col(fe_h, n), _col(rv, n)
    ebv, telluric, scale = _col(ebv, n), _col(telluric, n), _col(flux_scale, n)
    if np.any(teff <= 0) or np.any(np.abs(rv) >= SPEED_OF_LIGHT_KMS):
        raise ValueError("teff must be > 0 K and |rv| < c")

    if wavelength is None:
        i0, npix_native = 0, BOSS_NPIX
    else:
        wavelength = np.asarray(wavelength, dtype=np.float64)
        xw = _to_x(wavelength)
        if xw.min() < _TPL_X0 + 20 or xw.max() > _TPL_X1 - 20:
            raise ValueError(
                f"wavelength spans {wavelength.min():.0f}-{wavelength.max():.0f} A; the "
                f"generator covers {float(_to_wave(np.float64(_TPL_X0 + 20))):.0f}-"
                f"{float(_to_wave(np.float64(_TPL_X1 - 20))):.0f} A"
            )
        i0 = int(np.floor(xw.min())) - 1
        npix_native = int(np.ceil(xw.max())) - i0 + 2

    kernel = _instrument_kernel(resolution)
    half = kernel.size // 2
    n_out = npix_native
    pad = _MARGIN_PX
    # fine grid: x = i0 - pad + j / OVERSAMPLE
    n_fine = _OVERSAMPLE * (n_out + 2 * pad)
    x_fine = i0 - pad + np.arange(n_fine) / _OVERSAMPLE
    dx = np.log10(1.0 + rv / SPEED_OF_LIGHT_KMS) / BOSS_DLOGLAM  # (N, 1) shift in native pixels
    x_rest = x_fine[None, :] - dx
    wave_rest = _to_wave(x_rest)

    tpl = _templates()
    w = _weights(teff, logg, feh)
    weights = np.concatenate([w[c] for c in tpl.rest_names], axis=1)
    tau = tpl.combine_shifted(weights, float(x_fine[0]), n_fine, dx)
    # Balmer lines: Lorentzian (Stark) wings, HWHM growing with log g and line strength.
    s_h = w["s_h"]
    gscale = 10 ** (0.22 * (logg - 4.0)) * (0.25 + 0.75 * s_h)
    for air, (peak, hwhm) in _BALMER.items():
        gamma = hwhm * gscale
        _add_lorentzian(tau, wave_rest, x_fine, float(air_to_vacuum(air)), peak * s_h, gamma)
    # Pressure wings of strong metal lines.
    for air, cls, peak, hwhm in _WING_LINES:
        gamma = hwhm * 10 ** (0.15 * (logg - 4.4))
        _add_lorentzian(tau, wave_rest, x_fine, float(air_to_vacuum(air)), peak * w[cls], gamma)

    # Continuum: Planck x UV blanketing x Balmer jump x reddening.
    theta = w["theta"]
    blanket = 0.5 * theta ** 3 * 10 ** (0.4 * feh) * (1.0 - w["no_metals"])
    cont = _planck(wave_rest, teff) * np.exp(-blanket * (4000.0 / wave_rest) ** 4)
    jump = np.clip(0.55 * s_h * (1.0 + 0.1 * (4.0 - logg)), 0.0, 0.8)
    edge_w = 8.0 * 10 ** (0.1 * (logg - 4.0))
    edge = _BALMER_LIMIT_VAC + 2.5 * edge_w
    cont *= 1.0 - jump * _sigmoid((edge - wave_rest) / edge_w)
    wave_obs = _to_wave(x_fine)[None, :]
    a_lambda = 3.1 * ebv * (wave_obs / 5500.0) ** -1.25
    tel = telluric * tpl.sample(np.array([tpl.index["telluric"]]), x_fine[None, :])[0]
    fine = cont * np.exp(-(tau + tel) - 0.921 * a_lambda)

    # LSF + pixel integration, evaluated only at native pixel centres.
    out = np.zeros((n, n_out))
    start = _OVERSAMPLE * pad
    for t, k in enumerate(kernel):
        s = start + t - half
        out += k * fine[:, s: s + _OVERSAMPLE * n_out: _OVERSAMPLE]
    out *= scale / np.median(out, axis=1, keepdims=True)

    native_wave = _to_wave(i0 + np.arange(n_out, dtype=np.float64))
    if wavelength is None:
        return native_wave, out
    interp = np.empty((n, wavelength.shape[0]))
    for r in range(n):
        interp[r] = np.interp(wavelength, native_wave, out[r])
    return wavelength, interp


def _throughput(wave: np.ndarray) -> np.ndarray:
    """Relative BOSS sensitivity: poor at both ends and at the dichroic near 6000 A."""
    t = np.exp(-(((wave - 6500.0) / 3400.0) ** 4))
    return np.maximum(t * (1.0 - 0.3 * np.exp(-0.5 * ((wave - 6000.0) / 120.0) ** 2)), 0.05)


def noise_sigma(wavelength: np.ndarray, flux: np.ndarray, snr) -> np.ndarray:
    """Per-pixel sigma with median(flux / sigma) = snr (photon + sky noise, throughput)."""
    flux = np.atleast_2d(flux)
    snr = _col(snr, flux.shape[0])
    level = np.median(flux, axis=1, keepdims=True)
    var = (np.maximum(flux, 0.0) + 0.3 * level) / _throughput(np.asarray(wavelength))[None, :]
    shape = np.sqrt(var)
    k = np.median(flux / shape, axis=1, keepdims=True) / snr
    return shape * k


def synthesize_batch(teff, logg, fe_h, rv, snr, rng: np.random.Generator, *,
                     wavelength: np.ndarray | None = None, ebv=0.0, telluric=None,
                     flux_scale=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noisy spectra for label arrays: (wavelength (P,), flux (N, P), ivar (N, P)), float32.

    Draws from `rng`, in this order: flux scale (log-uniform 2-100 x 1e-17 erg/s/cm2/A, unless
    given), telluric strength (0.5-2 x, unless given), then the noise.
    """
    teff = np.atleast_1d(np.asarray(teff, dtype=np.float64))
    n = teff.shape[0]
    if flux_scale is None:
        flux_scale = 10 ** rng.uniform(np.log10(2.0), 2.0, n)
    if telluric is None:
        telluric = rng.uniform(0.5, 2.0, n)
    wave, flux = noiseless_batch(teff, logg, fe_h, rv, wavelength=wavelength, ebv=ebv,
                                 telluric=telluric, flux_scale=flux_scale)
    sigma = noise_sigma(wave, flux, snr)
    noisy = flux + sigma * rng.standard_normal(flux.shape)
    return wave, noisy.astype(np.float32), (1.0 / sigma ** 2).astype(np.float32)


def synthesize(teff: float, logg: float, fe_h: float, rv: float, snr: float,
               rng: np.random.Generator, *, wavelength: np.ndarray | None = None,
               ebv: float = 0.0, telluric: float | None = None,
               flux_scale: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One noisy spectrum: (wavelength, flux, ivar) with ivar = 1/sigma^2 of the added noise."""
    wave, flux, ivar = synthesize_batch(
        [teff], logg, fe_h, rv, snr, rng, wavelength=wavelength, ebv=ebv,
        telluric=None if telluric is None else [telluric],
        flux_scale=None if flux_scale is None else [flux_scale],
    )
    return wave, flux[0], ivar[0]


# --------------------------------------------------------------------------- labels
_MS_T = np.array([3000, 3500, 4000, 5000, 5800, 7000, 9500, 15000, 30000], dtype=float)
_MS_G = np.array([5.2, 4.95, 4.75, 4.6, 4.45, 4.25, 4.15, 4.1, 4.0])
_RGB_T = np.array([3200, 3600, 4000, 4500, 5000, 5600], dtype=float)
_RGB_G = np.array([0.0, 0.6, 1.3, 2.2, 3.0, 3.6])


def sample_labels(n: int, rng: np.random.Generator,
                  weights: tuple[float, ...] = (0.47, 0.25, 0.07, 0.06, 0.15)
                  ) -> dict[str, np.ndarray]:
    """Plausible labels: Teff 3000-30000 K, log g 0-9, [Fe/H] -2.5..0.5, RV +-400, S/N 5-200.

    Populations (`POPULATIONS`): main-sequence/subgiant dwarfs, red giants (with a red clump),
    hot giants/horizontal branch/supergiants, hot subdwarfs, DA white dwarfs. White dwarfs get
    [Fe/H] = 0 because their spectra carry no metal lines (that value is a label convention).
    Also returns `ebv` (reddening, mostly < 0.2) and `population` (index into POPULATIONS).
    """
    p = np.asarray(weights, dtype=float)
    pop = rng.choice(len(p), size=n, p=p / p.sum())
    teff = np.empty(n)
    logg = np.empty(n)
    def logu(lo: float, hi: float, k: int) -> np.ndarray:
        return np.asarray(10 ** rng.uniform(np.log10(lo), np.log10(hi), k))

    m = pop == 0
    k = int(m.sum())
    teff[m] = logu(3000.0, 30000.0, k)
    evolved = rng.exponential(0.15, k) * (rng.random(k) < 0.5)
    logg[m] = np.interp(teff[m], _MS_T, _MS_G) + rng.normal(0, 0.1, k) - np.minimum(evolved, 1.0)
    m = pop == 1
    k = int(m.sum())
    clump = rng.random(k) < 0.3
    t = logu(3200.0, 5600.0, k)
    g = np.interp(t, _RGB_T, _RGB_G) + rng.normal(0, 0.25, k)
    t = np.where(clump, rng.normal(4750.0, 150.0, k), t)
    g = np.where(clump, rng.normal(2.5, 0.15, k), g)
    teff[m], logg[m] = t, g
    m = pop == 2
    k = int(m.sum())
    t = logu(5600.0, 20000.0, k)
    gmin = 0.5 + 2.7 * np.clip((np.log10(t) - 3.75) / 0.55, 0.0, 1.0)
    teff[m], logg[m] = t, rng.uniform(gmin, 3.9)
    m = pop == 3
    k = int(m.sum())
    teff[m], logg[m] = rng.uniform(20000.0, 30000.0, k), rng.uniform(5.0, 6.2, k)
    m = pop == 4
    k = int(m.sum())
    teff[m], logg[m] = logu(6000.0, 30000.0, k), rng.normal(8.0, 0.3, k)
    teff = np.clip(teff, 3000.0, 30000.0)
    logg = np.clip(logg, 0.0, 9.0)
    feh = np.where(rng.random(n) < 0.6, rng.normal(-0.2, 0.35, n), rng.uniform(-2.5, 0.5, n))
    feh = np.where(pop == 4, 0.0, np.clip(feh, -2.5, 0.5))
    rv = np.where(rng.random(n) < 0.5, rng.normal(0.0, 50.0, n), rng.uniform(-400, 400, n))
    rv = np.clip(rv, -400.0, 400.0)
    snr = logu(5.0, 200.0, n)
    ebv = np.minimum(rng.exponential(0.06, n), 0.5)
    return {"teff": teff, "logg": logg, "fe_h": feh, "rv": rv, "snr": snr, "ebv": ebv,
            "population": pop}
