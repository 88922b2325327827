"""Readers: exact round trips through files written in every real layout, and the real survey
files of ../shared/data against their manifest."""
from __future__ import annotations

import csv
import logging
import re

import layouts
import numpy as np
import pytest
from astropy.io import fits

from bossnet_onnx.readers import (
    READERS,
    apstar,
    gaia,
    generic_table,
    image_1d,
    lamost_image,
    lamost_table,
    mwm,
    read_spectra,
    sdss_spec,
)
from bossnet_onnx.spectrum import ReadFailure, Spectrum

WAVE = layouts.boss_native_wavelength()
LAMOST_WAVE = 10 ** (3.5682 + 1e-4 * np.arange(3909))


def arrays(seed: int, n: int = layouts.BOSS_NPIX):
    rng = np.random.default_rng(seed)
    flux = (10 + rng.standard_normal(n)).astype(np.float32)
    ivar = rng.uniform(0.5, 2.0, n).astype(np.float32)
    return flux, ivar


def bad_pixels(n: int, seed: int) -> np.ndarray:
    mask = np.zeros(n, np.int32)
    mask[np.random.default_rng(seed).choice(n, 25, replace=False)] = 1 << 22
    return mask


def test_registry_order_is_explicit():
    # sdss-spec first: its test reads 2 headers, those of mwm/apstar/gaia every header
    assert (sdss_spec, mwm, apstar, gaia, lamost_table, lamost_image, image_1d,
            generic_table) == READERS
    assert [r.NAME for r in READERS] == ["sdss-spec", "mwm", "apstar", "gaia", "lamost-table",
                                         "lamost-image", "image-1d", "generic-table"]


# ------------------------------------------------------------------------------ SDSS spec
@pytest.mark.parametrize("legacy", [False, True])
def test_spec_round_trip(tmp_path, legacy):
    flux, ivar = arrays(1)
    mask = bad_pixels(flux.size, 1)
    path = layouts.write_spec(tmp_path / "spec-1234-56789-0042.fits", WAVE, flux, ivar,
                              plate=1234, mjd=56789, fiberid=42, catalogid=27021597,
                              sdss_id=99, subclass="K3", z=1.5e-4, and_mask=mask, legacy=legacy)
    (spec,) = read_spectra(path)
    assert isinstance(spec, Spectrum)
    assert (spec.format, spec.hdu, spec.row, spec.source) == ("sdss-spec", 1, -1, str(path))
    np.testing.assert_array_equal(spec.flux, flux)
    np.testing.assert_array_equal(spec.ivar, ivar)
    assert spec.flux.dtype == np.float32 and spec.wavelength.dtype == np.float64
    assert spec.flux.dtype.isnative and spec.ivar.dtype.isnative
    # 10**loglam computed in float32 from the stored float32 loglam, as the reference does
    loglam = np.log10(WAVE).astype(np.float32)
    np.testing.assert_array_equal(spec.wavelength, (np.float32(10) ** loglam).astype(np.float64))
    assert np.max(np.abs(spec.wavelength / WAVE - 1)) < 1e-6
    np.testing.assert_array_equal(spec.mask, mask != 0)
    assert spec.mask.sum() == 25
    # SDSS-V (CATALOGID): barycentric; SDSS 2.5 m is apo25m; RA/Dec of the fibre (PLUG_RA)
    assert dict(spec.identifiers) == {
        "plateid": 1234, "mjd": 56789, "fiberid": 42, "catalogid": 27021597, "sdss_id": 99,
        "class": "STAR", "subclass": "K3", "z": pytest.approx(1.5e-4), "telescope": "apo25m",
        "ra": 180.0, "dec": 0.0, "frame": "barycentric"}


def test_sdss_v_spec_has_field_catalogid_and_sdss_id(tmp_path):
    flux, ivar = arrays(8)
    path = layouts.write_spec(tmp_path / "spec-101077-59845-27021603187129892.fits", WAVE, flux,
                              ivar, plate=0, mjd=59845, fiberid=211, field=101077,
                              catalogid=27021603187129892, sdss_id=54392544)
    (spec,) = read_spectra(path)
    ids = spec.identifiers
    assert (ids["fieldid"], ids["mjd"], ids["catalogid"], ids["sdss_id"]) == \
        (101077, 59845, 27021603187129892, 54392544)


