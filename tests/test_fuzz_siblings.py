"""A seeded fuzz corpus of the sibling networks' inputs: real APOGEE apStar files and Gaia XP
archive tables (CSV, ECSV, FITS, VOTable) from ../shared/data, mutated in tmp_path.

Over 300 mutants (byte flips, cuts, header card edits, gzip variants for FITS; cut lines, bad
cells, extra or missing fields, renamed or padded headers, broken tags for text tables) are
run, mixed with the untouched real files, through the installed `bossnet-onnx` command with
an APOGEE Net and a Gaia XP Net model (linear graphs carrying each member's metadata), as a
user would. Whatever a mutant does, the run must:
- exit 0 or 1 with a catalogue written, never print a traceback (one damaged file never stops
  the run: it is not "certainly another kind");
- give every input file at least one row, and the good files exactly their rows of a clean run;
- name the file in every failed row and every stderr line, and never call a failure
  "unexpected" (our label for a bug);
- stay within PEAK_RSS_BOUND of resident memory.
"""
from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx_fixtures import write_member_model
from test_fuzz_corpus import (
    block_truncation,
    byte_flips,
    card_delete,
    card_edit,
    gzip_flipped,
    gzip_trailing_garbage,
    gzip_truncated,
    header_flips,
    truncation,
)

SEED = 2323
APOGEE = ("apogee-apstar-*.fits",)
GAIA = ("gaia-xp-continuous-*",)
MUTANTS_PER_APSTAR = 34   # 3 files: 102 mutants
MUTANTS_PER_GAIA = 35     # 6 files: 210 mutants
PEAK_RSS_BOUND = 1.0e9    # bytes, for a run of ~160 files


def _sources(shared: Path, patterns: tuple[str, ...]) -> list[Path]:
    return sorted({p for pattern in patterns for p in shared.glob(pattern)})


# ------------------------------------------------------------------------- text mutations
def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _data_line(lines: list[bytes], rng) -> int:
    candidates = [i for i, ln in enumerate(lines) if ln and not ln.startswith((b"#", b"<"))]
    return int(rng.choice(candidates[1:] or candidates or [0]))


def cut_line(data: bytes, rng) -> bytes:
    """The file ends inside a row (or inside the header)."""
    return data[:int(rng.integers(1, len(data)))]


def bad_cell(data: bytes, rng) -> bytes:
    """One cell of one row replaced by something that is not its type."""
    lines = _lines(data)
    i = _data_line(lines, rng)
    bad = (b"abc", b"NaN", b"0x10", b"", b"1e999", b'"', b"-", b"inf")[int(rng.integers(8))]
    cells = lines[i].split(b",")
    k = int(rng.integers(len(cells)))
    cells[k] = bad
    lines[i] = b",".join(cells)
    return b"\n".join(lines)


def extra_field(data: bytes, rng) -> bytes:
    lines = _lines(data)
    i = _data_line(lines, rng)
    lines[i] = lines[i] + (b",7" if rng.random() < 0.5 else b",")
    return b"\n".join(lines)


def missing_field(data: bytes, rng) -> bytes:
    lines = _lines(data)
    i = _data_line(lines, rng)
    lines[i] = lines[i].rsplit(b",", 1)[0]
    return b"\n".join(lines)


def renamed_column(data: bytes, rng) -> bytes:
    name = (b"source_id", b"bp_coefficients", b"rp_coefficients", b"bp_coefficient_errors",
            b"rp_coefficient_correlations")[int(rng.integers(5))]
    return data.replace(name, name[:-1] + b"X", int(rng.integers(1, 3)))


