"""`--model auto` (run/mixed.py): mixed folders routed to each member's installed model, and
the single-model refusal listing every misfit file at once."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from layouts import write_gaia_table, write_mwm
from onnx_fixtures import write_member_model
from typer.testing import CliRunner

import bossnet_onnx
from bossnet_onnx.cli import app
from bossnet_onnx.errors import MemberMismatchError
from bossnet_onnx.model.home import HOME_ENV
from bossnet_onnx.outputs.catalogue import read_catalogue
from bossnet_onnx.readers import sniff_kinds
from bossnet_onnx.run.mixed import member_models, route
from bossnet_onnx.science.members import MEMBERS

EXTNAMES = {"boss": "BOSSNET", "apogee": "APOGEENET", "gaia-rvs": "GAIARVSNET",
            "gaia-xp": "GAIAXPNET"}


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty models home (nothing installed)."""
    path = tmp_path / "home"
    monkeypatch.setenv(HOME_ENV, str(path))
    return path


def install(home: Path, *members: str) -> dict[str, Path]:
    """Member models from random weights, installed as `models pull` names them."""
    (home / "models").mkdir(parents=True, exist_ok=True)
    return {m: write_member_model(home / "models" / f"{m}.onnx", m, seed=i)
            for i, m in enumerate(members)}


def rvs_file(path: Path) -> Path:
    """A Gaia RVS archive table (no real one is public): two sources."""
    rng = np.random.default_rng(7)
    return write_gaia_table(path, [
        {"source_id": 100 + i, "flux": 1 + 0.01 * rng.standard_normal(2401),
         "flux_error": np.full(2401, 0.02)} for i in range(2)])


def mixed_folder(shared_data: Path, tmp_path: Path) -> Path:
    """Every real survey file, plus a Gaia RVS table."""
    folder = tmp_path / "in"
    folder.mkdir()
    for path in sorted(shared_data.iterdir()):
        if path.name.endswith((".fits", ".fits.gz", ".csv", ".ecsv", ".xml")):
            (folder / path.name).symlink_to(path)
    rvs_file(folder / "gaia-rvs-mean.csv")
    return folder


def test_auto_with_no_member_installed_writes_a_row_for_every_file(shared_data, tmp_path, home):
    folder = mixed_folder(shared_data, tmp_path)
    out = tmp_path / "cat.fits"
    result = CliRunner().invoke(app, ["predict", str(folder), "--model", "auto", "-o", str(out),
                                      "--draws", "2", "-q"])
    assert result.exit_code == 1, result.output  # failed rows: the members to pull
    assert "not an export of the published BOSS Net weights" in result.stderr  # demo for BOSS
    with fits.open(out) as hdul:
        names = [h.name for h in hdul[1:]]
        tables = {h.name: h.data for h in hdul[1:]}
    assert names == ["BOSSNET", "APOGEENET", "GAIARVSNET", "GAIAXPNET"]
    inputs = sorted(str(p) for p in folder.iterdir())
    seen = sorted({str(p) for t in tables.values() for p in t["path"]})
    assert seen == inputs  # a row for every file of every kind
    boss = tables["BOSSNET"]
    assert len(boss) == sum(1 for p in inputs if Path(p).name.startswith(("sdss", "lamost")))
    assert np.isfinite(boss["teff"][boss["result_flags"] & 1 == 0]).all()
    for name, member in (("APOGEENET", "apogee"), ("GAIARVSNET", "gaia-rvs"),
                         ("GAIAXPNET", "gaia-xp")):
        assert (tables[name]["result_flags"] & 1 == 1).all()
        assert all(f"`bossnet-onnx models pull {member}`" in e for e in tables[name]["error"])
    assert "bossnet-onnx models pull apogee" in result.stderr


def test_auto_with_four_members_labels_every_file(shared_data, tmp_path, home):
    folder = mixed_folder(shared_data, tmp_path)
    models = install(home, *MEMBERS)
    assert member_models() == models
    tables = bossnet_onnx.predict(folder, model="auto", draws=2)
    assert list(tables) == list(MEMBERS)
    for member, table in tables.items():
        assert table.meta["MEMBER"] == member and table.meta["MODEL"] == f"linear-{member}"
    inputs = sorted(str(p) for p in folder.iterdir())
    assert sorted({str(p) for t in tables.values() for p in t["path"]}) == inputs
    for member in ("apogee", "gaia-rvs"):
        assert (tables[member]["result_flags"] & 1 == 0).all()
        assert np.isfinite(tables[member]["teff"]).all()
    xp = tables["gaia-xp"]
    bad = xp[xp["result_flags"] & 1 == 1]  # the archive file's source without a BP solution
    assert len(bad) == 2 and all("no BP solution" in e for e in bad["error"])
    assert np.isfinite(xp["teff"][xp["result_flags"] & 1 == 0]).all()
    # a thin router: each member's rows are the rows of an ordinary run of its files
    apogee_files = [p for p in inputs if sniff_kinds(p) == frozenset({"apogee"})]
    alone = bossnet_onnx.predict(apogee_files, model=models["apogee"], draws=2)
    for name in ("path", "hdu", "row", "teff", "e_teff", "logg", "fe_h"):
        np.testing.assert_array_equal(tables["apogee"][name], alone[name])


