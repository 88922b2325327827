"""Bad inputs at the reader level: every file-level problem raises one line naming the file;
every unusable spectrum is a ReadFailure naming file, HDU and row, the others still read."""
from __future__ import annotations

import gzip
import re
import warnings

import layouts
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from bossnet_onnx.errors import InputError, InputWarning, UnknownFormatError
from bossnet_onnx.readers import read_spectra, sdss_spec
from bossnet_onnx.readers.paths import expand_inputs
from bossnet_onnx.spectrum import ReadFailure, Spectrum

WAVE = layouts.boss_native_wavelength()
N = layouts.BOSS_NPIX
TRIED = (r"\(tried sdss-spec, mwm, apstar, gaia, lamost-table, lamost-image, image-1d, "
         r"generic-table\)")


def good(seed: int = 0, n: int = N):
    rng = np.random.default_rng(seed)
    return (20 + rng.standard_normal(n)).astype(np.float32), np.full(n, 2.0, np.float32)


def spec_file(path, wave=WAVE, flux=None, ivar=None):
    f, i = good()
    return layouts.write_spec(path, wave, f if flux is None else flux,
                              i if ivar is None else ivar, plate=1, mjd=2, fiberid=3)


def raises_naming(path, error, pattern):
    with pytest.raises(error, match=pattern) as info:
        read_spectra(path)
    text = str(info.value)
    assert re.match(re.escape(str(path)) + r"(\[HDU \d+(, row \d+)?\])?: ", text), text
    assert "\n" not in text
    return text


def only_failure(path) -> ReadFailure:
    (record,) = read_spectra(path)
    assert isinstance(record, ReadFailure), record
    assert record.source == str(path) and "\n" not in record.error
    return record


# ----------------------------------------------------------------------- unusable files
def test_missing_file(tmp_path):
    raises_naming(tmp_path / "nope.fits", InputError, "file not found")


def test_directory(tmp_path):
    raises_naming(tmp_path, InputError, r"is a directory with no spectrum files \(\*\.fits")


def test_zero_length_file(tmp_path):
    (tmp_path / "empty.fits").write_bytes(b"")
    raises_naming(tmp_path / "empty.fits", InputError, r"file is empty \(0 bytes\)")


def test_not_fits(tmp_path):
    (tmp_path / "notes.fits").write_text("SIMPLE? no, just some text\n" * 50)
    raises_naming(tmp_path / "notes.fits", InputError, "not a FITS file")


def test_gzip_that_is_not_fits(tmp_path):
    (tmp_path / "t.fits.gz").write_bytes(gzip.compress(b"plain text, not FITS\n" * 40))
    raises_naming(tmp_path / "t.fits.gz", InputError, "gzip file whose content is not FITS")


@pytest.mark.parametrize("cut", [100, 3880, 5860, "half", "one block short", "10 bytes short"])
def test_truncated_fits(tmp_path, cut):
    whole = spec_file(tmp_path / "whole.fits").read_bytes()
    size = {"half": len(whole) // 2, "one block short": len(whole) - 2880,
            "10 bytes short": len(whole) - 10}.get(cut, cut)
    (tmp_path / "cut.fits").write_bytes(whole[:size])
    raises_naming(tmp_path / "cut.fits", InputError, r"FITS file is truncated or corrupted \(")


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.98])
def test_truncated_gzip(tmp_path, fraction):
    packed = spec_file(tmp_path / "whole.fits.gz").read_bytes()
    (tmp_path / "cut.fits.gz").write_bytes(packed[:int(len(packed) * fraction)])
    raises_naming(tmp_path / "cut.fits.gz", InputError,
                  r"FITS file is truncated or corrupted \(gzip stream")


def test_fits_with_only_images(tmp_path):
    path = tmp_path / "ccd.fits"
    fits.HDUList([fits.PrimaryHDU(np.zeros((64, 2048), np.float32))]).writeto(path)
    raises_naming(path, UnknownFormatError, "FITS file in no known spectrum layout " + TRIED)


