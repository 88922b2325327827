"""Spectrum and Kiel plots: rendered headless into real PNGs, checked by their content.

A real (small, linear) ONNX model runs through onnxruntime, spectra come from the synthetic
generator or the shared SDSS files, and PNG sizes are read back from the files' IHDR chunks.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from import_blocker import BLOCKER

pytest.importorskip("matplotlib")

from astropy.io import fits
from astropy.table import Table
from onnx_fixtures import linear_metadata, write_linear_model
from typer.testing import CliRunner

from bossnet_onnx.cli import app
from bossnet_onnx.errors import InputError, InputWarning
from bossnet_onnx.model.session import open_model
from bossnet_onnx.outputs.catalogue import Result, build_table, write_catalogue
from bossnet_onnx.outputs.plotting import (
    DPI,
    KIEL_SIZE,
    PLOT_EXTRA_MESSAGE,
    SPECTRUM_PANEL_SIZE,
    PlotExtraError,
    kiel_counts,
    load_labels,
    plot_kiel,
    plot_spectrum,
)
from bossnet_onnx.run.rows import prepare_spectrum
from bossnet_onnx.science.flags import ResultFlags
from bossnet_onnx.science.synthetic import synthesize
from bossnet_onnx.spectrum import ReadFailure, Spectrum

REPO = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, after checking the PNG signature."""
    data = Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82", f"{path} is truncated"
    return width, height


def expected_pixels(size: tuple[float, float], panels: int = 1) -> tuple[int, int]:
    return round(size[0] * DPI), round(size[1] * panels * DPI)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return write_linear_model(tmp_path_factory.mktemp("model") / "linear.onnx")


@pytest.fixture(scope="module")
def model(model_path):
    return open_model(model_path, provider="cpu", threads=1)


def synthetic_spectrum(row: int, teff=5800.0, logg=4.4, fe_h=0.0, seed=1, bad=slice(0, 0),
                       masked=slice(0, 0)) -> Spectrum:
    wave, flux, ivar = synthesize(teff, logg, fe_h, 15.0, 40.0, np.random.default_rng(seed))
    ivar = ivar.copy()
    ivar[bad] = 0.0
    mask = np.zeros(wave.size, bool)
    mask[masked] = True
    return Spectrum(wave, flux, ivar, source=f"/data/spec-0001-55555-{row:04d}.fits",
                    format="sdss-spec", hdu=1, row=row, mask=mask)


# --------------------------------------------------------------------------- spectrum plot
def test_one_panel_per_spectrum_and_png_size(tmp_path, model):
    records = [synthetic_spectrum(0, seed=1), synthetic_spectrum(1, 4400, 2.0, -1.0, seed=2),
               ReadFailure(source="/data/spec.fits", error="spec.fits[HDU 1, row 2]: truncated",
                           hdu=1, row=2)]
    out = tmp_path / "three.png"
    fig = plot_spectrum(records, out, model=model, draws=5, seed=3)
    assert len(fig.axes) == 6  # observed + model input, per spectrum
    assert png_size(out) == expected_pixels(SPECTRUM_PANEL_SIZE, panels=3) == (1200, 1500)
    titles = [ax.get_title(loc="left") for ax in fig.axes[::2]]
    assert "row 0]" in titles[0] and "row 1]" in titles[1]
    assert "prediction failed" in titles[2] and "truncated" in titles[2]
    assert "RUNTIME_EXCEPTION" in titles[2]
    assert "\nflags: " in titles[0] and "model: linear-test" in titles[0]


def test_title_holds_the_labels_predict_computes(tmp_path, model):
    from bossnet_onnx.run.rows import result_from_outputs

    spec = synthetic_spectrum(4, seed=5)
    fig = plot_spectrum(spec, model=model, draws=8, seed=11)
    prep = prepare_spectrum(spec, model.metadata, 8, 11)
    labels = result_from_outputs(prep, model.run_physical(prep.inputs), model.metadata, 8).labels
    title = fig.axes[0].get_title(loc="left")
    assert f"Teff = {labels['teff']:.0f} ± {labels['e_teff']:.0f} K" in title
    assert f"log g = {labels['logg']:.2f} ± {labels['e_logg']:.2f}" in title
    assert f"[Fe/H] = {labels['fe_h']:.2f} ± {labels['e_fe_h']:.2f}" in title
    assert f"RV = {labels['bn_v_r']:.1f} ± {labels['e_bn_v_r']:.1f} km/s" in title
    assert "linear-test (random weights: not a trained model)" in title
    # The lower axes shows exactly the noise-free model input and its grid.
    line = next(ln for ln in fig.axes[1].lines if ln.get_label() == "model input (noise-free)")
    np.testing.assert_array_equal(line.get_ydata(), prep.inputs[0])
    np.testing.assert_allclose(line.get_xdata(), model.metadata.grid)