def test_identifier_row_decoded_from_bytes_equals_astropy(tmp_path, shared_data):
    """The fast first-row decoder gives what astropy gives, including after a fallback (TZERO
    column, HDUList not opened by open_fits)."""
    flux, ivar = arrays(9)
    path = layouts.write_spec(tmp_path / "s.fits", WAVE, flux, ivar, plate=1, mjd=2, fiberid=3)
    with fits.open(path, mode="update") as hdul:  # unsigned columns: TZERO, astropy decodes
        extra = [fits.Column("U", "J", bzero=2 ** 31, array=np.array([7], np.uint32)),
                 fits.Column("CATALOGID", "K", bzero=2 ** 63, array=np.array([2 ** 63 + 5],
                                                                             np.uint64))]
        hdul[2] = fits.BinTableHDU.from_columns(hdul[2].columns + fits.ColDefs(extra),
                                                name="SPALL")
    (spec,) = read_spectra(path)
    assert (spec.identifiers["catalogid"], spec.identifiers["plateid"]) == (2 ** 63 + 5, 1)
    for name in [str(path), *map(str, sorted(shared_data.glob("sdss-spec-*.fits")))]:
        (fast,) = read_spectra(name)
        with fits.open(name) as hdul:
            (slow,) = sdss_spec.read(name, hdul)
        assert dict(fast.identifiers) == dict(slow.identifiers), name


def test_table_columns_decoded_from_bytes_equal_astropy(tmp_path):
    """Whole numeric columns straight from the bytes (the COADD fast path) are astropy's values,
    rows x repeat, native-endian; what astropy must decode (scaled, text, logical columns; an
    HDUList that open_fits did not make) gives None."""
    from bossnet_onnx.readers._fits import open_fits, table_columns

    rng = np.random.default_rng(3)
    rows = 37
    numeric = {f"{code}{repeat}": (code, repeat) for code in "BIJKED" for repeat in (1, 3)}
    dtypes = {"B": np.uint8, "I": np.int16, "J": np.int32, "K": np.int64, "E": np.float32,
              "D": np.float64}
    columns = [fits.Column(name, f"{repeat}{code}", array=(rng.normal(0, 100, (rows, repeat))
                                                          .astype(dtypes[code]).squeeze()))
               for name, (code, repeat) in numeric.items()]
    columns += [fits.Column("TEXT", "5A", array=np.array(["ab"] * rows)),
                fits.Column("FLAG", "L", array=np.ones(rows, bool)),
                fits.Column("SCALED", "J", bzero=2 ** 31, array=np.arange(rows, dtype=np.uint32))]
    path = tmp_path / "t.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns)]).writeto(path)
    hdul = open_fits(str(path))
    try:
        got = table_columns(hdul, 1, [*numeric, "ABSENT"])
        assert got is not None and set(got) == set(numeric)
        for name, (_, repeat) in numeric.items():
            want = np.asarray(hdul[1].data[name]).reshape(rows, repeat)
            assert got[name].dtype.isnative and got[name].dtype == want.dtype.newbyteorder("=")
            np.testing.assert_array_equal(got[name], want)
        for other in ("TEXT", "FLAG", "SCALED"):
            assert table_columns(hdul, 1, ["E1", other]) is None
        assert table_columns(hdul, 0, ["E1"]) is None  # not a table
    finally:
        hdul.close()
    with fits.open(path) as plain:
        assert table_columns(plain, 1, ["E1"]) is None


def test_spec_coadd_from_bytes_equals_astropy(shared_data):
    """Every real SDSS spec file here: the fast COADD path gives astropy's arrays, bit for bit."""
    paths = sorted(shared_data.glob("sdss-spec-*.fits"))
    assert paths
    for path in paths:
        (fast,) = read_spectra(str(path))
        with fits.open(path) as hdul:
            (slow,) = sdss_spec.read(str(path), hdul)
        for field in ("wavelength", "flux", "ivar", "mask"):
            a, b = getattr(fast, field), getattr(slow, field)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (path.name, field)