def test_fits_table_without_spectrum_columns(tmp_path):
    path = tmp_path / "cols.fits"
    cols = [fits.Column("x", "E", array=np.ones(5)), fits.Column("flux", "E", array=np.ones(5))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    raises_naming(path, UnknownFormatError, "no known spectrum layout " + TRIED)


def test_mwm_named_file_without_boss_hdus(tmp_path):
    path = tmp_path / "mwmStar-0.6.0-1.fits"
    fits.HDUList([fits.PrimaryHDU()]).writeto(path)
    raises_naming(path, InputError, r"no BOSS HDU \(BOSS/APO or BOSS/LCO table\)")


def test_mwm_boss_table_without_ivar(tmp_path):
    flux, ivar = good()
    path = layouts.write_mwm(tmp_path / "mwmStar-0.6.0-2.fits", [dict(flux=flux, ivar=ivar)])
    with fits.open(path) as hdul:
        table = hdul[1]
        cols = [c for c in table.columns if c.name != "ivar"]
        new = fits.BinTableHDU.from_columns(cols, header=table.header)
        fits.HDUList([hdul[0].copy(), new, *[h.copy() for h in hdul[2:]]]).writeto(
            tmp_path / "mwmStar-0.6.0-3.fits")
    raises_naming(tmp_path / "mwmStar-0.6.0-3.fits", InputError,
                  r"\[HDU 1\]: BOSS table lacks column\(s\) ivar")


def test_lamost_dr1_image_without_wavelength_information(tmp_path):
    flux, ivar = good(1, 3904)
    path = layouts.write_lamost_image(tmp_path / "dr1.fits", 10 ** (3.5682 + 1e-4 *
                                      np.arange(3904)), flux, ivar, dr1_style=True)
    with fits.open(path, mode="update") as hdul:
        for key in ("CRVAL1", "CD1_1", "COEFF0", "COEFF1"):
            del hdul[0].header[key]
    raises_naming(path, InputError, r"\[HDU 0\]: no wavelength row and no CRVAL1/CD1_1")


def test_csv_without_ivar_or_error_is_read_with_one_warning(tmp_path):
    (tmp_path / "p.csv").write_text("wavelength,flux\n4000,1\n5000,2\n")
    with pytest.warns(InputWarning, match=r"p\.csv: no ivar or error column; sigma falls back"
                                          r" .* NO_VALID_IVAR") as caught:
        (spec,) = read_spectra(str(tmp_path / "p.csv"))
    assert len(caught) == 1
    assert spec.ivar.tolist() == [0.0, 0.0] and spec.flux.tolist() == [1.0, 2.0]


def test_csv_without_flux(tmp_path):
    (tmp_path / "p.csv").write_text("wavelength,ivar\n4000,1\n5000,2\n")
    raises_naming(tmp_path / "p.csv", InputError,
                  "needs wavelength .* and flux columns .*; found wavelength, ivar")


def test_csv_with_header_only(tmp_path):
    (tmp_path / "h.csv").write_text("wavelength,flux,ivar\n")
    raises_naming(tmp_path / "h.csv", InputError, r"h\.csv: table has no rows")


def test_unparsable_ecsv(tmp_path):
    (tmp_path / "g.ecsv").write_text("# %ECSV 1.0\n# ---\n# broken: [\nnot a table\n")
    raises_naming(tmp_path / "g.ecsv", InputError, "cannot parse as ECSV")


def test_directory_named_like_a_table(tmp_path):
    (tmp_path / "looks.csv").mkdir()
    raises_naming(tmp_path / "looks.csv", InputError, "is a directory")


# --------------------------------------------------------------- unusable single spectra
def test_spec_wavelength_not_increasing(tmp_path):
    failure = only_failure(spec_file(tmp_path / "rev.fits", wave=WAVE[::-1].copy()))
    assert re.fullmatch(r".*/rev\.fits\[HDU 1\]: wavelength is not strictly increasing "
                        r"\(10399\.2\d+ then 10396\.8\d+ A at finite pixel 0\); expected a "
                        r"sorted wavelength array", failure.error), failure.error
    assert (failure.format, failure.hdu, failure.row) == ("sdss-spec", 1, -1)
    assert failure.identifiers["plateid"] == 1  # identifiers survive for the catalogue row


def test_spec_all_nan_flux(tmp_path):
    failure = only_failure(spec_file(tmp_path / "nan.fits", flux=np.full(N, np.nan)))
    assert failure.error.endswith("nan.fits[HDU 1]: no finite flux pixels (all NaN/inf); "
                                  "nothing to predict from")


def test_nan_wavelength_pixels_are_not_a_failure(tmp_path):
    wave = WAVE.copy()
    wave[100:110] = np.nan
    (spec,) = read_spectra(layouts.write_generic_table(tmp_path / "w.fits", wave, *good()))
    assert isinstance(spec, Spectrum) and np.isnan(spec.wavelength[100:110]).all()


def test_lamost_image_wavelength_row_not_increasing(tmp_path):
    wave = 10 ** (3.5682 + 1e-4 * np.arange(3909))
    wave[2000], wave[2001] = wave[2001], wave[2000]
    path = layouts.write_lamost_image(tmp_path / "swap.fits", wave, *good(2, 3909))
    failure = only_failure(path)
    assert re.search(r"swap\.fits\[HDU 0\]: wavelength is not strictly increasing .* at finite "
                     r"pixel 2000\)", failure.error), failure.error


def test_lamost_table_length_mismatch(tmp_path):
    path = tmp_path / "mismatch.fits"
    cols = [fits.Column("FLUX", "5E", array=np.ones((1, 5))),
            fits.Column("IVAR", "4E", array=np.ones((1, 4))),
            fits.Column("WAVELENGTH", "5E", array=[np.arange(4000.0, 4005.0)])]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    failure = only_failure(path)
    assert failure.error.endswith("mismatch.fits[HDU 1, row 0]: FLUX, IVAR and WAVELENGTH "
                                  "differ in length (5, 4, 5); expected one value per pixel in "
                                  "each")
    assert (failure.format, failure.hdu, failure.row) == ("lamost-table", 1, 0)


def test_generic_array_rows_one_broken(tmp_path):
    wave = np.linspace(4000, 8000, 300)
    flux = np.stack([good(k, 300)[0] for k in range(3)])
    flux[1] = np.nan
    cols = [fits.Column("wave", "300D", array=np.stack([wave] * 3)),
            fits.Column("flux", "300E", array=flux),
            fits.Column("sigma", "300E", array=np.ones((3, 300)))]
    path = tmp_path / "rows.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    first, second, third = read_spectra(path)
    assert isinstance(first, Spectrum) and isinstance(third, Spectrum)
    assert isinstance(second, ReadFailure) and (second.hdu, second.row) == (1, 1)
    assert second.error.endswith("rows.fits[HDU 1, row 1]: no finite flux pixels (all NaN/inf); "
                                 "nothing to predict from")


# --------------------------------------------------------------------------- mwm files
def test_mwm_visit_with_all_hdus_empty_is_one_failed_row_naming_the_file(tmp_path):
    path = layouts.write_mwm(tmp_path / "mwmVisit-0.6.0-1.fits", [], [], kind="visit",
                             n_apogee=(3, 0))
    with fits.open(path) as hdul:
        assert [len(h.data) for h in hdul[1:]] == [0, 0, 3, 0]
        assert hdul[1].columns["flux"].format == "0E"  # Astra's zero-width pixel columns
    # every input file gives a row: no BOSS spectra is said, not silently skipped
    (failure,) = read_spectra(path)
    assert isinstance(failure, ReadFailure) and failure.error.startswith(f"{path}: holds no ")


def test_mwm_visit_one_good_one_broken(tmp_path):
    flux, ivar = good(3)
    broken = dict(flux=np.full(N, np.nan), ivar=np.zeros(N), mjd=60010)
    path = layouts.write_mwm(tmp_path / "mwmVisit-0.6.0-2.fits", [],
                             [dict(flux=flux, ivar=ivar, mjd=60009), broken], kind="visit")
    ok, failure = read_spectra(path)
    assert isinstance(ok, Spectrum) and (ok.hdu, ok.row) == (2, 0)
    assert isinstance(failure, ReadFailure) and (failure.hdu, failure.row) == (2, 1)
    assert failure.error.endswith("mwmVisit-0.6.0-2.fits[HDU 2, row 1]: no finite flux pixels "
                                  "(all NaN/inf); nothing to predict from")
    assert failure.identifiers["mjd"] == 60010 and failure.identifiers["telescope"] == "lco25m"


def test_mwm_npixels_disagrees_with_the_arrays(tmp_path):
    flux, ivar = good()
    path = layouts.write_mwm(tmp_path / "mwmVisit-0.6.0-3.fits",
                             [dict(flux=flux, ivar=ivar)] * 2, kind="visit")
    with fits.open(path, mode="update") as hdul:
        hdul[1].header["NPIXELS"] = 4000
    failures = read_spectra(path)
    assert [(f.hdu, f.row) for f in failures] == [(1, 0), (1, 1)]
    for f in failures:
        assert isinstance(f, ReadFailure)
        assert f.error.endswith("mwmVisit-0.6.0-3.fits[HDU 1]: header NPIXELS=4000 but the "
                                "flux arrays have 4648 pixels")


def test_mwm_missing_crval(tmp_path):
    flux, ivar = good()
    path = layouts.write_mwm(tmp_path / "mwmStar-0.6.0-4.fits", [dict(flux=flux, ivar=ivar)])
    with fits.open(path, mode="update") as hdul:
        del hdul[1].header["CRVAL"]
    (failure,) = read_spectra(path)
    assert failure.error.endswith("[HDU 1]: header lacks CRVAL/CDELT for the log-lambda "
                                  "wavelength grid")


def test_mwm_flux_and_ivar_of_different_widths(tmp_path):
    flux, ivar = good()
    path = layouts.write_mwm(tmp_path / "mwmVisit-0.6.0-5.fits", [dict(flux=flux, ivar=ivar)],
                             kind="visit")
    with fits.open(path) as hdul:
        table = hdul[1]
        cols = [fits.Column("ivar", "4000E", array=table.data["ivar"][:, :4000])
                if c.name == "ivar" else c for c in table.columns]
        new = fits.BinTableHDU.from_columns(cols, header=table.header)
        fits.HDUList([hdul[0].copy(), new]).writeto(tmp_path / "mwmVisit-0.6.0-6.fits")
    failure = only_failure(tmp_path / "mwmVisit-0.6.0-6.fits")
    assert failure.error.endswith("[HDU 1, row 0]: flux, ivar and NPIXELS grid differ in length "
                                  "(4648, 4000, 4648); expected one value per pixel in each")


# ----------------------------------------------------------------------- list files
def test_list_naming_missing_files_gives_one_clear_error_each(tmp_path):
    real = spec_file(tmp_path / "real.fits")
    listing = tmp_path / "list.txt"
    listing.write_text("real.fits\nmissing-1.fits\n# comment\n\nsub/missing-2.fits.gz\n")
    paths = expand_inputs([f"@{listing}"])
    assert paths == [str(real), str(tmp_path / "missing-1.fits"),
                     str(tmp_path / "sub" / "missing-2.fits.gz")]
    assert isinstance(read_spectra(paths[0])[0], Spectrum)
    for path in paths[1:]:
        raises_naming(path, InputError, "file not found")


# ------------------------------------------- no other spectrum read in place of a missing one
def _spec_without(shared_data, tmp_path, column, *, rename_coadd=False):
    """A real SDSS spec file whose COADD lacks `column` (its exposure HDUs still hold it)."""
    with fits.open(shared_data / "sdss-spec-4961-55719-0378.fits") as real:
        coadd = real[1]
        kept = [c for c in coadd.columns if c.name.lower() != column]
        table = fits.BinTableHDU.from_columns(kept, header=coadd.header,
                                              name="OTHER" if rename_coadd else "COADD")
        path = tmp_path / f"spec-no-{column}.fits"
        fits.HDUList([real[0], table, *real[2:]]).writeto(path)
    return path


@pytest.mark.parametrize("column", ["flux", "ivar"])
def test_sdss_coadd_without_flux_or_ivar_is_an_error_not_an_exposure(shared_data, tmp_path,
                                                                     column):
    path = _spec_without(shared_data, tmp_path, column)
    with fits.open(path) as hdul:  # the single-camera exposures that used to stand in for it
        assert {"flux", "ivar", "loglam"} <= {n.lower() for n in hdul[4].columns.names}
    with pytest.raises(InputError, match=rf"spec-no-{column}\.fits\[HDU 1\]: COADD table lacks "
                                         rf"column\(s\) {column}; expected flux, loglam and "
                                         rf"ivar \(the single-camera exposure HDUs are not "
                                         rf"used in its place\)"):
        read_spectra(path)


def test_unusable_first_table_is_not_replaced_by_a_later_one(shared_data, tmp_path):
    # without the COADD name HDU 1 is still the coadd: no reader falls through to an exposure
    path = _spec_without(shared_data, tmp_path, "flux", rename_coadd=True)
    with pytest.raises(InputError, match=r"spec-no-flux\.fits\[HDU 1\]: COADD table lacks "
                                         r"column\(s\) flux"):
        read_spectra(path)
    # a generic table file: only its first table, never a later one with the same columns
    wave, flux = np.linspace(3800, 9000, 500), np.full(500, 10.0)
    first = fits.BinTableHDU(Table({"wave": wave, "counts": flux}), name="BROKEN")  # no flux
    second = fits.BinTableHDU(Table({"wave": wave, "flux": flux, "ivar": flux}), name="OTHER")
    fits.HDUList([fits.PrimaryHDU(), first, second]).writeto(tmp_path / "two.fits")
    with pytest.raises(UnknownFormatError, match=r"two\.fits: FITS file in no known "):
        read_spectra(tmp_path / "two.fits")


# ----------------------------------------------------- found by the fuzz corpus (test_fuzz_*)
def test_damaged_column_card_is_one_log_line_naming_the_file(tmp_path, caplog):
    wave = np.linspace(3700, 9000, 2000)
    table = fits.BinTableHDU(Table({"wavelength": wave, "flux": 20 + np.sin(wave / 100),
                                    "ivar": np.full(2000, 4.0)}))
    table.header["TDISP2"] = "Q99.x"
    path = tmp_path / "tdisp.fits"
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path, output_verify="ignore")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # astropy's bare VerifyWarning used to reach stderr
        (spec,) = read_spectra(path)
    assert isinstance(spec, Spectrum)
    assert [r.getMessage()[:80] for r in caplog.records] == [
        f"{path}: Invalid keyword for column 2: Column disp option (TDISPn) failed"[:80]]


