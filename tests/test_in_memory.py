"""In-memory inputs (in_memory.py) and the reusable model object (bossnet_onnx.load).

Every kind of in-memory object must give exactly the numbers of the same spectrum read from a
file: the file here is a real SDSS spec file from ../shared/data when present, else the bundled
example, and the in-memory objects are built from what the file reader returned.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import QTable, Table

import bossnet_onnx
from bossnet_onnx.errors import DemoModelWarning, InputError, InputWarning, ModelError
from bossnet_onnx.readers import read_spectra
from bossnet_onnx.spectrum import Spectrum

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "spec-9999-60000-0042.fits"
LABELS = ("teff", "logg", "fe_h", "bn_v_r", "e_teff", "e_logg", "e_fe_h", "e_bn_v_r",
          "result_flags", "quality_flags")

pytestmark = pytest.mark.filterwarnings("ignore::bossnet_onnx.errors.DemoModelWarning")


@pytest.fixture(scope="module")
def model():
    with bossnet_onnx.load() as m:
        yield m


@pytest.fixture(scope="module")
def star() -> Spectrum:
    (spec,) = read_spectra(EXAMPLE)
    return spec


def same(a, b) -> None:
    """Bit-identical, NaN equal to NaN (e_* are NaN without draws)."""
    np.testing.assert_array_equal(a, b)


def labels(table, row=0):
    return [float(table[name][row]) for name in LABELS]


# specutils 2 deprecates the name Spectrum1D; notebooks still use it, so it is still accepted
@pytest.mark.filterwarnings("ignore:The Spectrum1D class is deprecated")
def test_each_in_memory_kind_gives_the_numbers_of_the_file(model, star):
    """Point labels (draws=0) are bit-identical, and so are the draws (seeded by content)."""
    from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty
    from specutils import Spectrum as SUSpectrum
    from specutils import Spectrum1D

    from_file = model.predict(str(EXAMPLE), draws=0)
    wave, flux, ivar = star.wavelength, star.flux, star.ivar
    with np.errstate(divide="ignore"):
        err = np.where(ivar > 0, 1 / np.sqrt(ivar.astype(np.float64)), np.inf)
    kinds = {
        "Spectrum": star,
        "arrays": (wave, flux, ivar),
        "arrays in nm": (wave / 10 * u.nm, flux, ivar),
        "Table": Table({"wavelength": wave, "flux": flux, "ivar": ivar}),
        "QTable in um": QTable({"wave": wave / 1e4 * u.um, "flux": flux * u.Jy,
                                "ivar": ivar / u.Jy ** 2}),
        "specutils ivar": SUSpectrum(spectral_axis=wave * u.AA, flux=flux * u.Jy,
                                     uncertainty=InverseVariance(ivar / u.Jy ** 2)),
        "specutils stddev nm": SUSpectrum(spectral_axis=wave / 10 * u.nm, flux=flux * u.Jy,
                                          uncertainty=StdDevUncertainty(err * u.Jy)),
        "Spectrum1D variance": Spectrum1D(spectral_axis=wave * u.AA, flux=flux * u.Jy,
                                          uncertainty=VarianceUncertainty(err ** 2 * u.Jy ** 2)),
        "specutils frequency axis": SUSpectrum(
            spectral_axis=(wave[::-1] * u.AA).to(u.Hz, equivalencies=u.spectral()),
            flux=flux[::-1] * u.Jy, uncertainty=InverseVariance(ivar[::-1] / u.Jy ** 2)),
    }
    for kind, obj in kinds.items():
        got = model.predict(obj, draws=0)
        assert len(got) == 1, kind
        np.testing.assert_allclose(labels(got), labels(from_file), rtol=2e-6, err_msg=kind)
    # the draws are seeded by the spectrum's content, so the e_* agree too wherever the
    # conversion leaves the pixels bit-identical (no unit change)
    with_draws = model.predict(str(EXAMPLE), draws=8, seed=3)
    for kind in ("Spectrum", "arrays", "Table", "specutils ivar"):
        same(labels(model.predict(kinds[kind], draws=8, seed=3)), labels(with_draws))


def test_two_dimensional_arrays_are_many_spectra_on_one_grid(model, star):
    flux = np.stack([star.flux, star.flux * 2, star.flux])
    ivar = np.stack([star.ivar] * 3)
    table = model.predict((star.wavelength, flux, ivar), draws=0)
    assert list(table["path"]) == ["<arrays 0>"] * 3 and list(table["row"]) == [0, 1, 2]
    assert list(table["hdu"]) == [-1, -1, -1]
    single = model.predict((star.wavelength, star.flux, star.ivar), draws=0)
    # batch composition changes the engine's float summation order in the last bits only
    # (OpenVINO, which `auto` may pick: one float32 ulp of [Fe/H] ~ 0.06, i.e. 6e-8 absolute)
    np.testing.assert_allclose(labels(table, 0), labels(single), rtol=1e-6, atol=1e-7)
    same(labels(table, 0), labels(table, 2))


def test_specutils_mask_is_left_out_and_path_is_fast(model, star):
    from astropy.nddata import InverseVariance
    from specutils import Spectrum as SUSpectrum

    mask = np.zeros(star.flux.size, bool)
    mask[1000:1400] = True
    obj = SUSpectrum(spectral_axis=star.wavelength * u.AA, flux=star.flux * u.Jy,
                     uncertainty=InverseVariance(star.ivar / u.Jy ** 2), mask=mask)
    model.predict(obj, draws=0)  # warm
    t0 = time.perf_counter()
    got = model.predict(obj, draws=20)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.5, elapsed  # was >10 minutes: iterated pixel by pixel
    flux = star.flux.copy()
    flux[mask] = np.nan
    ivar = np.where(mask, 0, star.ivar)
    expected = model.predict((star.wavelength, flux, ivar), draws=0)
    same(labels(model.predict(obj, draws=0)), labels(expected))
    assert got["path"][0] == "<Spectrum 0>"


def test_mixed_list_keeps_input_order(model, star):
    table = model.predict([star, str(EXAMPLE), (star.wavelength, star.flux, star.ivar)],
                          draws=0)
    assert [Path(s).name for s in table["path"]] == [EXAMPLE.name, EXAMPLE.name, "<arrays 2>"]


@pytest.mark.parametrize("obj", [np.zeros((3, 10)), 3.5, {"flux": [1, 2]}, None,
                                 [np.zeros(10), np.zeros(10), np.zeros(10)]])
def test_unsupported_objects_are_a_type_error_at_once(obj):
    with pytest.raises(TypeError, match=r"cannot predict from an object of type .*; expected a "
                                        r"path .*bossnet_onnx\.Spectrum, astropy HDUList.*, specutils "
                                        r"Spectrum"):
        bossnet_onnx.predict(obj)


def test_arrays_of_mismatched_shapes_name_them(model):
    with pytest.raises(InputError, match=r"<arrays 0>: array shapes do not fit \(wavelength "
                                         r"\(10,\), flux \(12,\), ivar \(12,\)\)"):
        model.predict((np.arange(10.0), np.ones(12), np.ones(12)))


def test_flux_only_arrays_warn_and_set_the_no_ivar_bit(model, star):
    with pytest.warns(InputWarning, match="no ivar given"):
        table = model.predict((star.wavelength, star.flux, None), draws=2)
    from bossnet_onnx.science.flags import QualityFlags

    assert table["quality_flags"][0] & int(QualityFlags.NO_VALID_IVAR)


def test_table_with_unknown_unit_is_one_clear_failure(model, star):
    bad = Table({"wavelength": star.wavelength * u.s, "flux": star.flux, "ivar": star.ivar})
    with pytest.raises(InputError, match=r"<Table 0> wavelength: wavelength unit 's' is not a "
                                         r"length"):
        model.predict(bad)


def test_demo_model_warns_on_every_predict(model, star):
    for _ in range(2):
        with pytest.warns(DemoModelWarning, match=r"synthetic-demo, not an export of the "
                                                  r"published BOSS Net weights"):
            model.predict(star, draws=0)


def test_model_object_reuses_its_session_and_closes(star):
    m = bossnet_onnx.load()
    session = m.session
    with m:
        m.predict(star, draws=0)
        m.predict(star, draws=0)
        assert m.session is session
    assert m.closed
    with pytest.raises(ModelError, match="model was closed"):
        m.predict(star, draws=0)
    assert "closed" in repr(m)


def test_predict_function_accepts_a_loaded_model(model, star):
    same(labels(bossnet_onnx.predict(star, model=model, draws=0)),
         labels(model.predict(star, draws=0)))


def test_model_predict_from_threads_matches_serial(model, star):
    expected = labels(model.predict(star, draws=4, seed=1))
    got, errors = [], []

    def work():
        try:
            got.append(labels(model.predict(star, draws=4, seed=1)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and got == [expected] * 4


def test_unknown_model_name_is_a_model_error():
    with pytest.raises(ModelError, match=r"--model no-such-model: no installed model and no "
                                         r"file of that name"):
        bossnet_onnx.load("no-such-model")


def test_public_api_is_visible_to_dir():
    names = dir(bossnet_onnx)
    for name in ("predict", "load", "Spectrum", "Model", "ResultFlags", "read_spectra"):
        assert name in names and name in bossnet_onnx.__all__
        assert getattr(bossnet_onnx, name) is not None


def test_in_memory_spectra_cannot_be_sharded(star):
    with pytest.raises(ValueError, match="spectra in memory cannot be sharded"):
        bossnet_onnx.predict(star, shard="1/2")


def test_air_wavelengths_are_converted(model, star):
    """air=True on vacuum-labelled arrays equals predicting the converted grid."""
    from bossnet_onnx.science.units import air_to_vacuum

    air = model.predict((star.wavelength, star.flux, star.ivar), draws=0, air=True)
    vac = model.predict((air_to_vacuum(star.wavelength), star.flux, star.ivar), draws=0)
    same(labels(air), labels(vac))
    assert labels(air)[0] != labels(model.predict(star, draws=0))[0]


def test_a_run_writes_the_correlations_of_its_draws(model, star):
    """rho_* in the catalogue are numpy's correlation of the very draws behind e_*."""
    from bossnet_onnx.run.rows import prepare_spectrum

    table = model.predict(star, draws=12, seed=5)
    prep = prepare_spectrum(star, model.metadata, 12, 5)
    physical = model.run_physical(prep.inputs)[1:].astype(np.float64)
    names = list(model.metadata.parameter_names)
    labels = {"teff": 10 ** physical[:, names.index("logTeff")],
              "logg": physical[:, names.index("logg")], "fe_h": physical[:, names.index("FeH")],
              "bn_v_r": physical[:, names.index("rv")]}
    for a, b in (("teff", "logg"), ("teff", "fe_h"), ("logg", "fe_h"), ("teff", "bn_v_r"),
                 ("logg", "bn_v_r"), ("fe_h", "bn_v_r")):
        expected = np.float32(np.corrcoef(labels[a], labels[b])[0, 1])
        assert table[f"rho_{a}_{b}"][0] == expected, (a, b)
    assert np.isnan(model.predict(star, draws=2)["rho_teff_logg"][0])  # too few draws