def test_the_raw_walk_finds_astropys_hdus_and_spec_files_parse_three(shared_data, tmp_path):
    """open_fits's walk over the raw headers finds every HDU where astropy does (data offset,
    cards); with it, reading a real spec file parses 3 of its 10-32 headers, not all."""
    from bossnet_onnx.readers._fits import _card_text, close_fits, open_fits

    paths = sorted(shared_data.glob("*.fits"))
    for path in paths:
        with fits.open(path) as eager:
            want = [(hdu.fileinfo()["datLoc"], str(hdu.header.get("EXTNAME", ""))) for hdu in eager]
        hdul = open_fits(str(path))
        try:
            spans = hdul._bossnet_spans
            assert spans is not None, path.name
            assert [(s.data_at, _card_text(s.cards.get(b"EXTNAME")) or "") for s in spans] == want
        finally:
            close_fits(hdul)
    for path in sorted(shared_data.glob("sdss-spec-*.fits")):
        hdul = open_fits(str(path))
        try:
            assert sdss_spec.identify(str(path), hdul)
            (spec,) = sdss_spec.read(str(path), hdul)
            assert isinstance(spec, Spectrum)
            loaded = len(list(list.__iter__(hdul)))
            assert loaded == 3 < len(hdul), path.name
        finally:
            close_fits(hdul)


def test_column_names_with_quotes_and_slashes_decode_from_the_cards(tmp_path):
    """The walk's cards are read as astropy reads strings: '' is a quote, / inside quotes is
    text, not a comment."""
    from bossnet_onnx.readers._fits import close_fits, open_fits, table_columns

    names = ["A/B", "IT'S", "PLAIN"]
    columns = [fits.Column(n, "E", array=np.arange(5, dtype=np.float32) * (i + 1))
               for i, n in enumerate(names)]
    path = tmp_path / "q.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns)]).writeto(path)
    hdul = open_fits(str(path))
    try:
        got = table_columns(hdul, 1, [n.upper() for n in names])
        assert got is not None and set(got) == set(names)
        for n in names:
            np.testing.assert_array_equal(got[n].ravel(), hdul[1].data[n])
    finally:
        close_fits(hdul)


def test_column_names_from_the_cards_equal_astropys(shared_data):
    """The layout test's cheap column names (TTYPEn cards) are astropy's, for every table of
    every real FITS file here (an SDSS spec file holds 9-31 tables, one of 126 columns)."""
    from bossnet_onnx.readers._fits import column_names, open_fits

    tables = 0
    for path in sorted(shared_data.glob("*.fits*")):
        hdul = open_fits(str(path))
        for hdu in hdul[1:]:
            if isinstance(hdu, fits.BinTableHDU):
                assert column_names(hdu) == list(hdu.columns.names), path.name
                tables += 1
        hdul.close()
    assert tables >= 12


def test_spec_identifiers_fall_back_to_the_primary_header(tmp_path):
    flux, ivar = arrays(2)
    path = layouts.write_spec(tmp_path / "s.fits", WAVE, flux, ivar, plate=7, mjd=8, fiberid=9)
    with fits.open(path) as hdul:  # drop SPALL: only the primary header is left
        fits.HDUList([hdul[0].copy(), hdul[1].copy()]).writeto(tmp_path / "no-spall.fits")
    (spec,) = read_spectra(tmp_path / "no-spall.fits")
    assert dict(spec.identifiers) == {"plateid": 7, "mjd": 8, "fiberid": 9, "ra": 180.0,
                                      "dec": 0.0, "telescope": "apo25m",
                                      "frame": "heliocentric"}


def test_readers_take_an_open_hdulist_or_a_path(tmp_path):
    flux, ivar = arrays(3)
    path = layouts.write_spec(tmp_path / "s.fits", WAVE, flux, ivar, plate=1, mjd=2, fiberid=3)
    (by_path,) = sdss_spec.read(str(path))
    with fits.open(path) as hdul:
        assert sdss_spec.identify(str(path), hdul)
        assert not lamost_image.identify(str(path), hdul) and not mwm.identify(str(path), hdul)
        (given,) = sdss_spec.read(str(path), hdul)
    np.testing.assert_array_equal(by_path.flux, given.flux)


