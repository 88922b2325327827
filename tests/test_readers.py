"""Readers on synthetic files in the real layouts (round trips) and on real survey files."""
from __future__ import annotations

import csv
import re

import numpy as np
import pytest
from astropy.io import fits

from bossnet_onnx.readers import READERS, read_spectra
from bossnet_onnx.spectrum import ReadFailure, Spectrum
from bossnet_onnx.synthetic import layouts

WAVE = layouts.boss_native_wavelength()


def arrays(seed: int, n: int = layouts.BOSS_NPIX):
    rng = np.random.default_rng(seed)
    flux = (10 + rng.standard_normal(n)).astype(np.float32)
    ivar = rng.uniform(0.5, 2.0, n).astype(np.float32)
    return flux, ivar


def test_registry_order_is_explicit():
    assert [r.NAME for r in READERS] == ["mwm", "sdss-spec", "lamost-table", "lamost-image",
                                         "generic-table"]


def test_spec_round_trip(tmp_path):
    flux, ivar = arrays(1)
    mask = np.zeros(flux.size, np.int32)
    mask[10:20] = 4
    path = layouts.write_spec(tmp_path / "spec-1234-56789-0042.fits", WAVE, flux, ivar,
                              plate=1234, mjd=56789, fiberid=42, catalogid=27021597,
                              sdss_id=99, and_mask=mask)
    (spec,) = read_spectra(path)
    assert spec.format == "sdss-spec" and spec.hdu == 1 and spec.row == -1
    np.testing.assert_array_equal(spec.flux, flux)
    np.testing.assert_array_equal(spec.ivar, ivar)
    # 10**loglam computed in float32, as the reference does
    expected = (np.float32(10) ** np.log10(WAVE).astype(np.float32)).astype(np.float64)
    np.testing.assert_array_equal(spec.wavelength, expected)
    assert np.max(np.abs(spec.wavelength / WAVE - 1)) < 1e-6
    assert spec.mask.sum() == 10 and spec.mask[10:20].all()
    ids = spec.identifiers
    assert (ids["plate"], ids["mjd"], ids["fiberid"]) == (1234, 56789, 42)
    assert ids["catalogid"] == 27021597 and ids["sdss_id"] == 99 and ids["class"] == "STAR"


def test_mwm_star_apo_and_lco_rows(tmp_path):
    rows_apo = [dict(zip(("flux", "ivar"), arrays(2)), sdss_id=5, catalogid=7, fieldid=101,
                     telescope="apo25m")]
    rows_lco = [dict(zip(("flux", "ivar"), arrays(3)), sdss_id=5, catalogid=7, fieldid=202,
                     telescope="lco25m")]
    path = layouts.write_mwm(tmp_path / "mwmStar-0.6.0-5.fits", rows_apo, rows_lco, kind="star",
                             sdss_id=5, catalogid=7)
    spectra = read_spectra(path)
    assert [(s.hdu, s.row) for s in spectra] == [(1, 0), (2, 0)]
    assert all(isinstance(s, Spectrum) and s.format == "mwm" for s in spectra)
    np.testing.assert_array_equal(spectra[1].flux, rows_lco[0]["flux"])
    np.testing.assert_allclose(spectra[0].wavelength, WAVE, rtol=1e-12)
    assert spectra[0].identifiers["telescope"] == "apo25m"
    assert spectra[1].identifiers["fieldid"] == 202 and spectra[1].identifiers["sdss_id"] == 5
    # the APOGEE HDUs are present but never read
    with fits.open(path) as hdul:
        assert [h.name for h in hdul[3:]] == ["APOGEE/APO", "APOGEE/LCO"]


def test_mwm_visit_every_visit_and_empty_lco(tmp_path):
    visits = [dict(zip(("flux", "ivar"), arrays(10 + k)), mjd=60000 + k, sdss_id=8)
              for k in range(3)]
    path = layouts.write_mwm(tmp_path / "mwmVisit-0.6.0-8.fits", visits, [], kind="visit")
    spectra = read_spectra(path)
    assert [(s.hdu, s.row, s.identifiers["mjd"]) for s in spectra] == \
        [(1, 0, 60000), (1, 1, 60001), (1, 2, 60002)]
    assert len({s.identity for s in spectra}) == 3


def test_mwm_one_broken_visit_does_not_lose_the_others(tmp_path):
    good = dict(zip(("flux", "ivar"), arrays(20)), mjd=60001)
    broken = dict(flux=np.full(layouts.BOSS_NPIX, np.nan, np.float32),
                  ivar=np.zeros(layouts.BOSS_NPIX, np.float32), mjd=60002)
    path = layouts.write_mwm(tmp_path / "mwmVisit-0.6.0-9.fits", [good, broken], kind="visit")
    first, second = read_spectra(path)
    assert isinstance(first, Spectrum) and isinstance(second, ReadFailure)
    assert re.search(r"mwmVisit-0\.6\.0-9\.fits\[HDU 1\], row 1: no usable flux", second.error)
    assert (second.hdu, second.row) == (1, 1)


@pytest.mark.parametrize("dr1_style, suffix", [(False, ".fits"), (True, ".fits"),
                                                (False, ".fits.gz")])
def test_lamost_image_round_trip(tmp_path, dr1_style, suffix):
    wave = 10 ** (3.5682 + 1e-4 * np.arange(3900))
    flux, ivar = arrays(4, 3900)
    path = layouts.write_lamost_image(tmp_path / f"lamost{suffix}", wave, flux, ivar,
                                      dr1_style=dr1_style, obsid=4242, subclass="K3")
    (spec,) = read_spectra(path)
    assert spec.format == "lamost-image" and spec.hdu == 0
    np.testing.assert_allclose(spec.wavelength, wave, rtol=1e-6)
    np.testing.assert_array_equal(spec.flux, flux)
    assert spec.identifiers["obsid"] == 4242 and spec.identifiers["subclass"] == "K3"