def test_float64_and_float32_inputs_of_one_spectrum_get_identical_errors(model, star):
    """The draw seed is the canonical float32 spectrum: float64 arrays that round to the
    file's float32 values (float64 computations, astropy/specutils conversions) give the same
    e_* exactly; the seed used to hash the float64 bytes, so these differed (e_teff 19.3 K vs
    16.0 K in the issue)."""
    wave64 = np.nextafter(star.wavelength.astype(np.float64), np.inf)  # float64-only change
    assert not np.array_equal(wave64, star.wavelength)
    assert np.array_equal(wave64.astype(np.float32), star.wavelength.astype(np.float32))
    flux64, ivar64 = star.flux.astype(np.float64), star.ivar.astype(np.float64)
    from_file = model.predict(str(EXAMPLE), draws=10, seed=2)
    for arrays in ((wave64, flux64, ivar64),
                   (star.wavelength.astype(np.float32), star.flux, star.ivar)):
        same(labels(model.predict(arrays, draws=10, seed=2)), labels(from_file))


@pytest.mark.filterwarnings("ignore::astropy.units.UnitsWarning")
def test_hdulist_gives_exactly_the_rows_of_its_file(model, shared_data):
    """predict(fits.open(f)) == predict(f), every column, every real SDSS and LAMOST file."""
    from astropy.io import fits

    files = sorted(str(p) for p in (*shared_data.glob("sdss-spec-*.fits"),
                                    *shared_data.glob("lamost-*.fits*")))
    assert len(files) >= 10
    from_files = model.predict(files, draws=4, seed=9)
    opened = [fits.open(f) for f in files]
    try:
        from_lists = model.predict(opened, draws=4, seed=9)
    finally:
        for hdul in opened:
            hdul.close()
    assert len(from_lists) == len(from_files) == len(files)
    assert from_lists.colnames == from_files.colnames
    for name in from_files.colnames:
        a, b = np.asarray(from_files[name]), np.asarray(from_lists[name])
        if a.dtype.kind == "f":
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            assert list(a) == list(b), name
    # the survey's own values travel with the rows
    sdss = next(i for i, f in enumerate(files) if "sdss-spec-0332" in f)
    assert from_files["survey_class"][sdss] == "QSO" and from_files["survey_z"][sdss] > 0.1
    assert from_files["survey_e_z"][sdss] > 0 and from_files["survey_subclass"][sdss] != ""
    lamost = next(i for i, f in enumerate(files) if "lamost-dr1" in f)
    assert from_files["object_name"][lamost] != "" and np.isfinite(from_files["survey_z"][lamost])


