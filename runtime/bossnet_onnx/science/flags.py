"""Flags: DR19's BOSS Net `result_flags`, bit for bit, and our own `quality_flags`.

`result_flags` (astraAllStarBossNet / astraAllVisitBossNet, Astra 0.6.0), from the labels:

====  ======================  ==========================================================
bit   name                    set when
====  ======================  ==========================================================
0     RUNTIME_EXCEPTION       the spectrum could not be read or run (see `error` column)
1     UNRELIABLE_TEFF         teff < 1700 K or teff > 100000 K
2     UNRELIABLE_LOGG         logg < -1 or logg > 10
3     UNRELIABLE_FE_H         teff < 3200 K or logg > 5 or fe_h < -4 or fe_h > 2
4     SUSPICIOUS_FE_H         teff < 3900 K and 3 < logg < 6
====  ======================  ==========================================================

DR19 sets these bits with SQL updates on the stored labels, which are REAL (float32) columns:
the comparisons are made on the float32 values, so a teff of 3199.9999 that rounds to 3200.0
in float32 is *not* below 3200. A NaN label compares as PostgreSQL orders NaN: greater than
every number, so NaN teff sets bit 1, NaN logg bits 2 and 3, NaN fe_h bit 3 (never bit 4).
`parameter_flags` reproduces both rules. flag_warn = bit 3 or 4; flag_bad = bit 0, 1, 2 or 3.

`quality_flags` (bossnet-onnx only, not in DR19; they never change result_flags, flag_warn or
flag_bad, so a DR19 selection such as `result_flags == 0` keeps the same rows):

====  ======================  ==========================================================
0     LOW_COVERAGE            valid pixels cover less than 80% of 3800-8900 A; the rest
                              of the model input is the edge value the interpolation holds
1     NO_VALID_IVAR           no pixel has a finite positive ivar: sigma fell back to
                              0.1 x median flux, so e_* are not measurement errors
2     MANY_BAD_PIXELS         more than 20% of the pixels inside 3800-8900 A are NaN/inf
                              in flux or have ivar <= 0
3     NOT_A_STAR              the survey's own classification (CLASS) says GALAXY or QSO:
                              BOSS Net's labels mean nothing for it
4     LOW_SNR                 `snr_model` (median per-pixel S/N in 3800-8900 A) < 5
5     XP_DIAGONAL_COVARIANCE  Gaia XP Net only: a band's coefficient covariance was not
                              positive definite, so its draws used the coefficient errors
                              alone (no correlations)
====  ======================  ==========================================================

Bits 0-4 of quality_flags describe BOSS Net's interpolated optical input; the other family
members (members.py) set only the bits that apply to them (Gaia XP Net: bit 5).

The other members' `result_flags` use the same bit numbers where they apply: APOGEE Net
follows DR19 astraAllStarApogeeNet, which defines bits 0-3 with the same thresholds (it has no
bit 4, so its flag_warn is bit 3); the Gaia networks have no DR19 catalogue and use APOGEE
Net's bits 0-3.
"""
from __future__ import annotations

import enum

import numpy as np
from numpy.typing import ArrayLike

from ..spectrum import Spectrum

__all__ = ["ResultFlags", "QualityFlags", "quality_bits", "snr_in_range",
           "LOW_COVERAGE_FRACTION", "BAD_PIXEL_FRACTION", "NON_STELLAR_CLASSES", "WARN_MASK",
           "BAD_MASK", "LOW_SNR_THRESHOLD",
           "parameter_flags", "flag_warn", "flag_bad", "flag_names"]

#: Median per-pixel S/N in the model range below which QualityFlags.LOW_SNR is set (see
#: docs/uncertainties.md, "Labels at low S/N", for why 5).
LOW_SNR_THRESHOLD = 5.0


class ResultFlags(enum.IntFlag):
    """Bits of the `result_flags` column: DR19's, and only DR19's (see module docstring)."""

    RUNTIME_EXCEPTION = 1 << 0
    UNRELIABLE_TEFF = 1 << 1
    UNRELIABLE_LOGG = 1 << 2
    UNRELIABLE_FE_H = 1 << 3
    SUSPICIOUS_FE_H = 1 << 4


class QualityFlags(enum.IntFlag):
    """Bits of the `quality_flags` column: input problems bossnet-onnx detects (not DR19)."""

    LOW_COVERAGE = 1 << 0
    NO_VALID_IVAR = 1 << 1
    MANY_BAD_PIXELS = 1 << 2
    NOT_A_STAR = 1 << 3
    LOW_SNR = 1 << 4
    XP_DIAGONAL_COVARIANCE = 1 << 5


WARN_MASK = int(ResultFlags.UNRELIABLE_FE_H | ResultFlags.SUSPICIOUS_FE_H)
BAD_MASK = int(
    ResultFlags.RUNTIME_EXCEPTION
    | ResultFlags.UNRELIABLE_TEFF
    | ResultFlags.UNRELIABLE_LOGG
    | ResultFlags.UNRELIABLE_FE_H
)