def test_lamost_table_round_trip(tmp_path):
    wave = 10 ** (3.5682 + 1e-4 * np.arange(3908))
    flux, ivar = arrays(5, 3908)
    path = layouts.write_lamost_table(tmp_path / "lamost-dr9.fits.gz", wave, flux, ivar, obsid=7)
    (spec,) = read_spectra(path)
    assert spec.format == "lamost-table" and (spec.hdu, spec.row) == (1, -1)
    np.testing.assert_allclose(spec.wavelength, wave, rtol=1e-6)
    np.testing.assert_array_equal(spec.ivar, ivar)


@pytest.mark.parametrize("suffix", [".fits", ".csv", ".ecsv"])
@pytest.mark.parametrize("use_error", [False, True])
def test_generic_tables(tmp_path, suffix, use_error):
    wave = np.linspace(3600, 9500, 2000)
    flux, ivar = arrays(6, 2000)
    path = layouts.write_generic_table(tmp_path / f"t{suffix}", wave, flux, ivar,
                                       use_error=use_error)
    (spec,) = read_spectra(path)
    assert spec.format == "generic-table"
    np.testing.assert_allclose(spec.wavelength, wave)
    np.testing.assert_allclose(spec.flux, flux, rtol=1e-6)
    np.testing.assert_allclose(spec.ivar, ivar, rtol=1e-5)


def test_generic_loglam_column(tmp_path):
    path = tmp_path / "loglam.csv"
    path.write_text("loglam,flux,err\n3.6,1.0,0.5\n3.7,2.0,0.25\n3.8,3.0,0\n")
    (spec,) = read_spectra(path)
    np.testing.assert_allclose(spec.wavelength, 10 ** np.array([3.6, 3.7, 3.8]))
    np.testing.assert_allclose(spec.ivar, [4.0, 16.0, 0.0])


# ----------------------------------------------------------------------- real survey files
def manifest(shared_data):
    with open(shared_data / "MANIFEST.tsv") as fh:
        return {row["local_name"]: row for row in csv.DictReader(fh, delimiter="\t")}


def test_every_real_file_reads_as_its_manifest_says(shared_data):
    rows = manifest(shared_data)
    assert len(rows) == 19
    for name, row in rows.items():
        (spec,) = read_spectra(shared_data / name)
        assert isinstance(spec, Spectrum), name
        assert spec.flux.size == int(row["npix"]), name
        assert spec.wavelength[0] == pytest.approx(float(row["wave_min"]), abs=0.1), name
        assert spec.wavelength[-1] == pytest.approx(float(row["wave_max"]), abs=0.1), name
        assert spec.identifiers["class"] == row["class"], name
        expected_format = {"sdss": "sdss-spec"}.get(name.split("-")[0])
        if expected_format is None:
            expected_format = "lamost-table" if "dr9" in name else "lamost-image"
        assert spec.format == expected_format, name


def test_real_sdss_identifiers_match_file_names(shared_data):
    for path in sorted(shared_data.glob("sdss-spec-*.fits")):
        plate, mjd, fiber = (int(x) for x in path.stem.split("-")[2:5])
        (spec,) = read_spectra(path)
        assert (spec.identifiers["plate"], spec.identifiers["mjd"],
                spec.identifiers["fiberid"]) == (plate, mjd, fiber)
        assert spec.wavelength.dtype == np.float64 and spec.hdu == 1


def test_real_sdss_wavelength_is_float32_power(shared_data):
    path = shared_data / "sdss-spec-0618-52049-0372.fits"
    (spec,) = read_spectra(path)
    with fits.open(path) as hdul:
        loglam = np.asarray(hdul[1].data["loglam"], dtype=np.float32)
    np.testing.assert_array_equal(spec.wavelength, (np.float32(10) ** loglam).astype(np.float64))


def test_real_lamost_obsid_and_dr1_wavelength(shared_data):
    (dr3,) = read_spectra(shared_data / "lamost-dr3-spec-55939-GAC_061N46_V3_sp07-078.fits")
    assert dr3.identifiers["obsid"] == -28762 and dr3.identifiers["subclass"] == "A0"
    (dr1,) = read_spectra(shared_data / "lamost-dr1-spec-55862-B6212_sp06-093.fits")
    # DR1: no wavelength row; 10**(CRVAL1 + CD1_1 * i)
    np.testing.assert_allclose(dr1.wavelength[:3], 10 ** (3.5682 + 1e-4 * np.arange(3)), rtol=1e-9)
    (dr9,) = read_spectra(shared_data / "lamost-dr9-spec-55859-F5902_sp01-012.fits.gz")
    assert dr9.identifiers["obsid"] == 101012


def test_apogee_rows_are_skipped_with_a_note(tmp_path, caplog):
    import logging

    flux, ivar = arrays(30)
    path = layouts.write_mwm(tmp_path / "mwmStar-0.6.0-77.fits", [dict(flux=flux, ivar=ivar)],
                             kind="star")
    with fits.open(path, mode="update") as hdul:
        cols = [fits.Column("sdss_id", "K", array=np.array([77, 77]))]
        apogee = fits.BinTableHDU.from_columns(cols, name="APOGEE/APO")
        hdul[3] = apogee
    with caplog.at_level(logging.INFO, logger="bossnet_onnx.readers"):
        spectra = read_spectra(path)
    assert [(s.hdu, s.row) for s in spectra] == [(1, 0)]
    assert "[HDU 3]: 2 APOGEE spectra skipped" in caplog.text