def test_a_single_hdu_is_read_as_its_file(model, star):
    from astropy.io import fits

    from_file = model.predict(str(EXAMPLE), draws=6, seed=4)
    with fits.open(EXAMPLE) as hdul:
        table_hdu = model.predict(hdul[1], draws=6, seed=4)
    same(labels(table_hdu), labels(from_file))
    assert table_hdu["path"][0] == "<BinTableHDU 0>" and table_hdu["format"][0] == "sdss-spec"
    with pytest.raises(bossnet_onnx.errors.UnknownFormatError,
                       match=r"<ImageHDU 0>: FITS data in no known spectrum layout"):
        model.predict(fits.ImageHDU(np.zeros((3, 3, 3), np.float32)))


def _linear_image(star, shape_rows: bool) -> fits.HDUList:
    from astropy.io import fits

    wave = np.arange(3700.0, 9100.0, 1.0)
    flux = np.interp(wave, star.wavelength, star.flux).astype(np.float32)
    ivar = np.interp(wave, star.wavelength, star.ivar).astype(np.float32)
    shape = (1, wave.size) if shape_rows else (wave.size,)
    primary = fits.PrimaryHDU(flux.reshape(shape))
    primary.header.update(CRVAL1=3700.0, CDELT1=1.0, CRPIX1=1.0, OBJECT="HD 0001")
    return fits.HDUList([primary, fits.ImageHDU(ivar.reshape(shape), name="IVAR")])