def test_identify_never_raises():
    class Broken:
        def __getitem__(self, item):
            raise RuntimeError("boom")

        def __iter__(self):
            raise RuntimeError("boom")

    for reader in READERS:
        assert reader.identify("x.fits", Broken()) is False
        assert reader.identify("x.fits", None) is False
        assert reader.identify(None, Broken()) is False
    assert generic_table.identify("x.csv", None) is True
    assert mwm.identify("/data/mwmVisit-0.6.0-42.fits", None) is True


# ------------------------------------------------------------------------- mwmStar/Visit
def test_mwm_star_apo_and_lco_rows(tmp_path):
    flux_a, ivar_a = arrays(2)
    flux_l, ivar_l = arrays(3)
    flags = bad_pixels(flux_a.size, 2)
    path = layouts.write_mwm(tmp_path / "mwmStar-0.6.0-5.fits",
                             [dict(flux=flux_a, ivar=ivar_a, pixel_flags=flags, min_mjd=59000,
                                   max_mjd=59100, n_visits=4)],
                             [dict(flux=flux_l, ivar=ivar_l)], kind="star", sdss_id=5,
                             catalogid=27021597)
    apo, lco = read_spectra(path)
    assert [(s.format, s.hdu, s.row) for s in (apo, lco)] == [("mwm", 1, 0), ("mwm", 2, 0)]
    np.testing.assert_array_equal(apo.flux, flux_a)
    np.testing.assert_array_equal(lco.ivar, ivar_l)
    np.testing.assert_array_equal(apo.mask, flags != 0)
    assert not lco.mask.any()
    np.testing.assert_array_equal(apo.wavelength, WAVE)  # 10**(CRVAL + CDELT*i), float64
    assert not apo.wavelength.flags.writeable  # shared by the rows of an HDU
    assert apo.wavelength[0] == pytest.approx(3566.97, abs=0.01)
    assert apo.wavelength[-1] == pytest.approx(10399.2, abs=0.1)
    ids = dict(apo.identifiers)
    assert np.isnan(ids.pop("v_rad")) and np.isnan(ids.pop("e_v_rad")) and np.isnan(ids.pop("snr"))
    assert ids == {"sdss_id": 5, "catalogid": 27021597, "telescope": "apo25m",
                   "spectrum_pk_id": 0, "min_mjd": 59000, "max_mjd": 59100, "n_visits": 4,
                   "ra": 180.0, "dec": 0.0, "frame": "rest"}
    assert lco.identifiers["telescope"] == "lco25m"


def test_mwm_visit_every_visit_and_empty_lco(tmp_path):
    visits = [dict(zip(("flux", "ivar"), arrays(10 + k)), mjd=60000 + k, fieldid=101 + k)
              for k in range(3)]
    path = layouts.write_mwm(tmp_path / "mwmVisit-0.6.0-8.fits", visits, [], kind="visit",
                             sdss_id=8, catalogid=88)
    spectra = read_spectra(path)
    assert [(s.hdu, s.row, s.identifiers["mjd"], s.identifiers["fieldid"]) for s in spectra] == \
        [(1, 0, 60000, 101), (1, 1, 60001, 102), (1, 2, 60002, 103)]
    assert {(s.identifiers["sdss_id"], s.identifiers["catalogid"]) for s in spectra} == {(8, 88)}
    for spec, visit in zip(spectra, visits):
        np.testing.assert_array_equal(spec.flux, visit["flux"])
        np.testing.assert_array_equal(spec.ivar, visit["ivar"])
        assert spec.format == "mwm" and spec.source == str(path)
    assert len({s.identity for s in spectra}) == 3
    with fits.open(path) as hdul:  # the LCO HDU is there, with no rows: nothing read from it
        assert hdul[2].name == "BOSS/LCO" and hdul[2].header["NAXIS2"] == 0


def test_mwm_identified_by_hdu_names_whatever_the_file_name(tmp_path):
    flux, ivar = arrays(4)
    path = layouts.write_mwm(tmp_path / "renamed.fits", [], [dict(flux=flux, ivar=ivar)])
    (spec,) = read_spectra(path)
    assert (spec.format, spec.hdu, spec.row) == ("mwm", 2, 0)


