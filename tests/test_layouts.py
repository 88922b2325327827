"""The layout writers produce the real file layouts: same HDU names, column names, formats and
header keywords as the real SDSS/LAMOST files in ../shared/data, the DR19 Astra datamodel for
mwmStar/mwmVisit, and real data written through them reads back like the real file."""
from __future__ import annotations

import gzip

import layouts
import numpy as np
import pytest
from astropy.io import fits

from bossnet_onnx.readers import read_spectra

SPEC_BOSS = "sdss-spec-7454-56751-0770.fits"  # HDU2 SPALL
SPEC_LEGACY = "sdss-spec-0618-52049-0372.fits"  # HDU2 SPECOBJ
LAMOST_DR7 = "lamost-dr7-spec-58397-EG014118N254444M01_sp03-031.fits"
LAMOST_DR1 = "lamost-dr1-spec-55862-B6212_sp06-093.fits"
LAMOST_DR9 = "lamost-dr9-spec-55859-F5902_sp01-001.fits.gz"


def formats(hdu) -> dict[str, str]:
    return {c.name: c.format for c in hdu.columns}


def test_boss_native_wavelength():
    wave = layouts.boss_native_wavelength()
    assert wave.shape == (4648,) and wave.dtype == np.float64
    assert wave[0] == pytest.approx(10 ** 3.5523) and wave[0] == pytest.approx(3566.97, abs=0.01)
    assert wave[-1] == pytest.approx(10 ** (3.5523 + 4647e-4))
    np.testing.assert_allclose(np.diff(np.log10(wave)), 1e-4, rtol=1e-9)
    assert layouts.boss_native_wavelength(10, 3.6, 2e-4)[1] == pytest.approx(10 ** 3.6002)


# ---------------------------------------------------------------------------- SDSS spec
@pytest.mark.parametrize(("real_name", "legacy"), [(SPEC_BOSS, False), (SPEC_LEGACY, True)])
def test_spec_layout_matches_the_real_file(shared_data, tmp_path, real_name, legacy):
    with fits.open(shared_data / real_name) as real:
        coadd = real[1].data
        wave = 10.0 ** coadd["loglam"].astype(np.float64)
        path = layouts.write_spec(tmp_path / "spec.fits", wave, coadd["flux"], coadd["ivar"],
                                  plate=real[0].header["PLATEID"], mjd=real[0].header["MJD"],
                                  fiberid=real[0].header["FIBERID"], and_mask=coadd["and_mask"],
                                  cls="STAR", legacy=legacy)
        with fits.open(path) as ours:
            assert [h.name for h in ours] == [h.name for h in real[:3]]
            assert list(formats(ours[1]).items()) == list(formats(real[1]).items())
            real_ids = formats(real[2])
            assert {k: real_ids[k] for k in formats(ours[2])} == formats(ours[2])
            assert {"PLATE", "MJD", "FIBERID", "CLASS", "SUBCLASS", "Z", "PLUG_RA",
                    "PLUG_DEC"} <= set(formats(ours[2]))
            for key in ("TELESCOP", "PLATEID", "MJD", "FIBERID", "COEFF0", "COEFF1", "BUNIT",
                        "PLUG_RA", "PLUG_DEC", "HELIO_RV"):
                assert type(ours[0].header[key]) is type(real[0].header[key]), key
            assert ours[0].header["COEFF0"] == ours[1].data["loglam"][0]
    (mine,) = read_spectra(path)
    (theirs,) = read_spectra(shared_data / real_name)
    for name in ("flux", "ivar", "mask"):
        np.testing.assert_array_equal(getattr(mine, name), getattr(theirs, name))
    np.testing.assert_allclose(mine.wavelength, theirs.wavelength, rtol=2e-7)
    keys = ("plateid", "mjd", "fiberid", "class", "telescope", "frame")
    assert {k: mine.identifiers[k] for k in keys} == {k: theirs.identifiers[k] for k in keys}


# ------------------------------------------------------------------------------ LAMOST
LAMOST_CARDS = ("TELESCOP", "MJD", "PLANID", "DESIG", "FIBERID", "VACUUM", "WFITTYPE", "COEFF0",
                "COEFF1", "CRVAL1", "CD1_1", "CRPIX1", "CTYPE1", "DC-FLAG", "CLASS", "SUBCLASS",
                "Z")