def test_auto_csv_writes_one_file_per_member(tmp_path, shared_data, home):
    install(home, "apogee")
    spec = sorted(shared_data.glob("sdss-spec-*.fits"))[:2]
    apstar = sorted(shared_data.glob("apogee-apstar-*.fits"))[:1]
    inputs = [str(p) for p in spec + apstar]
    out = tmp_path / "cat.csv"
    (tmp_path / "cat.apogee.csv").write_text("old")
    args = ["predict", *inputs, "--model", "auto", "-o", str(out), "--draws", "2"]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "cat.apogee.csv" in refused.stderr
    assert "--overwrite" in refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.apogee.csv", "home"]
    result = CliRunner().invoke(app, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert not out.exists()
    boss, apogee = read_catalogue(tmp_path / "cat.boss.csv"), read_catalogue(
        tmp_path / "cat.apogee.csv")
    assert [str(p) for p in boss["path"]] == [str(p) for p in spec]
    assert [str(p) for p in apogee["path"]] == [str(apstar[0])] * len(apogee)
    assert boss.meta["MEMBER"] == "boss" and apogee.meta["MEMBER"] == "apogee"
    assert "bn_v_r" in boss.colnames and "bn_v_r" not in apogee.colnames
    assert "cat.boss.csv" in result.stderr and "cat.apogee.csv" in result.stderr


def test_mwm_file_goes_to_each_installed_member(tmp_path, home, rng):
    apogee_row = {"flux": 1 + 0.01 * rng.standard_normal(8575), "ivar": np.full(8575, 1e4)}
    boss_row = {"flux": 1 + 0.01 * rng.standard_normal(4648), "ivar": np.full(4648, 1e4)}
    path = str(write_mwm(tmp_path / "mwmStar-0.6.0-1.fits", apo=[boss_row],
                         apogee=([apogee_row], ())))
    unsure = tmp_path / "unknown.fits"
    unsure.write_bytes(b"not a FITS file")
    assert route([path, str(unsure)], ["boss"]) == {"boss": [path, str(unsure)]}
    assert route([path], ["boss", "apogee"]) == {"boss": [path], "apogee": [path]}
    install(home, "apogee")
    tables = bossnet_onnx.predict([path, str(unsure)], model="auto", draws=0)
    assert [str(p) for p in tables["boss"]["path"]] == [path, str(unsure)]
    assert tables["boss"]["result_flags"][0] & 1 == 0
    assert tables["boss"]["result_flags"][1] & 1 == 1  # the BOSS reader's own failed row
    assert "unknown.fits" in tables["boss"]["error"][1]
    assert list(tables["apogee"]["path"]) == [path]
    assert tables["apogee"]["result_flags"][0] & 1 == 0


def test_auto_refuses_resume_and_dask(tmp_path, shared_data):
    spec = str(next(shared_data.glob("sdss-spec-*.fits")))
    for extra in (["--resume"], ["--dask", "local:1"]):
        result = CliRunner().invoke(app, ["predict", spec, "--model", "auto", "-o",
                                          str(tmp_path / "c.fits"), *extra])
        assert result.exit_code == 2
        assert "does not work with --model auto" in result.stderr
    assert not (tmp_path / "c.fits").exists()


def test_single_model_refusal_lists_every_misfit(shared_data, tmp_path):
    apstar = sorted(shared_data.glob("apogee-apstar-*.fits"))
    xp = sorted(shared_data.glob("gaia-xp-*.csv"))
    spec = sorted(shared_data.glob("sdss-spec-*.fits"))[:1]
    inputs = [str(p) for p in spec + apstar]
    with pytest.raises(MemberMismatchError, match=(
            r"^3 files are not optical spectra \(.*\), which the model \S+\.onnx \(BOSS Net, "
            r"member boss\) reads: " + ", ".join(map(str, apstar)).replace("+", r"\+")
            + r"; use a model of the matching member, or --model auto")):
        bossnet_onnx.predict(inputs, draws=0)
    many = [str(p) for p in spec + apstar + xp]
    with pytest.raises(MemberMismatchError, match=r"^5 files are not .*: .*"):
        bossnet_onnx.predict(many, draws=0)
    folder = tmp_path / "f"
    folder.mkdir()
    for i in range(9):  # the name says apStar: refused before any file is read
        (folder / f"apStar-{i}.fits").write_bytes(b"")
    with pytest.raises(MemberMismatchError, match=r"^9 files are not .*apStar-4\.fits and 4 "
                                                  r"more; "):
        bossnet_onnx.predict(folder, draws=0)


def test_per_member_files_are_all_written_or_none(tmp_path):
    from bossnet_onnx.errors import OutputError
    from bossnet_onnx.outputs.catalogue import build_table, write_catalogues
    from bossnet_onnx.run.rows import failure_row

    tables = {m: build_table([failure_row(f"{m}.fits", "e")], meta={"MEMBER": m})
              for m in ("boss", "apogee")}
    (tmp_path / "cat.apogee.ecsv").mkdir()  # the second write fails
    with pytest.raises(OutputError, match=r"cat\.apogee\.ecsv"):
        write_catalogues(tables, tmp_path / "cat.ecsv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.apogee.ecsv"]
    written = write_catalogues(tables, tmp_path / "all.fits.gz")
    assert written == [tmp_path / "all.fits.gz"]
    with fits.open(written[0]) as hdul:
        assert [h.name for h in hdul[1:]] == ["BOSSNET", "APOGEENET"]