def test_no_draws_prints_values_without_errors(model):
    fig = plot_spectrum(synthetic_spectrum(0), model=model, draws=0)
    title = fig.axes[0].get_title(loc="left")
    assert "±" not in title and "Teff = " in title
    assert not [c for c in fig.axes[1].collections if "draws" in str(c.get_label())]


def test_masked_pixels_and_model_range_are_marked(model):
    spec = synthetic_spectrum(0, bad=slice(2000, 2050), masked=slice(1000, 1100))
    fig = plot_spectrum(spec, model=model, draws=3)
    ax_obs, ax_in = fig.axes
    shaded = [c.get_label() for c in ax_obs.collections]
    assert "masked or ivar ≤ 0 (150 px)" in shaded
    for ax in (ax_obs, ax_in):
        edges = sorted(ln.get_xdata()[0] for ln in ax.lines if ln.get_linestyle() == "--")
        assert edges == pytest.approx([3800.0, 8900.0], abs=0.01)
    _handles, names = ax_obs.get_legend_handles_labels()
    assert "model range 3800-8900 Å" in names


def test_flux_floor_is_marked_in_the_model_input(model):
    spec = synthetic_spectrum(0)
    flux = spec.flux.copy()
    flux[(spec.wavelength > 5000) & (spec.wavelength < 5100)] = -3.0  # sky over-subtracted
    spec = Spectrum(spec.wavelength, flux, spec.ivar, source=spec.source, format=spec.format,
                    hdu=1, row=0)
    fig = plot_spectrum(spec, model=model, draws=4)
    ax_in = fig.axes[1]
    names = ax_in.get_legend_handles_labels()[1]
    (floor,) = [n for n in names if "at the ln(1e-06) floor (flux ≤ 0), off scale" in n]
    n_grid = int(np.sum((model.metadata.grid > 5000) & (model.metadata.grid < 5100)))
    shown = int(floor.split()[0])
    inputs = prepare_spectrum(spec, model.metadata, 4, 0).inputs
    at_floor = inputs[0] <= np.log(np.float32(1e-6)) + 1e-4
    assert shown == int(at_floor.sum())
    assert n_grid - 2 <= shown <= n_grid + 5
    # the limits span the data (a running median of it: single dips next to the floor region
    # stay out too), not the floor: -13.8 would flatten the input into a line
    lo, hi = ax_in.get_ylim()
    above = inputs[0][~at_floor]
    assert lo > np.log(1e-6) + 5
    assert lo <= np.percentile(above, 1) and hi >= np.percentile(above, 99)
    (ticks,) = [ln for ln in ax_in.lines if ln.get_marker() == "|"]
    np.testing.assert_array_equal(ticks.get_xdata(), model.metadata.grid[at_floor])