@pytest.mark.parametrize(("real_name", "dr1"), [(LAMOST_DR7, False), (LAMOST_DR1, True)])
def test_lamost_image_layout_matches_the_real_file(shared_data, tmp_path, real_name, dr1):
    with fits.open(shared_data / real_name) as real:
        data = real[0].data.astype(np.float64)
        header = real[0].header
        wave = data[2] if not dr1 else 10 ** (header["CRVAL1"] + header["CD1_1"] *
                                              np.arange(data.shape[1]))
        path = layouts.write_lamost_image(tmp_path / "l.fits", wave, data[0], data[1],
                                          dr1_style=dr1, and_mask=data[3],
                                          obsid=header.get("OBSID"), subclass=header["SUBCLASS"])
        with fits.open(path) as ours:
            assert [h.name for h in ours] == [h.name for h in real]  # 'Flux' / 'PRIMARY'
            assert ours[0].data.shape == real[0].data.shape
            assert ours[0].header["BITPIX"] == real[0].header["BITPIX"] == -32
            for key in LAMOST_CARDS + (() if dr1 else ("OBSID", "DATA_V")):
                assert key in ours[0].header and key in real[0].header, key
            assert ("OBSID" in ours[0].header) == ("OBSID" in real[0].header)
            if dr1:  # DR1's third row is the subcontinuum, not a wavelength
                np.testing.assert_array_equal(ours[0].data[2], 1.0)
    (mine,) = read_spectra(path)
    (theirs,) = read_spectra(shared_data / real_name)
    for name in ("flux", "ivar", "mask"):
        np.testing.assert_array_equal(getattr(mine, name), getattr(theirs, name))
    if dr1:
        np.testing.assert_allclose(mine.wavelength, theirs.wavelength, rtol=1e-12)
    else:
        np.testing.assert_array_equal(mine.wavelength, theirs.wavelength)


def test_lamost_table_layout_matches_the_real_file(shared_data, tmp_path):
    with fits.open(shared_data / LAMOST_DR9) as real:
        row = real[1].data[0]
        path = layouts.write_lamost_table(tmp_path / "t.fits.gz", row["WAVELENGTH"],
                                          row["FLUX"], row["IVAR"], and_mask=row["ANDMASK"],
                                          obsid=real[0].header["OBSID"])
        with fits.open(path) as ours:
            assert [h.name for h in ours] == [h.name for h in real] == ["PRIMARY", "COADD"]
            assert list(formats(ours[1]).items()) == list(formats(real[1]).items())
            assert len(ours[1].data) == 1 and ours[0].header["NAXIS"] == 0
            for key in (*LAMOST_CARDS, "OBSID", "DATA_V"):
                assert key in ours[0].header and key in real[0].header, key
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    (mine,) = read_spectra(path)
    (theirs,) = read_spectra(shared_data / LAMOST_DR9)
    for name in ("wavelength", "flux", "ivar", "mask"):
        np.testing.assert_array_equal(getattr(mine, name), getattr(theirs, name))
    assert mine.identifiers["obsid"] == theirs.identifiers["obsid"] == 101001


# ------------------------------------------------------------------------ mwmStar/Visit
def rows(n: int, seed: int = 0, **extra):
    rng = np.random.default_rng(seed)
    return [dict(flux=rng.normal(10, 1, 4648), ivar=np.ones(4648), **extra) for _ in range(n)]


@pytest.mark.parametrize("kind", ["star", "visit"])
def test_mwm_layout_follows_the_dr19_datamodel(tmp_path, kind):
    path = layouts.write_mwm(tmp_path / f"mwm{kind.title()}-0.6.0-42.fits", rows(2), [],
                             kind=kind, sdss_id=42, catalogid=27021597, n_apogee=(1, 0))
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "BOSS/APO", "BOSS/LCO", "APOGEE/APO",
                                          "APOGEE/LCO"]
        assert (hdul[0].header["SDSS_ID"], hdul[0].header["CAT_ID"]) == (42, 27021597)
        assert hdul[0].header["V_ASTRA"] == "0.6.0"
        for index, (instrument, observatory, crval, cdelt, npix) in enumerate(
                [("BOSS", "APO", 3.5523, 1e-4, 4648), ("BOSS", "LCO", 3.5523, 1e-4, 4648),
                 ("APOGEE", "APO", 4.179, 6e-6, 8575), ("APOGEE", "LCO", 4.179, 6e-6, 8575)],
                start=1):
            h = hdul[index].header
            assert (h["INSTRMNT"], h["OBSRVTRY"]) == (instrument, observatory)
            assert (h["CRVAL"], h["CDELT"], h["NPIXELS"]) == (crval, cdelt, npix)
            assert (h["CTYPE"], h["CUNIT"], h["CRPIX"], h["DC-FLAG"]) == \
                ("LOG-LINEAR", "Angstrom (Vacuum)", 1, 1)
        apo, lco, apogee = hdul[1], hdul[2], hdul[3]
        assert len(apo.data) == 2 and len(lco.data) == 0 and len(apogee.data) == 1
        cols = formats(apo)
        assert {cols[c] for c in ("flux", "ivar", "pixel_flags", "wresl", "continuum")} == \
            {"4648E"}
        assert {formats(lco)[c] for c in ("flux", "ivar", "pixel_flags")} == {"0E"}
        assert formats(apogee)["flux"] == "8575E"
        assert (cols["sdss_id"], cols["spectrum_pk_id"], cols["healpix"], cols["snr"]) == \
            ("K", "K", "J", "E")
        # a visit row's filetype names where DR19 took it from (the DRP specFull file)
        assert list(apo.data["filetype"]) == ["specFull" if kind == "visit" else "mwmStar"] * 2
        assert list(apo.data["telescope"]) == ["apo25m"] * 2
        if kind == "visit":
            assert (cols["mjd"], cols["fieldid"], cols["catalogid"], cols["in_stack"]) == \
                ("J", "J", "K", "L")
            assert (cols["drp_spectrum_pk_id"], cols["plateid"], cols["xcsao_v_rad"],
                    cols["xcsao_e_v_rad"]) == ("K", "J", "E", "E")
            assert "v_rad" not in cols  # a visit's RV is xcsao_v_rad in DR19
            assert "wavelength" not in cols
        else:
            assert (cols["min_mjd"], cols["max_mjd"], cols["n_visits"]) == ("J", "J", "J")
            assert (cols["v_rad"], cols["e_v_rad"]) == ("E", "E")  # the XCSAO mean
            assert "mjd" not in cols and "catalogid" not in cols
            np.testing.assert_allclose(apo.data["wavelength"][1],
                                       layouts.boss_native_wavelength(), rtol=1e-7)


