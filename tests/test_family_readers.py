"""Readers of the sibling networks' inputs: apStar, mwm APOGEE HDUs, Gaia XP and RVS tables."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
from astropy.io import fits
from layouts import write_apstar, write_gaia_table, write_mwm

from bossnet_onnx.errors import MemberMismatchError
from bossnet_onnx.readers import apstar, gaia, read_spectra, sniff_kinds
from bossnet_onnx.spectrum import ReadFailure, Spectrum

XP_FILES = ("gaia-xp-continuous-GaiaXPy-XP_CONTINUOUS_RAW.csv",
            "gaia-xp-continuous-GaiaXPy-XP_CONTINUOUS_RAW.ecsv",
            "gaia-xp-continuous-GaiaXPy-XP_CONTINUOUS_RAW.fits",
            "gaia-xp-continuous-GaiaXPy-XP_CONTINUOUS_RAW.xml")
PROXIMA = 5853498713190525696


def test_real_multi_visit_apstar_gives_combined_and_visits(shared_data):
    path = shared_data / "apogee-apstar-dr13-r6-2M00452143+1634446.fits"
    records = read_spectra(path, kind="apogee")
    assert [r.row for r in records] == [0, 2, 3, 4]  # row 1 (global weighting) left out
    first = records[0]
    assert isinstance(first, Spectrum) and first.kind == "apogee"
    assert first.identifiers["apogee_id"] == "2M00452143+1634446"
    assert first.identifiers["telescope"] == "apo25m"
    assert [r.identifiers["visit"] for r in records] == [0, 1, 2, 3]
    with fits.open(path) as hdul:
        np.testing.assert_array_equal(first.flux, hdul[1].data[0])
        np.testing.assert_array_equal(first.sigma, hdul[2].data[0])
        np.testing.assert_array_equal(records[1].flux, hdul[1].data[2])
    assert first.wavelength[0] == pytest.approx(15100.8, abs=0.1)
    assert first.wavelength[-1] == pytest.approx(16999.8, abs=0.1)


def test_real_one_visit_apstar_with_1d_arrays(shared_data):
    # The reference cannot read this layout (it indexes row 0 of a 1-D array).
    records = read_spectra(shared_data / "apogee-apstar-dr13-r6-2M03290406+3117075.fits")
    assert len(records) == 1 and records[0].row == 0 and records[0].flux.shape == (8575,)


def test_apstar_written_reads_back_and_all_zero_visit_is_a_failure_row(tmp_path):
    rng = np.random.default_rng(1)
    flux = 1 + 0.1 * rng.standard_normal((4, 8575))
    flux[3] = 0.0
    path = write_apstar(tmp_path / "apStar-test.fits", flux, np.full((4, 8575), 0.1))
    records = read_spectra(path)
    assert isinstance(records[0], Spectrum) and isinstance(records[1], Spectrum)
    bad = records[2]
    assert isinstance(bad, ReadFailure) and bad.row == 3
    assert bad.error.startswith(f"{path}[HDU 1, row 3]: flux is all zero")
    np.testing.assert_allclose(records[0].flux, flux[0].astype(np.float32))


def test_apstar_with_mismatched_error_image_is_one_file_error(tmp_path):
    path = write_apstar(tmp_path / "apStar-bad.fits", np.ones((3, 8575)), np.ones(8575))
    with pytest.raises(Exception, match=r"apStar-bad\.fits\[HDU 2\]: error image is \(8575,\) "
                                        r"but flux is \(8575, 3\); expected the same 1-D or 2-D shape"):
        read_spectra(path)


def test_apstar_given_to_boss_is_a_mismatch(shared_data):
    path = shared_data / "apogee-apstar-dr13-r6-2M00452143+1634446.fits"
    with pytest.raises(MemberMismatchError, match=r"is an APOGEE spectrum \(APOGEE Net input\) "
                                                  r"\(apstar file\) but the model reads an "
                                                  r"optical spectrum"):
        read_spectra(path, kind="boss")


def test_mwm_apogee_hdus_feed_apogee_net(tmp_path):
    rng = np.random.default_rng(2)
    rows = [{"flux": 1 + 0.1 * rng.standard_normal(8575), "ivar": np.full(8575, 100.0),
             "sdss_id": 7, "telescope": "apo25m"} for _ in range(2)]
    boss = [{"flux": np.ones(4648), "ivar": np.ones(4648)}]
    path = write_mwm(tmp_path / "mwmStar-x.fits", boss, kind="star", sdss_id=7,
                     apogee=(rows, ()))
    apogee = read_spectra(path, kind="apogee")
    assert [(r.hdu, r.row, r.kind) for r in apogee] == [(3, 0, "apogee"), (3, 1, "apogee")]
    assert apogee[0].sigma is None  # mwm files hold ivar only: sigma from ivar, as DR19
    np.testing.assert_allclose(apogee[1].flux, rows[1]["flux"].astype(np.float32))
    assert apogee[0].wavelength.shape == (8575,)
    optical = read_spectra(path, kind="boss")
    assert [(r.hdu, r.kind) for r in optical] == [(1, "boss")]
    assert sniff_kinds(path) == frozenset({"boss", "apogee"})


@pytest.mark.parametrize("name", XP_FILES)
def test_real_xp_files_in_every_archive_form(shared_data, name):
    records = read_spectra(shared_data / name)
    assert [r.identifiers["source_id"] for r in records] == [PROXIMA, 5762406957886626816]
    first = records[0]
    assert first.kind == "gaia-xp" and first.flux.shape == (110,)
    assert first.flux[0] == pytest.approx(56947.03696840172, rel=1e-6)
    assert first.covariance[0].shape == (55, 55)
    np.testing.assert_allclose(np.diag(first.covariance[0]), first.sigma[:55].astype(float) ** 2,
                               rtol=1e-6)
    assert np.all(np.linalg.eigvalsh(first.covariance[1]) > 0)
    assert sniff_kinds(shared_data / name) == frozenset({"gaia-xp"})


def test_xp_forms_agree_with_each_other(shared_data):
    reads = [read_spectra(shared_data / name) for name in XP_FILES]
    for other in reads[1:]:
        for a, b in zip(reads[0], other):
            np.testing.assert_allclose(a.flux, b.flux, rtol=1e-6)
            np.testing.assert_allclose(a.covariance[0], b.covariance[0], rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("suffix", [".csv", ".fits"])
def test_xp_source_without_bp_is_a_failure_row_naming_the_row(shared_data, suffix):
    path = shared_data / f"gaia-xp-continuous-GaiaXPy-XP_CONTINUOUS_RAW_with_missing_BP{suffix}"
    records = read_spectra(path)
    assert [type(r).__name__ for r in records] == ["Spectrum", "ReadFailure", "Spectrum"]
    bad = records[1]
    where = "[row 1]" if suffix == ".csv" else "[HDU 1, row 1]"
    assert bad.error == (f"{path}{where}: no BP solution (bp_coefficients empty or all NaN); "
                         f"Gaia XP Net needs both BP and RP")
    assert bad.identifiers["source_id"] == 5405570973190252288


def _xp_row(source_id, rng, corr_len=1485):
    return {"source_id": source_id, "bp_coefficients": rng.normal(0, 100, 55),
            "bp_coefficient_errors": rng.uniform(1, 2, 55),
            "bp_coefficient_correlations": rng.uniform(-0.05, 0.05, corr_len),
            "rp_coefficients": rng.normal(0, 100, 55),
            "rp_coefficient_errors": rng.uniform(1, 2, 55),
            "rp_coefficient_correlations": rng.uniform(-0.05, 0.05, 1485)}


@pytest.mark.parametrize("name", ["xp.csv", "xp.csv.gz", "xp.ecsv", "xp.ecsv.gz", "xp.fits"])
def test_xp_bad_rows_are_failure_rows_and_the_others_are_kept(tmp_path, name):
    rng = np.random.default_rng(3)
    rows = [_xp_row(1, rng), _xp_row(2, rng, corr_len=1484), _xp_row(3, rng)]
    rows[2]["rp_coefficients"] = np.full(55, np.nan)
    path = write_gaia_table(tmp_path / name, rows)
    records = read_spectra(path)
    assert isinstance(records[0], Spectrum) and records[0].identifiers["source_id"] == 1
    assert "bp_coefficient_correlations: 1484 correlations for 55 coefficients; expected " \
           "1485" in records[1].error
    assert "no RP solution" in records[2].error
    np.testing.assert_allclose(records[0].flux[:55], rows[0]["bp_coefficients"], rtol=1e-6)


@pytest.mark.parametrize("name", ["rvs.csv", "rvs.ecsv.gz", "rvs.fits"])
def test_rvs_tables(tmp_path, name):
    rng = np.random.default_rng(4)
    flux = 1 + 0.01 * rng.standard_normal(2401)
    rows = [{"source_id": 9_000_000_000_000_000_001, "flux": flux,
             "flux_error": np.full(2401, 0.02)},
            {"source_id": 9_000_000_000_000_000_002, "flux": np.full(2401, np.nan),
             "flux_error": np.full(2401, 0.02)}]
    path = write_gaia_table(tmp_path / name, rows)
    assert sniff_kinds(path) == frozenset({"gaia-rvs"})
    good, bad = read_spectra(path, kind="gaia-rvs")
    assert good.kind == "gaia-rvs" and good.identifiers["source_id"] == 9_000_000_000_000_000_001
    np.testing.assert_allclose(good.flux, flux.astype(np.float32))
    assert good.wavelength[0] == 8460.0 and good.wavelength[-1] == pytest.approx(8700.0)
    assert isinstance(bad, ReadFailure) and "flux empty or all NaN" in bad.error


def test_plain_csv_spectrum_is_still_the_generic_table(tmp_path):
    path = tmp_path / "spec.csv"
    wave = np.linspace(3800, 8900, 50)
    path.write_text("wavelength,flux,ivar\n" + "".join(f"{w},{1.0},{1.0}\n" for w in wave))
    (rec,) = read_spectra(path)
    assert rec.kind == "boss" and rec.format == "generic-table"
    assert sniff_kinds(path) == frozenset({"boss"})
    assert not gaia.identify(str(path), None) and not apstar.identify(str(path), None)


def test_sniff_reads_raw_headers_of_gzipped_files(tmp_path):
    plain = write_apstar(tmp_path / "star.fits", np.ones((3, 8575)), np.ones((3, 8575)))
    packed = tmp_path / "star.fits.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    # named neither apStar nor asStar: recognised from HDU1's header
    assert sniff_kinds(plain) == sniff_kinds(packed) == frozenset({"apogee"})
    truncated = tmp_path / "cut.fits"
    truncated.write_bytes(plain.read_bytes()[:1000])
    assert sniff_kinds(truncated) == frozenset()  # unsure: the reader will say what is wrong