def padded_header(data: bytes, rng) -> bytes:
    """A valid file whose header passes 64 KiB (a long description or a comment block)."""
    pad = int(rng.integers(70_000, 200_000))
    if data.startswith(b"# %ECSV"):
        at = data.index(b"\n# ---") + 1
        return data[:at] + b"# " + b"c" * pad + b"\n" + data[at:]
    if data.lstrip().startswith(b"<?xml") or b"<VOTABLE" in data[:2000]:
        at = data.index(b"</DESCRIPTION>")
        return data[:at] + b"d" * pad + data[at:]
    # a plain CSV has no header block: one long extra column name (every row then fails)
    return data.replace(b"\n", b',"' + b"p" * pad + b'"\n', 1)


def deleted_line(data: bytes, rng) -> bytes:
    lines = _lines(data)
    del lines[int(rng.integers(len(lines)))]
    return b"\n".join(lines)


def broken_tag(data: bytes, rng) -> bytes:
    tags = (b"</STREAM>", b"</TABLEDATA>", b"<DATA>", b"</FIELD>", b"<FIELD ", b"arraysize=\"*\"",
            b"datatype=\"double\"", b"datatype=\"float\"", b"datatype=\"long\"")
    tag = tags[int(rng.integers(len(tags)))]
    return data.replace(tag, tag[: max(1, len(tag) // 2)] + b"~", 1)


def dense_line(data: bytes, rng) -> bytes:
    """One line of 40,000 fields (160 KB) in place of a row."""
    lines = _lines(data)
    i = _data_line(lines, rng)
    lines[i] = b",".join([b"1.5"] * 40_000)
    return b"\n".join(lines)


def text_gzip(data: bytes, rng) -> bytes:
    return gzip.compress(bad_cell(data, rng), compresslevel=1, mtime=0)


def fits_gzip(data: bytes, rng) -> bytes:
    return gzip.compress(card_edit(data, rng), compresslevel=1, mtime=0)


TEXT_MUTATIONS = (cut_line, bad_cell, extra_field, missing_field, renamed_column, padded_header,
                  deleted_line, broken_tag, byte_flips, dense_line, text_gzip, gzip_truncated)
FITS_MUTATIONS = (byte_flips, header_flips, truncation, block_truncation, card_edit, card_delete,
                  fits_gzip, gzip_truncated, gzip_flipped, gzip_trailing_garbage, card_edit)
GZIPPED = {"fits_gzip", "gzip_truncated", "gzip_flipped", "gzip_trailing_garbage", "text_gzip"}


def _suffix(source: Path) -> str:
    return "".join(source.suffixes[-1:])


def make_corpus(shared: Path, folder: Path) -> dict[str, list[Path]]:
    """{'apogee': mutants, 'gaia-xp': mutants}: the same bytes on every run."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[Path]] = {"apogee": [], "gaia-xp": []}
    plan = [("apogee", s, MUTANTS_PER_APSTAR) for s in _sources(shared, APOGEE)] + \
        [("gaia-xp", s, MUTANTS_PER_GAIA) for s in _sources(shared, GAIA)]
    for index, (member, source, count) in enumerate(plan):
        rng = np.random.default_rng([SEED, index])
        data = source.read_bytes()
        suffix = _suffix(source)
        mutations = FITS_MUTATIONS if suffix == ".fits" else TEXT_MUTATIONS
        stem = source.name[:-len(suffix)]
        for k in range(count):
            mutate = mutations[k % len(mutations)]
            try:
                mutant = mutate(data, rng)
            except Exception:  # a mutation that does not apply to this file: flip bytes instead
                mutant = byte_flips(data, rng)
            gz = ".gz" if mutate.__name__ in GZIPPED else ""
            path = folder / f"{stem}~{k:02d}-{mutate.__name__}{suffix}{gz}"
            path.write_bytes(mutant)
            out[member].append(path)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not _sources(shared, APOGEE) or not _sources(shared, GAIA):
        pytest.skip(f"real APOGEE and Gaia files not available at {shared}")
    return make_corpus(shared, tmp_path_factory.mktemp("fuzz-siblings") / "corpus")


def test_corpus_is_deterministic_and_large_enough(corpus, tmp_path):
    mutants = corpus["apogee"] + corpus["gaia-xp"]
    assert len(mutants) >= 300
    assert len({p.read_bytes() for p in mutants}) > 0.9 * len(mutants)
    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    again = make_corpus(shared, tmp_path / "again")
    assert [p.read_bytes() for p in again["gaia-xp"][:40]] == \
        [p.read_bytes() for p in corpus["gaia-xp"][:40]]


_PEAK = ("import atexit, sys\n"
         "def peak():\n"
         "    line = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
         "    sys.stderr.write('PEAK ' + line.split()[1] + '\\n')\n"
         "atexit.register(peak)\n"
         "from bossnet_onnx.cli import app\n"
         "sys.argv = ['bossnet-onnx'] + sys.argv[1:]\n"
         "app()\n")


def _run(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, int]:
    run = subprocess.run([sys.executable, "-c", _PEAK, *args], cwd=cwd, capture_output=True,
                         text=True, timeout=600)
    peak = int(run.stderr.rsplit("PEAK ", 1)[1].split()[0]) * 1024 if "PEAK " in run.stderr \
        else 0
    run.stderr = run.stderr.rsplit("PEAK ", 1)[0]
    return run, peak


def _rows(table, path: Path) -> list[tuple]:
    return [(int(r["hdu"]), int(r["row"]), int(r["result_flags"]) & 1) for r in table
            if str(r["path"]) == str(path)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize("member", ["apogee", "gaia-xp"])
def test_every_sibling_mutant_is_its_own_row_and_the_good_files_are_kept(corpus, shared_data,
                                                                       tmp_path, member):
    from bossnet_onnx.outputs.catalogue import read_catalogue

    model = write_member_model(tmp_path / f"{member}.onnx", member)
    (tmp_path / "good").mkdir()
    good = []
    for source in _sources(shared_data, APOGEE if member == "apogee" else GAIA):
        good.append(tmp_path / "good" / source.name)
        shutil.copy(source, good[-1])
    clean_out = tmp_path / "clean.fits"
    clean, _ = _run(["predict", *map(str, good), "-m", str(model), "--draws", "2", "--quiet",
                     "-o", str(clean_out)], tmp_path)
    assert "Traceback" not in clean.stderr and clean.returncode in (0, 1), clean.stderr[-2000:]
    expected = read_catalogue(clean_out)

    inputs = sorted(corpus[member] + good, key=lambda p: p.name)  # good files mixed in between
    out = tmp_path / "fuzz.fits"
    run, peak = _run(["predict", *map(str, inputs), "-m", str(model), "--draws", "2", "--quiet",
                      "-o", str(out)], tmp_path)
    print(f"{member}: {len(inputs)} files, exit {run.returncode}, peak RSS {peak / 1e6:.0f} MB")
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert run.returncode in (0, 1), run.stderr[-3000:]
    assert 0 < peak < PEAK_RSS_BOUND
    table = read_catalogue(out)
    problems = []
    paths = [str(p) for p in table["path"]]
    problems.extend(f"{p.name}: no catalogue row" for p in inputs if str(p) not in paths)
    problems.extend(f"{path.name}: rows {_rows(table, path)} instead of "
                    f"{_rows(expected, path)}" for path in good
                    if _rows(table, path) != _rows(expected, path))
    for row in table:
        error = str(row["error"])
        if row["result_flags"] & 1 and str(row["path"]) not in error:
            problems.append(f"row error does not name its file: {error[:300]!r}")
        if "unexpected" in error:
            problems.append(f"a bug, not bad input: {error[:300]!r}")
        if len(error) > 2000:
            problems.append(f"an error of {len(error)} characters: {error[:200]!r}")
    problems.extend(f"stderr line names no input file: {line[:300]!r}"
                    for line in run.stderr.splitlines()
                    if line.strip() and not line.startswith("warning: model ")  # demo model
                    and not any(str(p) in line for p in inputs))
    assert problems == []
    assert os.path.getsize(out) > 0