def test_bundled_example_input_panel_spans_the_data_not_the_floor(tmp_path):
    """The README's example through the CLI: a real PNG, looked at, limits from the data."""
    from bossnet_onnx.readers import read_spectra

    example = REPO / "examples" / "spec-9999-60000-0042.fits"
    (spec,) = read_spectra(example)
    flux = spec.flux.copy()
    flux[(spec.wavelength > 3925) & (spec.wavelength < 3975)] = 0.0  # dead Ca II H&K pixels
    spec = Spectrum(spec.wavelength, flux, spec.ivar, source=spec.source, format=spec.format,
                    hdu=spec.hdu, flux_unit=spec.flux_unit)
    fig = plot_spectrum(spec, tmp_path / "hk.png", draws=8)
    ax_obs, ax_in = fig.axes
    lo, hi = ax_in.get_ylim()
    (line,) = [ln for ln in ax_in.lines if ln.get_label() == "model input (noise-free)"]
    data = line.get_ydata()
    kept = data[data > np.log(1e-6) + 1e-4]
    assert (hi - lo) < 2 * (kept.max() - kept.min())  # the floor (-13.8) is not in range
    assert lo > np.log(1e-6) + 5
    assert lo <= np.percentile(kept, 1) and hi >= np.percentile(kept, 99)
    assert ax_obs.get_ylabel() == "flux [1E-17 erg/cm^2/s/Ang]"
    assert ax_in.get_xlabel() == "vacuum wavelength [Å]"
    assert png_size(tmp_path / "hk.png") == expected_pixels(SPECTRUM_PANEL_SIZE, panels=1)


def test_air_and_in_memory_inputs_are_labelled(model):
    from astropy import units as u
    from specutils import Spectrum as SUSpectrum

    base = synthetic_spectrum(0)
    obj = SUSpectrum(spectral_axis=base.wavelength / 10 * u.nm, flux=base.flux * u.mJy)
    with pytest.warns(InputWarning, match="without uncertainty"):
        fig = plot_spectrum(obj, model=model, draws=0, air=True)
    assert fig.axes[1].get_xlabel() == ("vacuum wavelength [Å] (converted from the file's air "
                                        "wavelengths)")
    assert fig.axes[0].get_ylabel() == "flux [mJy]"
    assert fig.axes[0].get_title(loc="left").startswith("<Spectrum 0>\n")
    with pytest.raises(TypeError, match="cannot plot an object of type ndarray"):
        plot_spectrum(np.zeros((3, 10)), model=model)


@pytest.mark.parametrize(("kind", "note"), [
    ("synthetic-demo", "(synthetic demo model)"),
    ("published-weights", None),
    ("user-weights", "(user weights)"),
])
def test_provenance_note(tmp_path, kind, note):
    path = write_linear_model(tmp_path / f"{kind}.onnx",
                              metadata=linear_metadata(provenance=kind, model_name="m1"))
    title = plot_spectrum(synthetic_spectrum(0), model=path, provider="cpu",
                          draws=0).axes[0].get_title(loc="left")
    if note is None:
        assert title.rstrip().endswith("model: m1")
    else:
        assert f"model: m1 {note}" in title


def test_select_by_hdu_and_row(model):
    records = [synthetic_spectrum(r, seed=r + 1) for r in range(3)]
    fig = plot_spectrum(records, model=model, draws=0, row=2)
    assert len(fig.axes) == 2 and "row 2]" in fig.axes[0].get_title(loc="left")
    assert len(plot_spectrum(records, model=model, draws=0, hdu=1).axes) == 6
    with pytest.raises(InputError, match=r"no spectrum matches --hdu 3; the file holds: HDU 1 row 0"):
        plot_spectrum(records, model=model, hdu=3)
    with pytest.raises(InputError, match=r"no spectrum matches --hdu 1 --row 7"):
        plot_spectrum(records, model=model, hdu=1, row=7)


def test_unpreprocessable_spectrum_gets_a_failed_panel(model):
    good = synthetic_spectrum(0)
    far = Spectrum(np.linspace(10000, 11000, 500), np.ones(500), np.ones(500),
                   source="/data/ir.fits", format="table", hdu=1, row=1)
    fig = plot_spectrum([good, far], model=model, draws=0)
    assert "prediction failed" not in fig.axes[0].get_title(loc="left")
    title = fig.axes[2].get_title(loc="left")
    assert "prediction failed" in title and "does not overlap the model grid" in title


def test_bad_output_suffix_and_directory(tmp_path, model):
    with pytest.raises(InputError, match=r"unknown image type '.jpgx'"):
        plot_spectrum(synthetic_spectrum(0), tmp_path / "a.jpgx", model=model, draws=0)
    with pytest.raises(InputError, match=r"output directory .*nowhere does not exist"):
        plot_spectrum(synthetic_spectrum(0), tmp_path / "nowhere" / "a.png", model=model,
                      draws=0)