def test_overflowing_loglam_is_no_bare_runtime_warning(tmp_path):
    f, i = (20 + np.random.default_rng(0).standard_normal(N)).astype(np.float32), \
        np.full(N, 2.0, np.float32)
    path = layouts.write_spec(tmp_path / "spec.fits", WAVE, f, i, plate=1, mjd=2, fiberid=3)
    with fits.open(path, mode="update") as hdul:
        hdul[1].data["loglam"][:10] = 1e30  # damaged: 10**1e30 overflows
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "RuntimeWarning: overflow encountered in power"
        records = read_spectra(path)
    assert len(records) == 1


# ------------------------------------------- the raw header walk against astropy's reading
def _rewrite_cards(path, hdu, change):
    """HDU `hdu`'s header cards replaced in place by change(cards) (80-byte cards, no END)."""
    with fits.open(path) as hdul:
        info = hdul[hdu].fileinfo()
        start, data_at = info["hdrLoc"], info["datLoc"]
    raw = bytearray(path.read_bytes())
    cards = [bytes(raw[k:k + 80]) for k in range(start, data_at, 80)]
    cards = [c for c in cards[:cards.index(b"END".ljust(80))] if not c.startswith(b"COMMENT")]
    new = [c.ljust(80) for c in change(cards)] + [b"END".ljust(80)]
    assert len(new) * 80 <= data_at - start
    raw[start:data_at] = b"".join(new).ljust(data_at - start)
    path.write_bytes(bytes(raw))


