"""Records and reader boundaries behave as plain Python objects and report our bugs as bugs."""
from __future__ import annotations

import layouts
import numpy as np
import pytest

from bossnet_onnx import readers
from bossnet_onnx.errors import InputError, first_line
from bossnet_onnx.spectrum import Spectrum


def _spectrum() -> Spectrum:
    wave = np.linspace(3800, 8900, 50)
    return Spectrum(wave, np.ones(50), np.ones(50), source="a.fits", format="arrays")


def test_records_holding_arrays_compare_by_identity():
    a, b = _spectrum(), _spectrum()
    assert a == a and a != b  # no "truth value of an array is ambiguous"
    assert len({a, b}) == 2


def test_first_line_quotes_foreign_errors_in_one_line():
    assert first_line(ValueError("\n  first\nsecond")) == "first"
    assert first_line(KeyError()) == "KeyError"
    assert first_line(OSError("x" * 500), limit=10) == "x" * 10


def test_reader_bug_is_reported_as_a_bug_not_as_a_corrupt_file(tmp_path, monkeypatch):
    wave = layouts.boss_native_wavelength()
    path = layouts.write_spec(tmp_path / "spec-3000-59000-0001.fits", wave,
                              np.ones(wave.size, np.float32), np.ones(wave.size, np.float32),
                              plate=3000, mjd=59000, fiberid=1)
    reader = next(r for r in readers.READERS if r.NAME.lower().startswith("sdss"))

    def buggy(path, hdul):
        return [][0]  # an IndexError raised by our own code

    monkeypatch.setattr(reader, "read", buggy)
    with pytest.raises(IndexError):
        readers.read_spectra(str(path))


def test_values_a_file_cannot_hold_are_still_a_file_error(tmp_path):
    from astropy.table import Table

    t = Table({"wavelength": np.linspace(3800, 8900, 40),
               "flux": np.ones(40) * (1 + 1j), "ivar": np.ones(40)})
    path = tmp_path / "complex.fits"
    t.write(path)
    with pytest.raises(InputError, match=r"complex\.fits: cannot read it as .*column flux is "
                                         r"complex; expected real"):
        readers.read_spectra(str(path))
