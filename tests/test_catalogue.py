"""The catalogue writer: every text value safe for every format, out-of-range identifiers as the
documented missing value, real gzip for .fits.gz, CSV provenance, failures named."""
from __future__ import annotations

import gzip
import json
import warnings

import numpy as np
import pytest
from astropy.io import fits

from bossnet_onnx.errors import OutputError
from bossnet_onnx.outputs.catalogue import (
    MISSING_INT,
    Result,
    build_table,
    provenance_path,
    read_catalogue,
    remove_catalogue,
    row_identities,
    write_catalogue,
)
from bossnet_onnx.science.columns import MISSING

SUFFIXES = [".fits", ".fits.gz", ".csv", ".ecsv", ".parquet", ".vot", ".xml"]
META = {"MODEL": "démo-model", "MODELSHA": "a" * 64, "NDRAWS": 4, "SEED": 3, "SHARD": "1/2"}

HOSTILE_SOURCES = [
    "/données/étoile-1.fits",                # non-ASCII directory
    "/data/bad\udcffbyte.fits",              # a file name that is not UTF-8 (surrogateescape)
    "/data/two\nfailed: forged.fits",        # newline in a file name
    "/data/[bold red]x[/].fits",             # rich markup
]


def hostile_results() -> list[Result]:
    out = [Result(source=s, format="spec", hdu=1, row=i, labels={"teff": 5000.0 + i},
                  identifiers={"telescope": "apo25m"})
           for i, s in enumerate(HOSTILE_SOURCES)]
    # a BOM and a corrupted text identifier, as readers can hand them over
    out.append(Result(source="/data/bom.csv", format="table", row=0,
                      identifiers={"telescope": "\ufeffapo\x00\x1b[2J", "class": "STAR\udce9"},
                      labels={"teff": 6000.0}))
    out.append(Result(source="/data/fail.fits", result_flags=1,
                      error="/data/fail.fits: not FITS\x1b]0;pwned\x07"))
    return out


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_hostile_text_is_written_and_read_back_in_every_format(tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    table = build_table(hostile_results(), meta=META)
    path = write_catalogue(table, tmp_path / f"cat{suffix}")
    back = read_catalogue(path)
    assert len(back) == 6
    np.testing.assert_array_equal(back["teff"][:4], [5000, 5001, 5002, 5003])
    if suffix.startswith(".fits"):  # ASCII with Python escapes
        assert back["path"][0] == "/donn\\xe9es/\\xe9toile-1.fits"
        assert back["telescope"][4] == "\\ufeffapo\\x00\\x1b[2J"
        assert back["survey_class"][4] == "STAR\\udce9"
        assert back.meta["MODEL"] == "d\\xe9mo-model"
    else:  # UTF-8, control characters and lone surrogates escaped
        assert back["path"][0] == "/données/étoile-1.fits"
        assert back["telescope"][4] == "\ufeffapo\\x00\\x1b[2J"
        assert back["survey_class"][4] == "STAR\\udce9"
        assert back.meta["MODEL"] == "démo-model"
    assert back["path"][1] == "/data/bad\\udcffbyte.fits"
    assert back["path"][2] == "/data/two\\nfailed: forged.fits"
    assert back["path"][3] == "/data/[bold red]x[/].fits"
    assert back["error"][5] == "/data/fail.fits: not FITS\\x1b]0;pwned\\x07"
    assert back.meta["SEED"] == 3 and back.meta["SHARD"] == "1/2"
    # no temporary file left (a CSV has its provenance sidecar beside it)
    expected = {path, provenance_path(path)} if suffix == ".csv" else {path}
    assert set(tmp_path.iterdir()) == expected


def test_out_of_range_identifiers_become_minus_one(tmp_path):
    cases = [1e300, -1e300, float("inf"), float("nan"), 2**63, -(2**63) - 1, "12x", None]
    results = [Result(source=f"s{i}.fits", identifiers={"fiberid": v, "mjd": 59000, "plateid": v})
               for i, v in enumerate(cases)]
    results.append(Result(source="ok.fits", identifiers={"fiberid": 2**63 - 1, "plateid": 3.0}))
    table = build_table(results)
    assert MISSING_INT == -1 == MISSING["int64"]
    assert list(table["fiberid"]) == [-1] * len(cases) + [2**63 - 1]
    assert list(table["plateid"]) == [-1] * len(cases) + [3]
    assert list(table["mjd"][:len(cases)]) == [59000] * len(cases)
    for suffix in (".fits", ".csv"):
        back = read_catalogue(write_catalogue(table, tmp_path / f"ids{suffix}"))
        assert list(back["fiberid"]) == list(table["fiberid"])


def test_fits_gz_is_really_gzip(tmp_path):
    table = build_table(hostile_results(), meta=META)
    path = write_catalogue(table, tmp_path / "cat.fits.gz")
    raw = path.read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw)[:30] == b"SIMPLE  =                    T"
    with fits.open(path) as hdul:
        assert hdul[1].header["NDRAWS"] == 4
    assert list(read_catalogue(path)["row"]) == list(table["row"])
    plain = write_catalogue(table, tmp_path / "cat.fits").read_bytes()
    assert plain[:6] == b"SIMPLE" and len(raw) < len(plain) / 3