def _after_tfields(*extra):
    def change(cards):
        at = next(i for i, c in enumerate(cards) if c.startswith(b"TFIELDS")) + 1
        return cards[:at] + list(extra) + cards[at:]
    return change


def _continued(key, text):
    def change(cards):
        out = []
        for c in cards:
            out += [f"{key:<8}= '{text}&'".encode(), b"CONTINUE  ''"] \
                if c.startswith(key.encode().ljust(8)) else [c]
        return out
    return change


@pytest.mark.parametrize("change", [
    _after_tfields(b"ttype1  = 'ivar'", b"ttype3  = 'flux'"),   # lower case: astropy reads them
    _after_tfields(b"tscal1  = 2.0"),                            # a scale astropy applies
    _continued("TTYPE2", "loglam"),                              # a long-string column name
], ids=["lower-case TTYPE", "lower-case TSCAL", "CONTINUE"])
def test_cards_astropy_reads_otherwise_are_read_by_astropy(tmp_path, change):
    """The walk's fast decoding stands aside for headers it would read otherwise than astropy:
    the spectrum is astropy's, not flux and ivar swapped, unscaled or a KeyError."""
    path = spec_file(tmp_path / "spec-1-2-3.fits")
    _rewrite_cards(path, 1, change)
    (fast,) = read_spectra(path)
    with fits.open(path) as hdul:
        (slow,) = sdss_spec.read(str(path), hdul)
    assert isinstance(fast, Spectrum) and isinstance(slow, Spectrum)
    for field in ("wavelength", "flux", "ivar"):
        assert getattr(fast, field).tobytes() == getattr(slow, field).tobytes(), field


