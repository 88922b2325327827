"""DR19 result flags at every boundary."""
from __future__ import annotations

import numpy as np
import pytest

from bossnet_onnx.science.flags import (
    BAD_MASK,
    WARN_MASK,
    ResultFlags,
    flag_bad,
    flag_warn,
    parameter_flags,
)

F = ResultFlags


@pytest.mark.parametrize(
    ("teff", "logg", "fe_h", "expected"),
    [
        (5800, 4.4, 0.0, 0),
        (1700, 4.4, 0.0, F.UNRELIABLE_TEFF * 0 | F.UNRELIABLE_FE_H | F.SUSPICIOUS_FE_H),  # 1700 inside
        (1699.9, 2.0, 0.0, F.UNRELIABLE_TEFF | F.UNRELIABLE_FE_H),
        (100000, 4.0, 0.0, 0),
        (100000.1, 4.0, 0.0, F.UNRELIABLE_TEFF),
        (5800, -1.0, 0.0, 0),
        (5800, -1.01, 0.0, F.UNRELIABLE_LOGG),
        (20000, 10.0, 0.0, F.UNRELIABLE_FE_H),  # logg 10 inside bit-2 range, but > 5
        (20000, 10.01, 0.0, F.UNRELIABLE_LOGG | F.UNRELIABLE_FE_H),
        (3200, 2.0, 0.0, 0),
        (3199.9, 2.0, 0.0, F.UNRELIABLE_FE_H),
        (5800, 5.0, 0.0, 0),
        (5800, 5.01, 0.0, F.UNRELIABLE_FE_H),
        (5800, 4.0, -4.0, 0),
        (5800, 4.0, -4.01, F.UNRELIABLE_FE_H),
        (5800, 4.0, 2.0, 0),
        (5800, 4.0, 2.01, F.UNRELIABLE_FE_H),
        (3899.9, 3.01, 0.0, F.SUSPICIOUS_FE_H),
        (3900, 4.0, 0.0, 0),
        (3500, 3.0, 0.0, 0),
        (3500, 5.99, 0.0, F.SUSPICIOUS_FE_H | F.UNRELIABLE_FE_H),
        (3500, 6.0, 0.0, F.UNRELIABLE_FE_H),
        # DR19's SQL on REAL columns: PostgreSQL orders NaN above every number
        (np.nan, np.nan, np.nan, F.UNRELIABLE_TEFF | F.UNRELIABLE_LOGG | F.UNRELIABLE_FE_H),
    ],
)
def test_parameter_flags_boundaries(teff, logg, fe_h, expected):
    assert int(parameter_flags(teff, logg, fe_h)) == int(expected)


def test_bit_numbers_are_dr19():
    assert [int(f) for f in (F.RUNTIME_EXCEPTION, F.UNRELIABLE_TEFF, F.UNRELIABLE_LOGG,
                             F.UNRELIABLE_FE_H, F.SUSPICIOUS_FE_H)] == [1, 2, 4, 8, 16]
    assert WARN_MASK == 8 | 16
    assert BAD_MASK == 1 | 2 | 4 | 8


def test_warn_and_bad_from_bits():
    flags = np.array([0, 1, 2, 4, 8, 16, 32, 64, 128, 16 | 32])
    assert flag_warn(flags).tolist() == [False, False, False, False, True, True, False, False, False, True]
    assert flag_bad(flags).tolist() == [False, True, True, True, True, False, False, False, False, False]


def test_vectorised():
    out = parameter_flags(np.array([5800, 3000]), np.array([4.4, 4.8]), np.array([0.0, 0.0]))
    assert out.tolist() == [0, int(F.UNRELIABLE_FE_H | F.SUSPICIOUS_FE_H)]
