"""Wavelength units, air to vacuum, 1-D image spectra, @list comments and --recursive."""
from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from bossnet_onnx.errors import InputError, InputWarning
from bossnet_onnx.readers import read_spectra
from bossnet_onnx.readers.paths import expand_inputs
from bossnet_onnx.science.units import air_to_vacuum, to_angstrom, vacuum_to_air

N = 2000
WAVE = np.linspace(3700.0, 9000.0, N)


def arrays(seed=0):
    rng = np.random.default_rng(seed)
    flux = (1 + 0.3 * np.sin(WAVE / 50) + 0.05 * rng.standard_normal(N)).astype(np.float32)
    return flux, np.full(N, 400.0, np.float32)


def test_air_to_vacuum_inverts_morton_and_matches_h_alpha():
    wave = np.linspace(3000, 11000, 20001)
    assert np.abs(air_to_vacuum(vacuum_to_air(wave)) - wave).max() < 1e-7
    # H alpha: 6562.80 A in air is 6564.61 A in vacuum (NIST)
    assert air_to_vacuum(6562.80) == pytest.approx(6564.61, abs=0.01)
    assert air_to_vacuum(1500.0) == 1500.0  # below 2000 A vacuum is quoted


@pytest.mark.parametrize(("unit", "factor"), [("nm", 10.0), ("um", 1e4), ("micron", 1e4),
                                          ("Angstrom", 1.0), ("A", 1.0), ("", 1.0),
                                          (u.nm, 10.0), ("m", 1e10)])
def test_length_units(unit, factor):
    np.testing.assert_allclose(to_angstrom([500.0, 0.5], unit), [500 * factor, 0.5 * factor])


def test_log_and_spectral_units():
    np.testing.assert_allclose(to_angstrom([3.6, 4.0], "log(Angstrom)"), [10 ** 3.6, 1e4])
    np.testing.assert_allclose(to_angstrom([3.6], u.dex(u.AA)), [10 ** 3.6])
    np.testing.assert_allclose(to_angstrom([2e4], "cm-1"), [5000.0])
    with pytest.raises(InputError, match=r"x\.csv: wavelength unit 'kg' is not a length"):
        to_angstrom([1.0], "kg", where="x.csv")


@pytest.mark.parametrize("suffix", [".ecsv", ".fits"])
def test_table_wavelength_unit_is_honoured(tmp_path, suffix):
    flux, ivar = arrays()
    table = Table({"wavelength": WAVE / 10 * u.nm, "flux": flux * u.Unit("1e-17 erg/(s cm2 AA)"),
                   "ivar": ivar})
    path = tmp_path / f"nm{suffix}"
    table.write(path)
    (spec,) = read_spectra(path)
    np.testing.assert_allclose(spec.wavelength, WAVE, rtol=1e-12)
    assert "erg" in spec.flux_unit


def test_table_error_in_other_flux_units_is_rescaled(tmp_path):
    flux, _ = arrays()
    table = Table({"wave": WAVE * u.AA, "flux": flux * u.mJy, "error": np.full(N, 0.05) * u.Jy})
    table.write(tmp_path / "t.ecsv")
    (spec,) = read_spectra(tmp_path / "t.ecsv")
    np.testing.assert_allclose(spec.ivar, 1 / 50.0 ** 2, rtol=1e-6)  # 0.05 Jy = 50 mJy


def image_1d(path, flux, *, crval, step, crpix=None, key="CDELT1", extra=None, ext=None):
    hdu = fits.PrimaryHDU(flux)
    hdu.header["CRVAL1"] = crval
    hdu.header[key] = step
    if crpix is not None:
        hdu.header["CRPIX1"] = crpix
    for k, v in (extra or {}).items():
        hdu.header[k] = v
    hdus = [hdu] + ([fits.ImageHDU(ext[1], name=ext[0])] if ext else [])
    fits.HDUList(hdus).writeto(path)
    return path


@pytest.mark.parametrize("layout", ["linear", "cd1_1 and crpix", "log-linear", "nm"])
def test_one_dimensional_image_wavelength(tmp_path, layout):
    flux, ivar = arrays()
    if layout == "linear":
        kwargs = dict(crval=3700.0, step=WAVE[1] - WAVE[0])
        expected = WAVE
    elif layout == "cd1_1 and crpix":
        kwargs = dict(crval=WAVE[10], step=WAVE[1] - WAVE[0], crpix=11, key="CD1_1")
        expected = WAVE
    elif layout == "log-linear":
        kwargs = dict(crval=3.57, step=1e-4, extra={"DC-FLAG": 1})
        expected = 10 ** (3.57 + 1e-4 * np.arange(N))
    else:
        kwargs = dict(crval=370.0, step=(WAVE[1] - WAVE[0]) / 10, extra={"CUNIT1": "nm"})
        expected = WAVE
    path = image_1d(tmp_path / "s.fits", flux, ext=("IVAR", ivar), **kwargs)
    (spec,) = read_spectra(path)
    assert spec.format == "image-1d"
    np.testing.assert_allclose(spec.wavelength, expected, rtol=1e-9)
    np.testing.assert_array_equal(spec.ivar, ivar)


def test_one_dimensional_image_error_extension_and_air(tmp_path):
    flux, _ = arrays()
    path = image_1d(tmp_path / "e.fits", flux, crval=3700.0, step=WAVE[1] - WAVE[0],
                    ext=("ERROR", np.full(N, 0.1, np.float32)), extra={"AIRORVAC": "air",
                                                                       "BUNIT": "erg/s/cm2/A"})
    (spec,) = read_spectra(path)
    np.testing.assert_allclose(spec.ivar, 100.0, rtol=1e-5)
    np.testing.assert_allclose(spec.wavelength, air_to_vacuum(WAVE))
    assert spec.converted_from_air and spec.flux_unit == "erg/s/cm2/A"


def test_one_dimensional_image_without_errors_warns_once(tmp_path):
    flux, _ = arrays()
    path = image_1d(tmp_path / "miles.fits", flux, crval=3700.0, step=WAVE[1] - WAVE[0])
    with pytest.warns(InputWarning, match=r"miles\.fits\[HDU 0\]: no IVAR/ERROR/VARIANCE "
                                          r"extension; sigma falls back") as caught:
        (spec,) = read_spectra(path)
    assert len(caught) == 1 and not spec.ivar.any()


def test_list_inline_comments_and_recursive_directories(tmp_path):
    flux, ivar = arrays()
    (tmp_path / "a" / "b").mkdir(parents=True)
    files = []
    for name in ("top.csv", "a/mid.csv", "a/b/deep.csv", "a/b/#hash.csv"):
        Table({"wavelength": WAVE, "flux": flux, "ivar": ivar}).write(tmp_path / name)
        files.append(str(tmp_path / name))
    listing = tmp_path / "list.txt"
    listing.write_text("top.csv   # a bright star\n# whole-line comment\na/b/#hash.csv\n")
    assert expand_inputs([f"@{listing}"]) == [files[0], files[3]]
    assert expand_inputs([str(tmp_path)]) == [files[0]]
    # sorted by relative path, folder by folder: a/b/... before a/mid.csv before top.csv
    assert expand_inputs([str(tmp_path)], recursive=True) == [files[3], files[2], files[1],
                                                              files[0]]