def test_a_one_by_n_image_is_a_spectrum(model, star, tmp_path):
    """MILES-style 1 x N images read like 1-D ones, from a file or from memory."""
    one_d, one_by_n = tmp_path / "one_d.fits", tmp_path / "one_by_n.fits"
    _linear_image(star, False).writeto(one_d)
    _linear_image(star, True).writeto(one_by_n)
    reference = model.predict(str(one_d), draws=5, seed=1)
    got = model.predict(str(one_by_n), draws=5, seed=1)
    assert got["error"][0] == "" and got["format"][0] == "image-1d"
    same(labels(got), labels(reference))
    assert got["object_name"][0] == "HD 0001"
    same(labels(model.predict(_linear_image(star, True), draws=5, seed=1)), labels(reference))


def test_spectrum_list_gives_one_row_per_spectrum(model, star):
    from astropy.nddata import InverseVariance
    from specutils import Spectrum as SUSpectrum
    from specutils import SpectrumList

    one = SUSpectrum(spectral_axis=star.wavelength * u.AA, flux=star.flux * u.Jy,
                     uncertainty=InverseVariance(star.ivar / u.Jy ** 2))
    got = model.predict(SpectrumList([one, one]), draws=4, seed=2)
    alone = model.predict(one, draws=4, seed=2)
    assert list(got["path"]) == ["<SpectrumList 0>[0]", "<SpectrumList 0>[1]"]
    # two spectra share a model batch here: equal to onnxruntime's batch rounding (issue 24
    # makes engine calls fixed-shape for bit-identical rows)
    np.testing.assert_allclose(labels(got, 0), labels(alone), rtol=1e-5)
    np.testing.assert_allclose(labels(got, 1), labels(alone), rtol=1e-5)