def test_a_continued_identifier_column_keeps_its_value(tmp_path):
    """SPALL's CATALOGID named in a long string: still read (and with it the SDSS-V field)."""
    flux, ivar = good()
    path = layouts.write_spec(tmp_path / "spec-1-2-3.fits", WAVE, flux, ivar, plate=1, mjd=2,
                              fiberid=3, catalogid=123456789, field=77)

    def change(cards):
        return [c for card in cards for c in (
            [card[:8] + b"= 'CATALOGID&'", b"CONTINUE  ''"]
            if card.startswith(b"TTYPE") and b"'CATALOGID'" in card else [card])]
    _rewrite_cards(path, 2, change)
    (spec,) = read_spectra(path)
    assert (spec.identifiers["catalogid"], spec.identifiers["fieldid"]) == (123456789, 77)


def test_damage_in_an_hdu_the_reader_reads_is_one_line_not_a_lost_row(tmp_path):
    """A header astropy cannot make an HDU of, in COADD or in an mwm file's second BOSS
    table: the file fails naming it (before, lazily parsed, the LCO rows went missing)."""
    spec = spec_file(tmp_path / "spec-1-2-3.fits")
    rows = [dict(zip(("flux", "ivar"), good(seed))) for seed in range(5)]
    mwm = layouts.write_mwm(tmp_path / "m.fits", apo=rows[:2], lco=rows[2:])
    for path, hdu in ((spec, 1), (mwm, 2)):
        _rewrite_cards(path, hdu, lambda cards: [b"XTENSION= BINTABLE", *cards[1:]])
        raises_naming(path, InputError, r"truncated or corrupted \(The HDU will be treated")


