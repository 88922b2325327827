"""Reading sibling-network tables safely: text tables bounded and streamed (readers/_text.py,
readers/_votable.py, the Gaia and generic table readers), kind sniffing that decides only what it
knows, every input file giving a record, scaled-integer images. Real Gaia and APOGEE files from
../shared/data where they exist, mutated in tmp_path; the rest written by tests/layouts.py."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from layouts import write_apstar, write_gaia_table
from onnx_fixtures import write_member_model

from bossnet_onnx import predict
from bossnet_onnx.errors import InputError
from bossnet_onnx.readers import read_spectra, sniff_kinds
from bossnet_onnx.spectrum import ReadFailure, Spectrum

XP = "gaia-xp-continuous-GaiaXPy-XP_CONTINUOUS_RAW"
APSTAR = "apogee-apstar-dr13-r6-2M03290406+3117075.fits"


def _real(shared_data: Path, name: str, tmp_path: Path, new_name: str | None = None) -> Path:
    out = tmp_path / (new_name or name)
    out.write_bytes((shared_data / name).read_bytes())
    return out


def _edit(path: Path, old: bytes, new: bytes, count: int = 1) -> Path:
    data = path.read_bytes()
    assert data.count(old) >= count, old
    path.write_bytes(data.replace(old, new, count))
    return path


def _failures(records) -> list[str]:
    return [r.error for r in records if isinstance(r, ReadFailure)]


# ------------------------------------------------------------------ item 1: kind sniffing
def _card(path: Path, key: bytes, value: bytes) -> Path:
    data = bytearray(path.read_bytes())
    at = data.index(key.ljust(8) + b"= ", data.index(b"XTENSION= "))  # HDU1's card
    data[at + 10:at + 80] = value.rjust(20).ljust(70)
    path.write_bytes(bytes(data))
    return path


def _cut(path: Path, size: int) -> Path:
    path.write_bytes(path.read_bytes()[:size])
    return path


DAMAGED = {
    "apStar CRVAL1 altered": lambda d, t: _card(_real(d, APSTAR, t), b"CRVAL1", b"3.9"),
    "Gaia CSV column renamed": lambda d, t: _edit(_real(d, XP + ".csv", t), b"bp_coefficients,",
                                                   b"bp_coefficientz,"),
    "Gaia FITS TTYPE altered": lambda d, t: _edit(_real(d, XP + ".fits", t), b"'source_id",
                                                   b"'source_ix"),
    "Gaia VOTable FIELD altered": lambda d, t: _edit(_real(d, XP + ".xml", t),
                                                      b'name="source_id"', b'name="source_ix"'),
    "Gaia ECSV cut in its header": lambda d, t: _cut(_real(d, XP + ".ecsv", t), 3000),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_damaged_sibling_file_is_not_sniffed_as_an_optical_spectrum(shared_data, tmp_path, case):
    """Before: every one of these was 'certainly BOSS' and stopped an APOGEE or Gaia run."""
    path = DAMAGED[case](shared_data, tmp_path)
    assert sniff_kinds(path) == frozenset()


def _padded_ecsv(source: Path, out: Path, pad: int) -> Path:
    text = source.read_text()
    first = text.index("#   description:")
    line_end = text.index("\n", first)
    out.write_text(text[:line_end] + " " + "x" * pad + text[line_end:])
    return out


def _padded_votable(source: Path, out: Path, pad: int) -> Path:
    data = source.read_bytes()
    at = data.index(b"</DESCRIPTION>")
    out.write_bytes(data[:at] + b" " + b"y" * pad + data[at:])
    return out


@pytest.mark.parametrize("form", ["ecsv", "xml"])
def test_a_valid_gaia_table_whose_header_passes_64_kib_is_sniffed_and_read(shared_data, tmp_path,
                                                                          form):
    """Before: both were sniffed as optical spectra (the sniff read 64 KiB) and refused."""
    make = _padded_ecsv if form == "ecsv" else _padded_votable
    path = make(shared_data / f"{XP}.{form}", tmp_path / f"big-header.{form}", 100_000)
    assert path.read_bytes()[:65536].count(b"5853498713190525696") == 0  # rows past 64 KiB
    assert sniff_kinds(path) == frozenset({"gaia-xp"})
    records = read_spectra(path, kind="gaia-xp")
    assert [r.identifiers["source_id"] for r in records if isinstance(r, Spectrum)] == \
        [5853498713190525696, 5762406957886626816]


def test_a_damaged_gaia_file_is_its_own_failed_row_and_the_run_goes_on(shared_data, tmp_path):
    """Before: MemberMismatchError for the damaged file, no row for the good ones."""
    model = write_member_model(tmp_path / "xp.onnx", "gaia-xp")
    good_csv = _real(shared_data, XP + ".csv", tmp_path, "a-good.csv")
    damaged = _edit(_real(shared_data, XP + ".csv", tmp_path, "b-damaged.csv"),
                    b"rp_coefficients,", b"rp_coefficientz,")
    good_fits = _real(shared_data, XP + ".fits", tmp_path, "c-good.fits")
    table = predict([str(good_csv), str(damaged), str(good_fits)], model=model, draws=0)
    assert [Path(str(p)).name for p in table["path"]] == ["a-good.csv"] * 2 + \
        ["b-damaged.csv"] + ["c-good.fits"] * 2
    flags = list(table["result_flags"] & 1)
    assert flags == [0, 0, 1, 0, 0]
    assert str(damaged) in str(table["error"][2]) and "unexpected" not in str(table["error"][2])


# ------------------------------------------------------ items 5, 6: bounded, streamed tables
_PEAK = ("import sys\n"
         "from bossnet_onnx.readers import iter_spectra\n"
         "n = sum(1 for _ in iter_spectra(sys.argv[1], kind='gaia-xp'))\n"
         "line = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
         "print(n, int(line.split()[1]) * 1024)\n")


def _peak(path: Path) -> tuple[int, int]:
    run = subprocess.run([sys.executable, "-c", _PEAK, str(path)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    n, peak = run.stdout.split()
    return int(n), int(peak)


def _xp_rows(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    base = {"bp_coefficients": rng.normal(0, 100, 55), "bp_coefficient_errors": rng.uniform(1, 2, 55),
            "bp_coefficient_correlations": rng.uniform(-0.05, 0.05, 1485),
            "rp_coefficients": rng.normal(0, 100, 55), "rp_coefficient_errors": rng.uniform(1, 2, 55),
            "rp_coefficient_correlations": rng.uniform(-0.05, 0.05, 1485)}
    return [dict(source_id=i + 1, **base) for i in range(n)]


N_BIG = 300


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize("suffix", [".csv", ".fits", ".vot"])
def test_gaia_tables_are_read_one_chunk_at_a_time(tmp_path, suffix):
    """Peak memory does not grow with the rows: 2 rows vs N_BIG (~20 MB of CSV). Before: the
    3,000-row CSV took 2.3 GB, the VOTable 0.9 GB (astropy held the whole table)."""
    small, big = tmp_path / f"small{suffix}", tmp_path / f"big{suffix}"
    write_gaia_table(small, _xp_rows(2))
    write_gaia_table(big, _xp_rows(N_BIG))
    (n_small, peak_small), (n_big, peak_big) = _peak(small), _peak(big)
    print(f"{suffix}: 2 rows {peak_small / 1e6:.0f} MB, {N_BIG} rows "
          f"({big.stat().st_size / 1e6:.0f} MB) {peak_big / 1e6:.0f} MB")
    assert (n_small, n_big) == (2, N_BIG)
    assert peak_big - peak_small < 30e6


def test_a_40000_field_header_is_refused_at_once(tmp_path):
    """Before: astropy parsed the 160 KB header line for 9 s (159 s in a run) first."""
    from bossnet_onnx.readers import _text

    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(40_000))[:160_000] + "\n1,2\n")
    start = time.perf_counter()
    with pytest.raises(InputError, match=rf"{re.escape(str(path))}: header line 1 names \d+ "
                                         rf"columns, more than the {_text.MAX_COLUMNS}"):
        read_spectra(path)
    assert time.perf_counter() - start < 1.0
    assert sniff_kinds(path) == frozenset()


def test_a_40000_field_data_line_fails_only_its_row(shared_data, tmp_path):
    header, first, second = (shared_data / f"{XP}.csv").read_text().splitlines()
    path = tmp_path / "wide-row.csv"
    path.write_text("\n".join([header, first, ",".join(["1.5"] * 40_000), second]) + "\n")
    start = time.perf_counter()
    records = read_spectra(path, kind="gaia-xp")
    assert time.perf_counter() - start < 1.0
    assert [type(r).__name__ for r in records] == ["Spectrum", "ReadFailure", "Spectrum"]
    assert records[1].error == (f"{path}[row 1]: line 3 has 40000 fields; the header names 26 "
                                f"columns (a cut or altered line)")


def test_an_over_long_line_is_skipped_in_bounded_steps(tmp_path, monkeypatch):
    from bossnet_onnx.readers import _text

    monkeypatch.setattr(_text, "MAX_LINE_BYTES", 4096)
    rows = _xp_rows(3)
    path = write_gaia_table(tmp_path / "long.csv", rows)  # each row ~45 KB: all over the bound
    records = read_spectra(path, kind="gaia-xp")
    assert [r.row for r in records] == [0, 1, 2]
    assert all("is longer than 4096 bytes (MAX_LINE_BYTES)" in e for e in _failures(records))


# -------------------------------------------------------------- items 8, 10: rows, not files
def test_a_gaia_csv_cut_inside_its_first_row_is_a_failed_row(shared_data, tmp_path):
    """Before: no row and no message, exit 0."""
    data = (shared_data / f"{XP}.csv").read_bytes()
    path = tmp_path / "cut.csv"
    path.write_bytes(data[:data.index(b"\n") + 5000])
    (failure,) = read_spectra(path, kind="gaia-xp")
    assert failure.error.startswith(f"{path}[row 0]: line 2 ")
    header_only = tmp_path / "header-only.csv"
    header_only.write_bytes(data[:data.index(b"\n") + 1])
    with pytest.raises(InputError, match=f"{re.escape(str(header_only))}: Gaia archive table "
                                         f"with no data rows"):
        read_spectra(header_only, kind="gaia-xp")


@pytest.mark.parametrize("cut", [0.02, 0.5, 0.999])
def test_a_cut_votable_ends_with_a_failed_row(shared_data, tmp_path, cut):
    """Cut inside the BINARY2 stream, at the first row, mid-table and before </STREAM>."""
    data = (shared_data / f"{XP}.xml").read_bytes()
    start, end = data.index(b"<STREAM"), data.index(b"</STREAM")
    path = tmp_path / "cut.xml"
    path.write_bytes(data[:start + int((end - start) * cut)])
    records = read_spectra(path, kind="gaia-xp")
    assert _failures(records), "a cut VOTable must not read as a complete one"
    assert all(e.startswith(f"{path}[row ") for e in _failures(records))


def test_a_votable_with_an_altered_field_gives_rows_with_errors(shared_data, tmp_path):
    """Before: an altered FIELD arraysize gave no row and no message."""
    path = _edit(_real(shared_data, XP + ".xml", tmp_path), b'arraysize="*" datatype="double" '
                 b'name="bp_coefficients"', b'arraysize="3" datatype="double" '
                 b'name="bp_coefficients"')
    records = read_spectra(path, kind="gaia-xp")
    assert records and all(isinstance(r, ReadFailure) for r in records)
    assert all(e.startswith(f"{path}[row ") for e in _failures(records))


def _csv_with(shared_data: Path, tmp_path: Path, edits: dict[int, tuple[str, str]]) -> Path:
    header, first, _ = (shared_data / f"{XP}.csv").read_text().splitlines()
    lines = [header]
    for k in range(6):
        line = first.replace("5853498713190525696", str(1000 + k), 1)
        if k in edits:
            old, new = edits[k]
            line = line.replace(old, new, 1)
        lines.append(line)
    path = tmp_path / "cells.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_one_bad_cell_or_extra_field_fails_only_its_row(shared_data, tmp_path):
    """Before: the whole file (all its sources) was one 'unexpected ValueError' row."""
    path = _csv_with(shared_data, tmp_path, {1: ("1001", "abc"), 2: ("1002", "NaN"),
                                             3: ("(56947.03696840172", "(0x10"),
                                             4: ("1004,", "1004,7,")})
    records = read_spectra(path, kind="gaia-xp")
    assert [type(r).__name__ for r in records] == ["Spectrum", "ReadFailure", "ReadFailure",
                                                   "ReadFailure", "ReadFailure", "Spectrum"]
    assert [r.identifiers.get("source_id") for r in records] == [1000, None, None, 1003, None,
                                                                 1005]
    errors = _failures(records)
    assert errors == [f"{path}[row 1]: source_id 'abc' is not an integer",
                      f"{path}[row 2]: source_id 'NaN' is not an integer",
                      f"{path}[row 3]: bp_coefficients: '0x10' is not a number",
                      f"{path}[row 4]: line 6 has 27 fields; the header names 26 columns "
                      f"(a cut or altered line)"]


def test_a_generic_table_of_spectra_loses_only_its_bad_line(tmp_path, monkeypatch):
    from bossnet_onnx.readers import generic_table

    monkeypatch.setattr(generic_table, "CHUNK_LINES", 2)  # several chunks, one with the bad line
    lines = ["# %ECSV 1.0", "# ---", "# datatype:", "# - {name: wavelength, datatype: string, "
             "subtype: 'float64[5]'}", "# - {name: flux, datatype: string, subtype: "
             "'float64[5]'}", "# schema: astropy-2.0", "wavelength flux"]
    lines.extend(f'"[4000,4001,4002,4003,4004]" "[{k + 1},1,1,1,1]"' for k in range(5))
    lines[9] = '"[4000,4001,4002,4003,4004]" "[1,1,1'  # row 2: unterminated
    path = tmp_path / "spectra.ecsv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.warns(Warning, match="no ivar or error column"):
        records = read_spectra(path)
    assert [r.row for r in records] == [0, 1, 2, 3, 4]
    assert [type(r).__name__ for r in records] == ["Spectrum", "Spectrum", "ReadFailure",
                                                   "Spectrum", "Spectrum"]
    assert records[2].error.startswith(f"{path}[row 2]: cannot parse this line")
    assert records[4].flux[0] == 5


# ------------------------------------------------------------- item 9: scaled-integer images
def _scaled(hdu, kind: str) -> None:
    if kind == "int16":
        hdu.scale("int16", bscale=0.01, bzero=100.0)
    else:
        hdu.scale("int16", bzero=32768)  # uint16 as FITS stores it


@pytest.mark.parametrize("kind", ["int16", "uint16"])
def test_scaled_integer_images_are_read(tmp_path, kind):
    """Before: 'unexpected ValueError: Cannot load a memory-mapped image'."""
    wave = np.linspace(4000, 5000, 300)
    flux = (100 + 10 * np.sin(wave / 30)) if kind == "int16" else np.arange(300.0) + 40000
    hdu = fits.PrimaryHDU(flux.astype(np.float64) if kind == "int16" else flux.astype(np.uint16))
    hdu.header["CRVAL1"], hdu.header["CDELT1"] = 4000.0, float(wave[1] - wave[0])
    if kind == "int16":
        _scaled(hdu, kind)
    path = tmp_path / f"{kind}.fits"
    hdu.writeto(path)
    assert "BZERO" in fits.getheader(path) and fits.getheader(path)["BITPIX"] == 16
    with pytest.warns(Warning, match="no IVAR"):
        (spec,) = read_spectra(path)
    assert isinstance(spec, Spectrum)
    np.testing.assert_allclose(spec.flux, flux, atol=0.006)


def test_an_apstar_with_scaled_images_is_read(tmp_path):
    rng = np.random.default_rng(2)
    flux = 1000 + rng.normal(0, 10, (3, 8575))
    error = np.full((3, 8575), 5.0)
    path = write_apstar(tmp_path / "apStar-scaled.fits", flux, error)
    with fits.open(path) as hdul:
        hdul[1].scale("int16", bscale=0.05, bzero=1000.0)
        hdul[2].scale("int16", bscale=0.001, bzero=0.0)
        hdul[3].data = hdul[3].data.astype(np.uint16)
        hdul.writeto(tmp_path / "apStar-scaled-int.fits")
    records = read_spectra(tmp_path / "apStar-scaled-int.fits", kind="apogee")
    assert [type(r).__name__ for r in records] == ["Spectrum", "Spectrum"]
    np.testing.assert_allclose(records[0].flux, flux[0], atol=0.03)
    np.testing.assert_allclose(records[0].sigma, 5.0, atol=0.001)


# ----------------------------------------------- every input file yields at least one record
def test_a_file_whose_reader_finds_nothing_is_one_failed_record(tmp_path):
    from layouts import write_mwm

    path = write_mwm(tmp_path / "mwmStar-0.6.0-7.fits", [], [], kind="star")
    (record,) = read_spectra(path)
    assert isinstance(record, ReadFailure)
    assert record.error.startswith(f"{path}: holds no spectra of the kind the model reads (an "
                                   f"optical spectrum")
    assert os.path.basename(record.source) == "mwmStar-0.6.0-7.fits"


# --------------------------------------------------- SIGINT/SIGTERM honoured while reading
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_a_long_read_within_a_second(tmp_path, signum):
    """A CSV spectrum of 2.5 million lines (45 MB) takes well over ten seconds to read; a signal
    sent while it is read ends the run (exit 130) within a second. Before: astropy parsed the
    whole file in C, holding the signal until it finished (> 11 min for 100 MB)."""
    from onnx_fixtures import write_linear_model

    model = write_linear_model(tmp_path / "boss.onnx")
    path = tmp_path / "long.csv"
    wave = np.linspace(3600.0, 10000.0, 2_500_000)
    with open(path, "w") as fh:
        fh.write("wavelength,flux,ivar\n")
        np.savetxt(fh, np.column_stack([wave, np.ones_like(wave), np.ones_like(wave)]),
                   fmt="%.4f", delimiter=",")
    command = [sys.executable, "-c", "from bossnet_onnx.cli import app; app()", "predict",
               str(path), "-m", str(model), "--quiet", "-o", str(tmp_path / "out.fits")]
    # A suite started in the background by a non-interactive shell inherits SIGINT ignored,
    # and Python then keeps ignoring it (as a user's nohup'd job should): give the run the
    # default disposition, as a terminal would.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        lock = tmp_path / "out.fits.lock"  # taken once the run starts, before the model loads
        deadline = time.monotonic() + 120
        while not lock.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(1.0)  # model loaded (a tiny linear graph), reading the 2.5 million lines
        assert process.poll() is None, process.communicate()[1][-2000:]
        sent = time.perf_counter()
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
        latency = time.perf_counter() - sent
    finally:
        process.kill()
    print(f"{signal.Signals(signum).name}: exit {process.returncode} after {latency:.2f} s")
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    assert latency < 1.0
