"""Command-line conventions: usage errors exit 2, plurals, warnings that -q cannot hide, the
stdout table, `python -m bossnet_onnx`, --air, --recursive and the new input kinds via the CLI."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from typer.testing import CliRunner

from bossnet_onnx.cli import app
from bossnet_onnx.outputs.catalogue import read_catalogue

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "spec-9999-60000-0042.fits"
DEMO = r"warning: model bossnet-demo-synthetic-v1 is synthetic-demo, not an export of the " \
       r"published BOSS Net weights"


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def star_arrays():
    from bossnet_onnx.readers import read_spectra

    (spec,) = read_spectra(EXAMPLE)
    return spec.wavelength, spec.flux, spec.ivar


@pytest.mark.parametrize("command", [["predict", str(EXAMPLE)], ["plot", str(EXAMPLE)]])
def test_unknown_provider_is_a_usage_error(command):
    res = run(*command, "--provider", "gpu")
    assert res.exit_code == 2, res.output
    assert "'gpu' is not one of auto, cpu, cuda" in res.stderr


def test_one_spectrum_is_singular_and_demo_warning_survives_quiet(tmp_path):
    res = run("predict", EXAMPLE, "--draws", "2")
    assert res.exit_code == 0, res.output
    assert "1 spectrum, 0 failed" in res.stderr and "1 spectra" not in res.stderr
    assert res.stderr.count("warning: model") == 1
    quiet = run("predict", EXAMPLE, "--draws", "2", "-q", "-o", tmp_path / "c.csv")
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr.strip().splitlines()[0].startswith(DEMO.replace("\\", "")[:60])
    assert "spectrum, 0 failed" not in quiet.stderr  # -q still hides the summary


def test_python_dash_m_runs_the_cli():
    env = dict(os.environ, PYTHONPATH=str(REPO / "runtime"))
    out = subprocess.run([sys.executable, "-m", "bossnet_onnx", "--version"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "bossnet-onnx 0.1.0"


def test_stdout_table_names_place_telescope_and_flags(tmp_path, star_arrays):
    wave, flux, _ivar = star_arrays
    Table({"wavelength": wave, "flux": flux}).write(tmp_path / "noivar.csv")
    res = run("predict", EXAMPLE, tmp_path / "noivar.csv", "--draws", "2")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].split()[:5] == ["path", "hdu", "row", "telescope", "teff"]
    assert "flags" in lines[0] and "quality" in lines[0]
    (row,) = [ln for ln in lines if ln.startswith("spec-9999-60000-0042.fits")]
    assert row.split()[1:4] == ["1", "-1", "apo25m"]
    (flux_only,) = [ln for ln in lines if ln.startswith("noivar.csv")]
    assert "NO_VALID_IVAR" in flux_only
    # the flux-only table's fallback is one warning line
    assert res.stderr.count("noivar.csv: no ivar or error column; sigma falls back") == 1


def test_air_option_converts_and_recursive_finds_nested_files(tmp_path, star_arrays):
    wave, flux, ivar = star_arrays
    data, out = tmp_path / "data", tmp_path / "out"
    (data / "night1").mkdir(parents=True)
    out.mkdir()
    Table({"wavelength": wave, "flux": flux, "ivar": ivar}).write(data / "night1" / "s.ecsv")
    flat = run("predict", data, "--draws", "0", "-o", out / "flat.fits")
    assert flat.exit_code == 1  # the folder itself has no spectrum files
    vac = run("predict", data, "-r", "--draws", "0", "-o", out / "vac.fits")
    air = run("predict", data, "--recursive", "--air", "--draws", "0", "-o", out / "air.fits")
    assert vac.exit_code == air.exit_code == 0, vac.output + air.output
    vac_t, air_t = read_catalogue(out / "vac.fits"), read_catalogue(out / "air.fits")
    assert len(vac_t) == len(air_t) == 1
    assert vac_t["teff"][0] != air_t["teff"][0]


def test_one_dimensional_image_gives_the_numbers_of_the_same_table(tmp_path, star_arrays):
    """A MILES/IRAF-style 1-D image and the same pixels as a table predict identically."""
    wave, flux, ivar = star_arrays
    step = 1.0
    grid = np.arange(3600.0, 10300.0, step)
    flux_grid = np.interp(grid, wave, flux).astype(np.float32)
    ivar_grid = np.interp(grid, wave, ivar).astype(np.float32)
    hdu = fits.PrimaryHDU(flux_grid)
    hdu.header.update(CRVAL1=3600.0, CDELT1=step, CRPIX1=1.0, CUNIT1="Angstrom")
    fits.HDUList([hdu, fits.ImageHDU(ivar_grid, name="IVAR")]).writeto(tmp_path / "img.fits")
    Table({"wavelength": grid, "flux": flux_grid, "ivar": ivar_grid}).write(tmp_path / "t.ecsv")
    res = run("predict", tmp_path / "img.fits", tmp_path / "t.ecsv", "--draws", "0",
              "-o", tmp_path / "both.fits")
    assert res.exit_code == 0, res.output
    both = read_catalogue(tmp_path / "both.fits")
    assert list(both["format"]) == ["image-1d", "generic-table"]
    for name in ("teff", "logg", "fe_h", "bn_v_r"):
        assert both[name][0] == both[name][1]