def test_csv_is_plain_and_its_provenance_is_in_the_sidecar(tmp_path):
    table = build_table(hostile_results()[:1], meta=META)
    path = write_catalogue(table, tmp_path / "cat.csv")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("path,format,hdu,row,")  # no comment lines: pandas, TOPCAT
    sidecar = json.loads(provenance_path(path).read_text(encoding="utf-8"))
    assert {k: sidecar[k] for k in META} == META
    assert sidecar["columns"]["teff"]["unit"] == "K"
    back = read_catalogue(path)
    assert dict(back.meta) == META
    # the types come back as written even for columns CSV cannot type (all-empty text)
    for name in table.colnames:
        assert back[name].dtype.kind == table[name].dtype.kind, name
    # a spreadsheet that saved it with a BOM: still read
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert dict(read_catalogue(path).meta) == META


def test_csv_of_an_earlier_version_with_comment_lines_is_still_read(tmp_path):
    """Progress files written before the sidecar hold `# KEY = JSON` lines: --resume reads them."""
    table = build_table(hostile_results()[:1])
    body = write_catalogue(table, tmp_path / "new.csv").read_text(encoding="utf-8")
    old = tmp_path / "old.csv"
    old.write_text("# bossnet-onnx catalogue; provenance below as KEY = JSON value\n"
                   '# MODEL = "démo-model"\n# NDRAWS = 4\n' + body, encoding="utf-8")
    back = read_catalogue(old)
    assert dict(back.meta) == {"MODEL": "démo-model", "NDRAWS": 4}
    assert len(back) == 1


def test_a_broken_sidecar_is_one_error_naming_it(tmp_path):
    path = write_catalogue(build_table(hostile_results()[:1], meta=META), tmp_path / "cat.csv")
    provenance_path(path).write_text("{not json", encoding="utf-8")
    with pytest.raises(OutputError, match=r"cat\.csv\.json: provenance of .*cat\.csv is not JSON"):
        read_catalogue(path)


def test_remove_catalogue_takes_the_sidecar_too(tmp_path):
    path = write_catalogue(build_table(hostile_results()[:1], meta=META), tmp_path / "cat.csv")
    remove_catalogue(path)
    assert list(tmp_path.iterdir()) == []


def test_write_failure_on_a_full_disk_names_the_file_and_leaves_nothing(tiny_tmpfs):
    small = tiny_tmpfs()
    results = [Result(source=f"/data/spec-{i:05d}.fits", labels={"teff": 5000.0})
               for i in range(3000)]
    table = build_table(results, meta=META)
    for suffix in (".fits", ".csv"):
        with pytest.raises(OutputError, match=rf"cannot write .*cat{suffix}: No space left on "
                                              rf"device"):
            write_catalogue(table, small / f"cat{suffix}")
        assert list(small.iterdir()) == []


def test_unreadable_catalogue_is_one_named_error(tmp_path):
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"not a fits file at all" * 10)
    with pytest.raises(OutputError, match=r"bad\.fits: cannot read catalogue"):
        read_catalogue(bad)
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(OutputError, match=r"d\.csv: is a directory, not a catalogue"):
        read_catalogue(tmp_path / "d.csv")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("source,teff\na.fits,1,2,3\n")
    with pytest.raises(OutputError, match=r"ragged\.csv: cannot read catalogue"):
        read_catalogue(ragged)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("source,hdu\na.fits,one\n")
    with pytest.raises(OutputError, match=r"wrong\.csv: cannot read catalogue \(column 'hdu'"):
        read_catalogue(wrong)