def test_mwm_one_broken_visit_does_not_lose_the_others(tmp_path):
    good = dict(zip(("flux", "ivar"), arrays(20)), mjd=60001)
    nan = dict(flux=np.full(layouts.BOSS_NPIX, np.nan), ivar=np.zeros(layouts.BOSS_NPIX),
               mjd=60002)
    empty = dict(flux=np.zeros(layouts.BOSS_NPIX), ivar=np.zeros(layouts.BOSS_NPIX), mjd=60003)
    path = layouts.write_mwm(tmp_path / "mwmVisit-0.6.0-9.fits", [good, nan, empty, good],
                             kind="visit")
    first, second, third, fourth = read_spectra(path)
    assert isinstance(first, Spectrum) and isinstance(fourth, Spectrum)
    assert isinstance(second, ReadFailure) and isinstance(third, ReadFailure)
    assert re.fullmatch(r".*/mwmVisit-0\.6\.0-9\.fits\[HDU 1, row 1\]: no finite flux pixels "
                        r"\(all NaN/inf\); nothing to predict from", second.error)
    assert re.fullmatch(r".*/mwmVisit-0\.6\.0-9\.fits\[HDU 1, row 2\]: flux is all zero \(an "
                        r"empty visit\); nothing to predict from", third.error)
    assert (second.hdu, second.row, second.identifiers["mjd"]) == (1, 1, 60002)
    assert (fourth.row, fourth.identifiers["mjd"]) == (3, 60001)


def test_apogee_rows_are_skipped_with_a_note(tmp_path, caplog):
    flux, ivar = arrays(30)
    path = layouts.write_mwm(tmp_path / "mwmStar-0.6.0-77.fits", [dict(flux=flux, ivar=ivar)],
                             kind="star", n_apogee=(2, 1))
    with caplog.at_level(logging.INFO, logger="bossnet_onnx.readers"):
        spectra = read_spectra(path)
    assert [(s.hdu, s.row) for s in spectra] == [(1, 0)]
    assert "mwmStar-0.6.0-77.fits[HDU 3]: 2 APOGEE spectra skipped" in caplog.text
    assert "mwmStar-0.6.0-77.fits[HDU 4]: 1 APOGEE spectra skipped" in caplog.text