def test_plotting_leaves_pyplot_alone(model):
    import matplotlib

    backend = matplotlib.get_backend()
    plot_spectrum(synthetic_spectrum(0), model=model, draws=0)
    assert matplotlib.get_backend() == backend
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        assert plt.get_fignums() == []


# ------------------------------------------------------------------------------ Kiel plot
def kiel_table() -> Table:
    """30 good dwarfs/giants, 4 warn-only, 3 bad, 2 bit-3 (warn and bad), 2 failed, 1 NaN."""
    rng = np.random.default_rng(7)
    results = []
    for i in range(30):
        giant = i % 3 == 0
        teff = rng.uniform(4200, 5000) if giant else rng.uniform(5000, 6500)
        logg = rng.uniform(1.5, 3.0) if giant else rng.uniform(4.0, 4.6)
        results.append(Result(source="a.fits", hdu=1, row=i,
                              labels=dict(teff=teff, logg=logg, fe_h=rng.uniform(-1.5, 0.3))))
    specials = [
        (3700, 4.8, -0.2, ResultFlags.SUSPICIOUS_FE_H, 4),
        (1500, 4.8, 0.0, ResultFlags.UNRELIABLE_TEFF, 3),
        (6000, 5.5, -0.5, ResultFlags.UNRELIABLE_FE_H | ResultFlags.SUSPICIOUS_FE_H, 2),
    ]
    for teff, logg, fe_h, bits, n in specials:
        for k in range(n):
            results.append(Result(source="b.fits", hdu=1, row=100 + len(results),
                                  labels=dict(teff=teff + 10 * k, logg=logg, fe_h=fe_h),
                                  result_flags=int(bits)))
    results += [Result(source="broken.fits", result_flags=int(ResultFlags.RUNTIME_EXCEPTION),
                       error="broken.fits: not FITS") for _ in range(2)]
    results.append(Result(source="c.fits", hdu=1, row=0, labels=dict(teff=np.nan, logg=4.0,
                                                                        fe_h=0.0)))
    return build_table(results, meta={"MODEL": "demo", "PROVNC": "synthetic-demo"})


def collection(fig, gid):
    ax = fig.axes[0]
    return next(c for c in ax.collections if c.get_gid() == gid)


def test_kiel_counts_axes_and_png(tmp_path):
    path = write_catalogue(kiel_table(), tmp_path / "cat.fits")
    out = tmp_path / "kiel.png"
    fig = plot_kiel(path, out)
    assert png_size(out) == expected_pixels(KIEL_SIZE) == (750, 600)
    counts = kiel_counts(path)
    assert counts == {"good": 30, "warn": 4, "bad": 5, "failed": 2, "no_labels": 1, "quality": 0,
                      "total": 42}
    for gid in ("good", "warn", "bad"):
        assert len(collection(fig, gid).get_offsets()) == counts[gid]
    ax = fig.axes[0]
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    assert x0 > x1, "Teff must decrease to the right"
    assert y0 > y1, "log g must increase downwards"
    assert ax.get_xscale() == "log"  # 1500 K next to 6500 K: a factor > 3
    names = ax.get_legend_handles_labels()[1]
    assert names == ["no flag (30)", "flag_warn (4)", "flag_bad (5)"]
    assert "not drawn: 2 failed (bit 0), 1 without Teff/log g" in ax.get_legend().get_title().get_text()
    assert ax.get_title() == "cat.fits   (model demo, synthetic-demo)"
    # Bad rows are crosses; warn rows open circles; good rows filled and coloured by [Fe/H].
    assert collection(fig, "warn").get_facecolors().size == 0
    assert collection(fig, "good").get_array() is not None
    colorbar_axes = fig.axes[1]
    assert colorbar_axes.get_ylabel() == "[Fe/H]"