def test_row_identity_tells_same_named_files_apart():
    def row(source, **ids):
        return Result(source=source, hdu=1, row=0, identifiers=ids)

    table = build_table([
        row("/a/spec.fits", catalogid=1), row("/b/spec.fits", catalogid=2),   # two stars
        row("/a/t.fits"), row("/b/t.fits"),                                    # no ids: by path
        row("/a/s.fits", catalogid=7), row("/mnt/a/s.fits", catalogid=7),      # same spectrum
    ])
    keys = row_identities(table)
    assert len(set(keys[:4])) == 4
    assert keys[4] == keys[5]


def _star_table():
    results = [Result(source=f"/data/spec-{i}.fits", format="sdss-spec", hdu=1,
                      identifiers={"z": 1e-4 * i, "z_err": 1e-5, "class": "STAR",
                                   "subclass": "G2"},
                      labels={"teff": 5000.0 + i, "logg": 4.0, "fe_h": -0.1,
                              "rho_teff_logg": 0.5}, n_draws=5) for i in range(3)]
    results.append(Result(source="/data/bad.fits", result_flags=1, error="bad: not FITS"))
    meta = {**META, "MODEL": "demo-model", "PROVNC": "random weights (demo)", "MEMBER": "boss"}
    return build_table(results, meta=meta)


@pytest.mark.parametrize("suffix", [".fits", ".fits.gz", ".csv", ".parquet", ".vot", ".xml"])
def test_every_format_opens_in_the_usual_tools_with_no_warning(tmp_path, suffix):
    """astropy's Table.read, pandas and astropy.io.votable.parse read each output with their
    defaults, warnings as errors, and find units, descriptions and provenance in it."""
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    pandas = pytest.importorskip("pandas")
    from astropy.io.votable import parse
    from astropy.table import Table

    table = _star_table()
    path = write_catalogue(table, tmp_path / f"cat{suffix}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = Table.read(path)
        assert len(back) == 4 and back.colnames == table.colnames
        assert list(back["teff"][:3]) == [5000.0, 5001.0, 5002.0]
        if suffix.startswith(".fits"):
            header = fits.getheader(path, 1)
            assert header["EXTNAME"] == "BOSSNET"
            assert back["teff"].unit == "K" and back["bn_v_r"].unit == "km / s"
            i = table.colnames.index("logg") + 1
            assert f"TUNIT{i}" not in header  # dex: not a FITS unit, so in the description
            assert header[f"TCOMM{i}"].startswith("[dex] surface gravity")
            assert header["MODELSHA"] == "a" * 64 and header["PROVNC"].startswith("random")
            assert header.comments["NDRAWS"].startswith("Monte-Carlo draws")
        elif suffix == ".csv":
            frame = pandas.read_csv(path)
            assert frame.shape == (4, len(table.colnames))
            assert frame["survey_class"][0] == "STAR"
            sidecar = json.loads(provenance_path(path).read_text(encoding="utf-8"))
            assert sidecar["MODELSHA"] == "a" * 64
            assert sidecar["columns"]["logg"] == {
                "unit": "dex", "description": table["logg"].description,
                "ucd": "phys.gravity"}
        elif suffix == ".parquet":
            frame = pandas.read_parquet(path)
            assert frame.shape == (4, len(table.colnames))
            assert back["logg"].unit == "dex" and back["teff"].unit == "K"
            assert back["teff"].description == table["teff"].description
            assert back.meta["MODELSHA"] == "a" * 64 and back.meta["NDRAWS"] == 4
        else:
            votable = parse(str(path))
            fields = {f.name: f for f in votable.get_first_table().fields}
            assert fields["teff"].unit == "K" and fields["teff"].ucd == \
                "phys.temperature.effective"
            assert fields["logg"].unit is None and fields["logg"].ucd == "phys.gravity"
            assert fields["logg"].description.startswith("[dex] surface gravity")
            assert fields["rho_teff_logg"].ucd == "stat.correlation"
            infos = {i.name: json.loads(i.value) for i in votable.resources[0].infos}
            assert infos["MODELSHA"] == "a" * 64 and infos["NDRAWS"] == 4
            assert back["teff"].description == table["teff"].description
    # our own reader gives every unit back, dex included, and the provenance
    ours = read_catalogue(path)
    assert ours["logg"].unit == "dex" and ours["teff"].unit == "K"
    assert ours.meta["MODELSHA"] == "a" * 64 and "TCOMM1" not in ours.meta
    assert ours["survey_z"][2] == pytest.approx(2e-4) and ours["survey_subclass"][0] == "G2"