def test_mwm_extra_row_keys_become_columns(tmp_path):
    path = layouts.write_mwm(tmp_path / "mwmStar-x.fits", rows(1, catalogid=5, xcsao_v_rad=-3.5))
    with fits.open(path) as hdul:
        assert (formats(hdul[1])["catalogid"], formats(hdul[1])["xcsao_v_rad"]) == ("K", "E")
        assert hdul[1].data["xcsao_v_rad"][0] == np.float32(-3.5)


def test_mwm_pixel_flags_round_trip_as_float32_bits(tmp_path):
    flags = np.zeros(4648)
    flags[[3, 77, 4000]] = [1, 2 ** 20, 2 ** 3 + 2 ** 1]
    (row,) = rows(1, pixel_flags=flags)
    (spec,) = read_spectra(layouts.write_mwm(tmp_path / "mwmStar-f.fits", [row]))
    assert np.flatnonzero(spec.mask).tolist() == [3, 77, 4000]
    np.testing.assert_array_equal(spec.flux, row["flux"].astype(np.float32))


def test_mwm_kind_is_checked(tmp_path):
    with pytest.raises(ValueError, match="kind must be 'star' or 'visit', got 'coadd'"):
        layouts.write_mwm(tmp_path / "x.fits", kind="coadd")


# ------------------------------------------------------------------- files and options
def test_gzip_by_flag_or_suffix_and_reproducible(tmp_path):
    wave = 10 ** (3.5682 + 1e-4 * np.arange(500))
    flux, ivar = np.ones(500), np.ones(500)
    a = layouts.write_lamost_image(tmp_path / "a.fits", wave, flux, ivar, gzip=True)
    b = layouts.write_lamost_image(tmp_path / "b.fits.gz", wave, flux, ivar)
    c = layouts.write_lamost_image(tmp_path / "c.fits.gz", wave, flux, ivar, gzip=False)
    assert a.read_bytes() == b.read_bytes()  # gzip header without a time stamp
    assert gzip.decompress(a.read_bytes())[:9] == b"SIMPLE  ="
    assert c.read_bytes()[:9] == b"SIMPLE  ="


@pytest.mark.parametrize("writer", ["spec", "mwm", "image", "image-gz", "table", "generic"])
def test_existing_files_are_not_overwritten_unless_asked(tmp_path, writer):
    wave = layouts.boss_native_wavelength()
    flux = ivar = np.ones(wave.size)
    write = {
        "spec": lambda p, **kw: layouts.write_spec(p, wave, flux, ivar, plate=1, mjd=2,
                                                   fiberid=3, **kw),
        "mwm": lambda p, **kw: layouts.write_mwm(p, rows(1), **kw),
        "image": lambda p, **kw: layouts.write_lamost_image(p, wave, flux, ivar, **kw),
        "image-gz": lambda p, **kw: layouts.write_lamost_image(p, wave, flux, ivar, **kw),
        "table": lambda p, **kw: layouts.write_lamost_table(p, wave, flux, ivar, **kw),
        "generic": lambda p, **kw: layouts.write_generic_table(p, wave, flux, ivar, **kw),
    }[writer]
    path = tmp_path / ("f.fits.gz" if writer == "image-gz" else "f.fits")
    write(path)
    before = path.read_bytes()
    with pytest.raises(OSError):
        write(path)
    assert path.read_bytes() == before
    write(path, overwrite=True)
    assert len(read_spectra(path)) == 1