@pytest.mark.parametrize("layout", ["spec", "mwm", "generic"])
def test_gzipped_files_read_as_the_plain_ones(tmp_path, layout):
    flux, ivar = arrays(50)
    (tmp_path / "gz").mkdir()
    write = {
        "spec": lambda p: layouts.write_spec(p, WAVE, flux, ivar, plate=3, mjd=4, fiberid=5),
        "mwm": lambda p: layouts.write_mwm(p, [dict(flux=flux, ivar=ivar)], kind="star"),
        "generic": lambda p: layouts.write_generic_table(p, WAVE, flux, ivar),
    }[layout]
    stem = {"spec": "spec-0003-00004-0005", "mwm": "mwmStar-0.6.0-1", "generic": "table"}[layout]
    plain = write(tmp_path / f"{stem}.fits")
    packed = write(tmp_path / "gz" / f"{stem}.fits.gz")
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    (a,) = read_spectra(plain)
    (b,) = read_spectra(packed)
    assert (a.format, a.hdu, a.row) == (b.format, b.hdu, b.row)
    assert b.source == str(packed)
    for name in ("wavelength", "flux", "ivar"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(b.flux, flux)
    assert np.max(np.abs(b.wavelength / WAVE - 1)) < 1e-6


# ------------------------------------------------------------------------------- LAMOST
@pytest.mark.parametrize(("dr1_style", "name", "gzip"), [(False, "dr7.fits", None),
                                                   (True, "dr1.fits", None),
                                                   (False, "dr6.fits.gz", None),
                                                   (True, "dr1-gz.fits", True)])
def test_lamost_image_round_trip(tmp_path, dr1_style, name, gzip):
    flux, ivar = arrays(4, LAMOST_WAVE.size)
    mask = bad_pixels(flux.size, 4)
    path = layouts.write_lamost_image(tmp_path / name, LAMOST_WAVE, flux, ivar,
                                      dr1_style=dr1_style, gzip=gzip, obsid=4242,
                                      subclass="K3", and_mask=mask)
    if gzip or name.endswith(".gz"):
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    (spec,) = read_spectra(path)
    assert (spec.format, spec.hdu, spec.row) == ("lamost-image", 0, -1)
    np.testing.assert_array_equal(spec.flux, flux)
    np.testing.assert_array_equal(spec.ivar, ivar)
    np.testing.assert_array_equal(spec.mask, mask != 0)
    if dr1_style:  # no wavelength row: 10**(CRVAL1 + CD1_1*i) from the header
        np.testing.assert_allclose(spec.wavelength, LAMOST_WAVE, rtol=1e-12)
        assert "obsid" not in spec.identifiers
    else:  # the float32 wavelength row, as stored
        np.testing.assert_array_equal(spec.wavelength,
                                      LAMOST_WAVE.astype(np.float32).astype(np.float64))
        assert spec.identifiers["obsid"] == 4242
    assert (spec.identifiers["class"], spec.identifiers["subclass"]) == ("STAR", "K3")


def test_lamost_table_round_trip(tmp_path):
    wave = LAMOST_WAVE[:3908]
    flux, ivar = arrays(5, wave.size)
    mask = bad_pixels(flux.size, 5)
    path = layouts.write_lamost_table(tmp_path / "lamost-dr9.fits.gz", wave, flux, ivar,
                                      obsid=7, subclass="G7", and_mask=mask)
    (spec,) = read_spectra(path)
    assert (spec.format, spec.hdu, spec.row) == ("lamost-table", 1, -1)
    np.testing.assert_array_equal(spec.wavelength, wave.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(spec.flux, flux)
    np.testing.assert_array_equal(spec.ivar, ivar)
    np.testing.assert_array_equal(spec.mask, mask != 0)
    assert (spec.identifiers["obsid"], spec.identifiers["subclass"]) == (7, "G7")


# ------------------------------------------------------------------------ generic tables
@pytest.mark.parametrize("suffix", [".fits", ".csv", ".ecsv"])
@pytest.mark.parametrize("use_error", [False, True])
def test_generic_tables(tmp_path, suffix, use_error):
    wave = np.linspace(3600, 9500, 2000)
    flux, ivar = (a.astype(np.float64) for a in arrays(6, 2000))
    ivar[::100] = 0.0  # no error known: an infinite error, read back as ivar 0
    mask = np.zeros(2000, bool)
    mask[5:9] = True
    path = layouts.write_generic_table(tmp_path / f"t{suffix}", wave, flux, ivar,
                                       use_error=use_error, mask=mask)
    (spec,) = read_spectra(path)
    assert (spec.format, spec.hdu, spec.row) == ("generic-table", 0 if suffix != ".fits" else 1,
                                                 -1)
    np.testing.assert_array_equal(spec.wavelength, wave)
    np.testing.assert_array_equal(spec.flux, flux)
    np.testing.assert_array_equal(spec.mask, mask)
    if use_error:
        np.testing.assert_allclose(spec.ivar, ivar, rtol=1e-14)
    else:
        np.testing.assert_array_equal(spec.ivar, ivar)


def test_generic_fits_keeps_float32_as_stored(tmp_path):
    flux, ivar = arrays(7, 500)
    path = layouts.write_generic_table(tmp_path / "f32.fits", np.linspace(4000, 8000, 500),
                                       flux, ivar)
    (spec,) = read_spectra(path)
    assert spec.flux.dtype == np.float32 and spec.ivar.dtype == np.float32
    np.testing.assert_array_equal(spec.flux, flux)


@pytest.mark.parametrize("header", ["loglam,FLUX,Err", "LogLam,flux,sigma", "loglam,Flux,flux_err"])
def test_generic_column_names_are_case_insensitive(tmp_path, header):
    path = tmp_path / "loglam.csv"
    path.write_text(f"{header}\n3.6,1.0,0.5\n3.7,2.0,0.25\n3.8,3.0,0\n")
    (spec,) = read_spectra(path)
    np.testing.assert_allclose(spec.wavelength, 10 ** np.array([3.6, 3.7, 3.8]), rtol=1e-15)
    np.testing.assert_array_equal(spec.ivar, [4.0, 16.0, 0.0])


@pytest.mark.parametrize("names", [("wave", "flux", "inverse_variance"),
                                   ("lambda", "flux", "ivar"), ("WAVELENGTH", "FLUX", "IVAR")])
def test_generic_ivar_aliases(tmp_path, names):
    path = tmp_path / "t.csv"
    path.write_text(",".join(names) + "\n4000,1,2\n4001,2,3\n")
    (spec,) = read_spectra(path)
    np.testing.assert_array_equal(spec.ivar, [2.0, 3.0])


def test_generic_fits_array_rows_give_one_spectrum_each(tmp_path):
    wave = np.linspace(4000, 8000, 300)
    rows = [arrays(40 + k, 300) for k in range(3)]
    cols = [fits.Column("WAVE", "300D", array=np.stack([wave] * 3)),
            fits.Column("flux", "300E", array=np.stack([r[0] for r in rows])),
            fits.Column("ERR", "300E", array=np.stack([1 / np.sqrt(r[1]) for r in rows]))]
    path = tmp_path / "multi.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    spectra = read_spectra(path)
    assert [(s.format, s.hdu, s.row) for s in spectra] == \
        [("generic-table", 1, 0), ("generic-table", 1, 1), ("generic-table", 1, 2)]
    np.testing.assert_array_equal(spectra[2].flux, rows[2][0])
    np.testing.assert_allclose(spectra[2].ivar, rows[2][1], rtol=1e-6)


# ----------------------------------------------------------------------- real survey files
def manifest(shared_data):
    with open(shared_data / "MANIFEST.tsv") as fh:
        return {row["local_name"]: row for row in csv.DictReader(fh, delimiter="\t")}


def expected_format(name: str) -> str:
    if name.startswith("sdss-spec"):
        return "sdss-spec"
    return "lamost-table" if "-dr9-" in name else "lamost-image"


def test_every_real_file_reads_as_its_manifest_says(shared_data):
    rows = manifest(shared_data)
    assert len(rows) == 19
    for name, row in rows.items():
        (spec,) = read_spectra(shared_data / name)
        assert isinstance(spec, Spectrum), name
        assert spec.format == expected_format(name), name
        assert spec.source == str(shared_data / name) and spec.row == -1, name
        assert spec.flux.size == spec.ivar.size == spec.wavelength.size == int(row["npix"]), name
        assert spec.wavelength[0] == pytest.approx(float(row["wave_min"]), abs=0.1), name
        assert spec.wavelength[-1] == pytest.approx(float(row["wave_max"]), abs=0.1), name
        assert np.all(np.diff(spec.wavelength) > 0), name
        assert spec.identifiers["class"] == row["class"], name
        assert spec.identifiers.get("subclass", "") == row["subclass"], name
        assert spec.wavelength.dtype == np.float64 and spec.flux.dtype.isnative, name
        assert spec.mask is not None and spec.mask.size == spec.flux.size, name
        # ivar==0 fraction as the manifest notes it
        zero = float(re.search(r"ivar==0 frac=([0-9.]+)", row["notes"]).group(1))
        assert np.mean(spec.ivar == 0) == pytest.approx(zero, abs=0.0006), name


def test_real_sdss_identifiers_match_file_names(shared_data):
    paths = sorted(shared_data.glob("sdss-spec-*.fits"))
    assert len(paths) == 11
    for path in paths:
        plate, mjd, fiber = (int(x) for x in path.stem.split("-")[2:5])
        (spec,) = read_spectra(path)
        ids = spec.identifiers
        assert (ids["plateid"], ids["mjd"], ids["fiberid"]) == (plate, mjd, fiber), path.name
        assert ids["telescope"] == "apo25m" and spec.hdu == 1  # SDSS 2.5 m at APO
        assert ids["frame"] == "heliocentric"  # HELIO_RV applied by idlspec2d before SDSS-V
        assert "fieldid" not in ids  # BOSS SPALL FIELD is an imaging field, not an SDSS-V one
        assert np.isfinite(ids["snr"]) and ids["specobjid"].strip() == ids["specobjid"]


def test_real_sdss_redshift_and_masks(shared_data):
    (galaxy,) = read_spectra(shared_data / "sdss-spec-0266-51602-0001.fits")
    assert galaxy.identifiers["z"] == pytest.approx(0.0213, abs=5e-5)
    (qso,) = read_spectra(shared_data / "sdss-spec-0332-52367-0639.fits")
    assert qso.identifiers["z"] == pytest.approx(0.1006, abs=5e-5)
    assert int(qso.mask.sum()) == 1737  # and_mask != 0 pixels
    (star,) = read_spectra(shared_data / "sdss-spec-0618-52049-0372.fits")
    assert int(star.mask.sum()) == 3


def test_real_sdss_wavelength_is_float32_power(shared_data):
    for name in ("sdss-spec-0618-52049-0372.fits", "sdss-spec-7454-56751-0770.fits"):
        path = shared_data / name
        (spec,) = read_spectra(path)
        with fits.open(path) as hdul:
            loglam = np.asarray(hdul[1].data["loglam"], dtype=np.float32)
        expected = (np.float32(10) ** loglam).astype(np.float64)
        np.testing.assert_array_equal(spec.wavelength, expected)
        # and it is not the float64 power: the difference is real, up to ~1e-3 A
        assert 0 < np.max(np.abs(spec.wavelength - 10 ** loglam.astype(np.float64))) < 2e-3


def test_real_lamost_identifiers_and_dr1_wavelength(shared_data):
    (dr3,) = read_spectra(shared_data / "lamost-dr3-spec-55939-GAC_061N46_V3_sp07-078.fits")
    assert (dr3.identifiers["obsid"], dr3.identifiers["fiberid"]) == (-28762, 78)
    assert dr3.identifiers["designation"] == "LAMOST J041615.64+451723.3"
    assert (dr3.identifiers["telescope"], dr3.identifiers["frame"]) == ("lamost", "heliocentric")
    (dr2,) = read_spectra(shared_data / "lamost-dr2-spec-56309-GAC088N20V1_sp08-126.fits")
    assert dr2.identifiers["fiberid"] == 126  # a string card in the file
    (dr1,) = read_spectra(shared_data / "lamost-dr1-spec-55862-B6212_sp06-093.fits")
    # DR1: row 2 is the subcontinuum; wavelength is 10**(CRVAL1 + CD1_1 * i)
    np.testing.assert_allclose(dr1.wavelength, 10 ** (3.5682 + 1e-4 * np.arange(3904)),
                               rtol=1e-12)
    assert (dr1.identifiers["mjd"], dr1.identifiers["fiberid"]) == (55863, 93)
    assert "obsid" not in dr1.identifiers
    (dr6,) = read_spectra(shared_data / "lamost-dr6-spec-57287-KP193637N444141V03_sp10-161.fits.gz")
    assert dr6.identifiers["obsid"] == 359910161
    for name, obsid in (("lamost-dr9-spec-55859-F5902_sp01-001.fits.gz", 101001),
                        ("lamost-dr9-spec-55859-F5902_sp01-012.fits.gz", 101012)):
        (dr9,) = read_spectra(shared_data / name)
        assert (dr9.hdu, dr9.identifiers["obsid"]) == (1, obsid)


def test_real_lamost_image_wavelength_row_is_used_as_stored(shared_data):
    path = shared_data / "lamost-dr7-spec-58397-EG014118N254444M01_sp03-031.fits"
    (spec,) = read_spectra(path)
    with fits.open(path) as hdul:
        row = np.asarray(hdul[0].data[2], dtype=np.float64)
        flux = np.asarray(hdul[0].data[0], dtype=np.float32)
    np.testing.assert_array_equal(spec.wavelength, row)
    np.testing.assert_array_equal(spec.flux, flux)


def test_real_lamost_obsid_and_fiber_match_manifest_and_file_name(shared_data):
    rows = {n: r for n, r in manifest(shared_data).items() if n.startswith("lamost")}
    assert len(rows) == 8
    for name, row in rows.items():
        (spec,) = read_spectra(shared_data / name)
        obsid = re.search(r"OBSID=([-0-9]*)", row["notes"]).group(1)
        dr = int(re.match(r"lamost-dr(\d+)-", name).group(1))
        if dr >= 3:
            assert spec.identifiers["obsid"] == int(obsid), name
        else:
            assert obsid == "" and "obsid" not in spec.identifiers, name
        fiber = int(re.search(r"_sp\d+-(\d+)\.fits", name).group(1))
        assert spec.identifiers["fiberid"] == fiber, name