def test_a_zero_row_coadd_as_the_last_hdu_is_a_failed_row(tmp_path):
    cols = [fits.Column(n, "E", array=np.zeros(0, np.float32)) for n in ("flux", "loglam", "ivar")]
    path = tmp_path / "spec-1-2-3.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="COADD")]
                 ).writeto(path)
    (row,) = read_spectra(path)
    assert isinstance(row, ReadFailure) and "COADD table has no rows" in row.error


def test_a_random_groups_primary_hdu_is_walked_over(tmp_path):
    spec = spec_file(tmp_path / "s.fits")
    # more than one block of group data: NAXIS1 = 0 must not count as an axis of 0 pixels
    data = fits.GroupData(np.ones((2, 30, 40), np.float32), parnames=["a", "b"],
                          pardata=[np.ones(2), np.ones(2)], bitpix=-32)
    path = tmp_path / "spec-1-2-4.fits"
    with fits.open(spec) as hdul:
        fits.HDUList([fits.GroupsHDU(data), hdul[1], hdul[2]]).writeto(path)
    (row,) = read_spectra(path)
    assert isinstance(row, Spectrum)


@pytest.mark.parametrize("key", ["NAXIS", "TFIELDS"])
def test_a_count_fits_does_not_allow_is_refused_before_astropy_reads_it(tmp_path, key):
    path = spec_file(tmp_path / "spec-1-2-3.fits")
    _rewrite_cards(path, 1, lambda cards: [
        f"{key:<8}= {99999999:>20}".encode() if c.startswith(key.encode().ljust(8)) else c
        for c in cards])
    raises_naming(path, InputError, rf"header at byte \d+ declares {key} = 99999999; FITS "
                                    rf"allows 0 to 999")