@pytest.mark.parametrize("suffix", [".csv", ".ecsv", ".parquet"])
def test_kiel_reads_every_catalogue_type(tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    path = write_catalogue(kiel_table(), tmp_path / f"cat{suffix}")
    fig = plot_kiel(path, tmp_path / "k.png")
    assert len(collection(fig, "bad").get_offsets()) == 5
    assert kiel_counts(path)["good"] == 30


def test_kiel_linear_teff_for_a_narrow_range():
    table = kiel_table()
    keep = (table["teff"] > 3000) & (table["teff"] < 7000)
    fig = plot_kiel(table[keep])
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear"
    assert ax.get_xlim()[0] > ax.get_xlim()[1]
    assert ax.get_title() == "Kiel diagram   (model demo, synthetic-demo)"


def write_dr19_like(path: Path) -> Path:
    """Like an astraAllStarBossNet summary file: upper-case columns, the results in HDU 2."""
    n = 12
    teff = np.linspace(3500, 7000, n).astype(np.float32)
    logg = np.linspace(5.0, 1.0, n).astype(np.float32)
    fe_h = np.linspace(-2, 0.4, n).astype(np.float32)
    flags = np.zeros(n, np.int64)
    flags[0] = int(ResultFlags.SUSPICIOUS_FE_H)  # warn
    flags[1] = int(ResultFlags.UNRELIABLE_LOGG)  # bad
    flags[2] = int(ResultFlags.RUNTIME_EXCEPTION)  # not drawn
    teff[3] = np.nan  # not drawn
    cols = [
        fits.Column("SDSS_ID", "K", array=np.arange(n)),
        fits.Column("TEFF", "E", array=teff), fits.Column("E_TEFF", "E", array=teff * 0.01),
        fits.Column("LOGG", "E", array=logg), fits.Column("FE_H", "E", array=fe_h),
        fits.Column("RESULT_FLAGS", "K", array=flags),
        fits.Column("FLAG_WARN", "L", array=(flags & 0b11000) != 0),
        fits.Column("FLAG_BAD", "L", array=(flags & 0b1111) != 0),
    ]
    other = fits.BinTableHDU.from_columns([fits.Column("SDSS_ID", "K", array=np.arange(3))],
                                          name="BOSS_SUMMARY")
    hdul = fits.HDUList([fits.PrimaryHDU(), other,
                         fits.BinTableHDU.from_columns(cols, name="BOSSNET")])
    hdul.writeto(path)
    return path


def test_kiel_on_a_dr19_like_fits_table(tmp_path):
    path = write_dr19_like(tmp_path / "astraAllStarBossNet-like.fits")
    assert kiel_counts(path) == {"good": 8, "warn": 1, "bad": 1, "failed": 1, "no_labels": 1, "quality": 0,
                                 "total": 12}
    fig = plot_kiel(path, hdu=2)
    assert len(collection(fig, "good").get_offsets()) == 8
    with pytest.raises(InputError, match=r"HDU 1 has the columns teff, logg and fe_h"):
        plot_kiel(path, hdu=1)
    with pytest.raises(InputError, match=r"has HDUs 0-2, not --hdu 5"):
        load_labels(path, hdu=5)


def test_kiel_errors_name_the_file_and_columns(tmp_path):
    table = Table({"teff": [5000.0], "logg": [4.0]})
    table.write(tmp_path / "two.csv")
    with pytest.raises(InputError, match=r"two.csv: lacks column\(s\) fe_h; a Kiel diagram"):
        plot_kiel(tmp_path / "two.csv")
    with pytest.raises(InputError, match=r"missing.fits: catalogue not found"):
        plot_kiel(tmp_path / "missing.fits")
    (tmp_path / "junk.fits").write_bytes(b"not a fits file at all" * 100)
    with pytest.raises(InputError, match=r"junk.fits: cannot read as FITS"):
        plot_kiel(tmp_path / "junk.fits")


# ------------------------------------------------------------------------------- CLI
def test_cli_kiel(tmp_path, monkeypatch):
    path = write_catalogue(kiel_table(), tmp_path / "run1.fits")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["kiel", str(path)])
    assert result.exit_code == 0, result.output
    assert png_size(tmp_path / "run1.kiel.png") == (750, 600)
    assert "30 unflagged, 4 flag_warn, 5 flag_bad, 3 not drawn" in result.stderr
    result = CliRunner().invoke(app, ["kiel", str(tmp_path / "nope.csv"), "-o", "x.png"])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.csv'}: catalogue not found"