def _less(x: np.ndarray, bound: float) -> np.ndarray:
    """`x < bound` as PostgreSQL evaluates it on a REAL column: NaN is never less."""
    return x < bound


def _greater(x: np.ndarray, bound: float) -> np.ndarray:
    """`x > bound` as PostgreSQL evaluates it: NaN sorts above every number, so it is greater."""
    return (x > bound) | np.isnan(x)


def parameter_flags(teff: ArrayLike, logg: ArrayLike, fe_h: ArrayLike) -> np.ndarray:
    """DR19 bits 1-4 from the labels, bit-identical to Astra 0.6.0's SQL on REAL columns.

    The labels are first rounded to float32 (DR19 stores them so); every bound is exact in
    float32, so comparing the float32 values in float64 is the database's comparison.
    """
    t, g, m = (np.asarray(v, dtype=np.float32).astype(np.float64) for v in (teff, logg, fe_h))
    flags = np.zeros(np.broadcast(t, g, m).shape, dtype=np.int64)
    flags |= np.where(_less(t, 1700) | _greater(t, 100_000),
                      int(ResultFlags.UNRELIABLE_TEFF), 0)
    flags |= np.where(_less(g, -1) | _greater(g, 10), int(ResultFlags.UNRELIABLE_LOGG), 0)
    unreliable_fe_h = _less(t, 3200) | _greater(g, 5) | _less(m, -4) | _greater(m, 2)
    flags |= np.where(unreliable_fe_h, int(ResultFlags.UNRELIABLE_FE_H), 0)
    # DR19 writes (6 > logg) & (logg > 3): NaN fails `6 > NaN`, so NaN never sets bit 4.
    suspicious = _less(t, 3900) & _less(g, 6) & (g > 3)
    flags |= np.where(suspicious, int(ResultFlags.SUSPICIOUS_FE_H), 0)
    return flags


def flag_warn(result_flags: ArrayLike) -> np.ndarray:
    """DR19 flag_warn: bit 3 or bit 4."""
    return (np.asarray(result_flags, dtype=np.int64) & WARN_MASK) != 0


def flag_bad(result_flags: ArrayLike) -> np.ndarray:
    """DR19 flag_bad: bit 0, 1, 2 or 3."""
    return (np.asarray(result_flags, dtype=np.int64) & BAD_MASK) != 0


def flag_names(result_flags: int, quality_flags: int = 0) -> list[str]:
    """Names of the set bits, DR19's first, then ours (for titles and tables)."""
    names = [f.name for f in ResultFlags if int(result_flags) & f.value]
    names += [f.name for f in QualityFlags if int(quality_flags) & f.value]
    return [str(n) for n in names]


#: QualityFlags thresholds (see the table above and docs/outputs.md).
LOW_COVERAGE_FRACTION = 0.8
BAD_PIXEL_FRACTION = 0.2
#: Survey classifications (SDSS/LAMOST CLASS) for which stellar labels mean nothing.
NON_STELLAR_CLASSES = frozenset({"GALAXY", "QSO"})


def snr_in_range(spec: Spectrum, grid: np.ndarray) -> float:
    """Our S/N: median of flux x sqrt(ivar) over the pixels inside the model's wavelength range
    with finite flux and finite ivar > 0 (NaN when there are none). A median per pixel, like
    SDSS's SN_MEDIAN_ALL, but over exactly the range BOSS Net reads."""
    wave = np.asarray(spec.wavelength, dtype=np.float64)
    flux = np.asarray(spec.flux, dtype=np.float64)
    ivar = np.asarray(spec.ivar, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        good = ((wave >= grid[0]) & (wave <= grid[-1]) & np.isfinite(flux) & np.isfinite(ivar)
                & (ivar > 0))
        if not good.any():
            return float("nan")
        return float(np.median(flux[good] * np.sqrt(ivar[good])))


def quality_bits(spec: Spectrum, coverage: float, grid: np.ndarray, snr: float) -> int:
    """QualityFlags of one prepared spectrum (the table above says when each is set)."""
    bits = QualityFlags(0)
    if coverage < LOW_COVERAGE_FRACTION:
        bits |= QualityFlags.LOW_COVERAGE
    ivar = np.asarray(spec.ivar, dtype=np.float64)
    good_ivar = np.isfinite(ivar) & (ivar > 0)
    if not good_ivar.any():
        bits |= QualityFlags.NO_VALID_IVAR
    wave = np.asarray(spec.wavelength, dtype=np.float64)
    in_range = (wave >= grid[0]) & (wave <= grid[-1])
    if in_range.any():
        bad = ~(np.isfinite(np.asarray(spec.flux, dtype=np.float64)) & good_ivar)
        if bad[in_range].mean() > BAD_PIXEL_FRACTION:
            bits |= QualityFlags.MANY_BAD_PIXELS
    if str(spec.identifiers.get("class", "")).strip().upper() in NON_STELLAR_CLASSES:
        bits |= QualityFlags.NOT_A_STAR
    if snr < LOW_SNR_THRESHOLD:  # NaN (no usable ivar) is NO_VALID_IVAR's business
        bits |= QualityFlags.LOW_SNR
    return int(bits)
