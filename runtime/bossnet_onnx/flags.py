"""Result flags: the SDSS DR19 BOSS Net bits, plus input-quality bits of our own.

DR19 (astraAllStarBossNet) bits, computed from the point estimates:

====  ======================  ==========================================================
bit   name                    set when
====  ======================  ==========================================================
0     RUNTIME_EXCEPTION       the spectrum could not be read or run (see `error` column)
1     UNRELIABLE_TEFF         teff outside 1700 .. 100000 K
2     UNRELIABLE_LOGG         logg outside -1 .. 10
3     UNRELIABLE_FE_H         teff < 3200 K or logg > 5 or fe_h outside -4 .. 2
4     SUSPICIOUS_FE_H         teff < 3900 K and 3 < logg < 6
====  ======================  ==========================================================

bossnet-onnx input-quality bits (not in DR19; they never change flag_warn / flag_bad, which keep
their DR19 meaning, so check `result_flags` for them):

====  ======================  ==========================================================
5     LOW_COVERAGE            valid pixels cover less than 80% of 3800-8900 A; the rest
                              of the model input is the edge value the interpolation holds
6     NO_VALID_IVAR           no pixel has a finite positive ivar: sigma fell back to
                              0.1 x median flux, so e_* are not measurement errors
7     MANY_BAD_PIXELS         more than 20% of the pixels inside 3800-8900 A are NaN/inf
                              in flux or have ivar <= 0
8     NOT_A_STAR              the survey's own classification (CLASS) says GALAXY or QSO:
                              BOSS Net's labels mean nothing for it
====  ======================  ==========================================================

flag_warn = bit 3 or bit 4; flag_bad = bit 0, 1, 2 or 3 (DR19 definitions).
"""
from __future__ import annotations

import enum

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["ResultFlags", "WARN_MASK", "BAD_MASK", "parameter_flags", "flag_warn", "flag_bad"]


class ResultFlags(enum.IntFlag):
    """Bits of the `result_flags` column (see module docstring)."""

    RUNTIME_EXCEPTION = 1 << 0
    UNRELIABLE_TEFF = 1 << 1
    UNRELIABLE_LOGG = 1 << 2
    UNRELIABLE_FE_H = 1 << 3
    SUSPICIOUS_FE_H = 1 << 4
    LOW_COVERAGE = 1 << 5
    NO_VALID_IVAR = 1 << 6
    MANY_BAD_PIXELS = 1 << 7
    NOT_A_STAR = 1 << 8


WARN_MASK = int(ResultFlags.UNRELIABLE_FE_H | ResultFlags.SUSPICIOUS_FE_H)
BAD_MASK = int(
    ResultFlags.RUNTIME_EXCEPTION
    | ResultFlags.UNRELIABLE_TEFF
    | ResultFlags.UNRELIABLE_LOGG
    | ResultFlags.UNRELIABLE_FE_H
)


def parameter_flags(teff: ArrayLike, logg: ArrayLike, fe_h: ArrayLike) -> np.ndarray:
    """DR19 bits 1-4 from point estimates (vectorised; NaN compares False and sets nothing).

    Boundaries are exclusive as DR19 states them: teff == 1700 K is inside the range, teff ==
    3200 K is not "< 3200".
    """
    teff = np.asarray(teff, dtype=np.float64)
    logg = np.asarray(logg, dtype=np.float64)
    fe_h = np.asarray(fe_h, dtype=np.float64)
    flags = np.zeros(np.broadcast(teff, logg, fe_h).shape, dtype=np.int64)
    flags |= np.where((teff < 1700) | (teff > 100_000), int(ResultFlags.UNRELIABLE_TEFF), 0)
    flags |= np.where((logg < -1) | (logg > 10), int(ResultFlags.UNRELIABLE_LOGG), 0)
    unreliable_fe_h = (teff < 3200) | (logg > 5) | (fe_h < -4) | (fe_h > 2)
    flags |= np.where(unreliable_fe_h, int(ResultFlags.UNRELIABLE_FE_H), 0)
    suspicious = (teff < 3900) & (logg > 3) & (logg < 6)
    flags |= np.where(suspicious, int(ResultFlags.SUSPICIOUS_FE_H), 0)
    return flags


def flag_warn(result_flags: np.ndarray) -> np.ndarray:
    """DR19 flag_warn: bit 3 or bit 4."""
    return (np.asarray(result_flags, dtype=np.int64) & WARN_MASK) != 0


def flag_bad(result_flags: np.ndarray) -> np.ndarray:
    """DR19 flag_bad: bit 0, 1, 2 or 3."""
    return (np.asarray(result_flags, dtype=np.int64) & BAD_MASK) != 0