def test_missing_matplotlib_is_one_line(tmp_path, monkeypatch, model):
    path = write_catalogue(kiel_table(), tmp_path / "cat.fits")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    with pytest.raises(PlotExtraError, match=r"^plotting needs the plot extra: "
                                             r"pip install 'bossnet-onnx\[plot\]'$"):
        plot_kiel(path)
    with pytest.raises(PlotExtraError, match=r"plot extra"):
        plot_spectrum(synthetic_spectrum(0), model=model)
    result = CliRunner().invoke(app, ["kiel", str(path), "-o", str(tmp_path / "k.png")])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"error: {PLOT_EXTRA_MESSAGE}"]
    assert not (tmp_path / "k.png").exists()


def _read_spectra_or_skip():
    try:
        from bossnet_onnx.readers import read_spectra
    except ImportError:
        pytest.skip("bossnet_onnx.readers is not available yet")
    return read_spectra


def test_cli_plot_matches_predict_on_a_real_sdss_file(tmp_path, monkeypatch, shared_data,
                                                      model_path):
    _read_spectra_or_skip()
    from bossnet_onnx.run.stream import predict

    spec = shared_data / "sdss-spec-0266-51602-0001.fits"
    table = predict([str(spec)], model=model_path, provider="cpu", draws=4, seed=2)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["plot", str(spec), "--model", str(model_path),
                                      "--draws", "4", "--seed", "2", "--provider", "cpu"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "sdss-spec-0266-51602-0001.png"
    assert png_size(out) == expected_pixels(SPECTRUM_PANEL_SIZE, panels=len(table))
    assert "1 spectrum -> sdss-spec-0266-51602-0001.png" in result.stderr and len(table) == 1
    fig = plot_spectrum(spec, model=model_path, provider="cpu", draws=4, seed=2)
    title = fig.axes[0].get_title(loc="left")
    row = table[0]
    assert f"Teff = {row['teff']:.0f} ± {row['e_teff']:.0f} K" in title
    assert f"RV = {row['bn_v_r']:.1f} ± {row['e_bn_v_r']:.1f} km/s" in title


def test_cli_plot_multi_spectrum_example_with_the_default_model(tmp_path):
    """The bundled mwmVisit example: one panel per BOSS visit, or one with --hdu/--row."""
    _read_spectra_or_skip()
    visits = sorted((REPO / "examples").glob("mwmVisit-*.fits"))
    if not visits:
        pytest.skip("no bundled mwmVisit example")
    from bossnet_onnx.readers import read_spectra

    records = [r for r in read_spectra(str(visits[0])) if isinstance(r, Spectrum)]
    out = tmp_path / "visits.png"
    result = CliRunner().invoke(app, ["plot", str(visits[0]), "-o", str(out), "--draws", "3"])
    assert result.exit_code == 0, result.output
    assert png_size(out) == expected_pixels(SPECTRUM_PANEL_SIZE, panels=len(records))
    first = records[-1]
    result = CliRunner().invoke(app, ["plot", str(visits[0]), "-o", str(out), "--draws", "0",
                                      "--hdu", str(first.hdu), "--row", str(first.row),
                                      "--overwrite"])
    assert result.exit_code == 0, result.output
    assert png_size(out) == expected_pixels(SPECTRUM_PANEL_SIZE)
    fig = plot_spectrum(visits[0], hdu=first.hdu, row=first.row, draws=0)
    assert "(synthetic demo model)" in fig.axes[0].get_title(loc="left")


def test_cli_plot_errors(tmp_path, model_path):
    result = CliRunner().invoke(app, ["plot", str(tmp_path / "none.fits"), "--model",
                                      str(model_path)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'none.fits'}: spectrum file not found"


# ------------------------------------------------------------------------ no torch needed
def test_plotting_never_imports_torch(tmp_path, model_path):
    cat = write_catalogue(kiel_table(), tmp_path / "cat.fits")
    script = tmp_path / "blocked.py"
    script.write_text(BLOCKER + textwrap.dedent(
        """
        import sys
        import numpy as np
        from bossnet_onnx.outputs.plotting import plot_kiel, plot_spectrum
        from bossnet_onnx.spectrum import Spectrum
        from bossnet_onnx.science.synthetic import synthesize
        wave, flux, ivar = synthesize(5000, 4.5, 0.0, 0.0, 30.0, np.random.default_rng(0))
        spec = Spectrum(wave, flux, ivar, source="s.fits", format="sdss-spec", hdu=1)
        fig = plot_spectrum(spec, sys.argv[3] + "/s.png", model=sys.argv[1], provider="cpu",
                            draws=3)
        plot_kiel(sys.argv[2], sys.argv[3] + "/k.png")
        try:
            import torch
        except ImportError:
            pass
        else:
            raise SystemExit("torch was importable")
        assert "torch" not in sys.modules and "onnx" not in sys.modules
        print("axes", len(fig.axes))
        """))
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(script), str(model_path), str(cat), str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["axes", "2"]
    assert png_size(tmp_path / "s.png") == expected_pixels(SPECTRUM_PANEL_SIZE)
    assert png_size(tmp_path / "k.png") == expected_pixels(KIEL_SIZE)


# ------------------------------------------------------------------ Kiel: survey column names
def survey_table(names: tuple[str, str, str], n: int = 30, seed: int = 4) -> Table:
    rng = np.random.default_rng(seed)
    return Table({names[0]: rng.uniform(4000, 6500, n), names[1]: rng.uniform(1, 5, n),
                  names[2]: rng.uniform(-2, 0.4, n)})


@pytest.mark.parametrize(("names", "suffix"), [
    (("teff", "logg", "feh"), ".csv"),              # LAMOST LRS stellar catalogue
    (("TEFF", "LOGG", "FE_H"), ".fits"),            # APOGEE allStar / ASPCAP
    (("Teff", "log g", "[Fe/H]"), ".ecsv"),         # as printed in papers
    (("teff_gspphot", "logg_gspphot", "mh_gspphot"), ".fits"),  # Gaia DR3
])
def test_kiel_recognises_survey_column_names(tmp_path, monkeypatch, names, suffix):
    path = tmp_path / f"survey{suffix}"
    survey_table(names).write(path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["kiel", str(path), "-o", "k.png"])
    assert result.exit_code == 0, result.output
    assert "30 unflagged, 0 flag_warn, 0 flag_bad, 0 not drawn -> k.png" in result.stderr


def test_kiel_column_options_map_any_names(tmp_path, monkeypatch):
    path = tmp_path / "odd.csv"
    survey_table(("T", "gravity", "metallicity")).write(path)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    plain = runner.invoke(app, ["kiel", str(path)])
    assert plain.exit_code == 1
    assert "name them with --teff/--logg/--feh" in plain.stderr
    mapped = runner.invoke(app, ["kiel", str(path), "--teff", "T", "--logg", "gravity",
                                 "--feh", "metallicity", "-o", "odd.png"])
    assert mapped.exit_code == 0, mapped.output
    assert png_size(tmp_path / "odd.png") == expected_pixels(KIEL_SIZE)
    wrong = runner.invoke(app, ["kiel", str(path), "--feh", "FEH_X"])
    assert wrong.exit_code == 1
    assert wrong.stderr.strip().splitlines() == [
        f"error: {path}: has no column 'FEH_X' (--feh); its columns: T, gravity, metallicity"]


def test_plot_handles_every_input_predict_handles(tmp_path, model):
    """The bad-input corpus (test_bad_inputs) through plot: each file is a figure with its
    failure shown in the panel title, or one BossNetError line; never a crash."""
    import warnings

    from test_bad_inputs import FILE_FAILURES, SPECTRUM_CASES, spec

    from bossnet_onnx.errors import BossNetError

    made, refused = 0, 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, (build, _fails, _expect) in enumerate(SPECTRUM_CASES.values()):
            path = spec(tmp_path / f"s{k}.fits", **build())
            fig = plot_spectrum(path, tmp_path / f"s{k}.png", model=model, draws=3)
            made += len(fig.axes) == 2
        for k, (make, _error, _message) in enumerate(FILE_FAILURES.values()):
            folder = tmp_path / f"f{k}"
            folder.mkdir()
            with pytest.raises(BossNetError) as info:
                plot_spectrum(make(folder), tmp_path / f"f{k}.png", model=model, draws=3)
            assert "\n" not in str(info.value)
            refused += 1
    assert made == len(SPECTRUM_CASES) and refused == len(FILE_FAILURES)
