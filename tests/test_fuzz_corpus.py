"""A seeded fuzz corpus: mutants of the real survey files in ../shared/data through the CLI.

Several hundred mutants (byte flips, truncations, header card edits, column dtype and shape
changes, NaN/inf injections, gzip variants) are made deterministically in tmp_path and run, in
a few mixed batches with the untouched real files, through the installed `bossnet-onnx`
command in a subprocess, as a user would. Whatever a mutant does, the run must:
- never print a traceback, and exit 0, 1, 2 or 130 (here: 0 or 1, a catalogue is written);
- write a row for every input file (nothing silently dropped), and every real, untouched file
  predicted without bit 0;
- name the file in every failure line on stderr and in every failed row's error text.
"""
from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

SEED = 2026
#: the real files BOSS Net reads (APOGEE and Gaia files are other networks' inputs)
SOURCES = ("sdss-spec-*.fits", "lamost-dr*-spec-*.fits", "lamost-dr*-spec-*.fits.gz")
MUTANTS_PER_SOURCE = 17  # 19 sources: 323 mutants
BATCHES = 3
CARD_KEYS = (b"NAXIS   ", b"NAXIS1  ", b"NAXIS2  ", b"BITPIX  ", b"TFIELDS ", b"PCOUNT  ",
             b"TFORM1  ", b"TFORM2  ", b"TFORM3  ", b"TTYPE1  ", b"TTYPE2  ", b"TDIM1   ",
             b"CRVAL1  ", b"CD1_1   ", b"COEFF0  ", b"COEFF1  ", b"GCOUNT  ", b"EXTNAME ")
CARD_VALUES = (b"0", b"-1", b"1", b"99999999", b"2147483648", b"'abc'", b"1.5", b"T", b"",
               b"'1000E'", b"'3E'", b"'A'", b"1E300", b"NAN", b"'(2,3)'", b"'FLUX'")


def _sources(shared: Path) -> list[Path]:
    found = sorted({p for pattern in SOURCES for p in shared.glob(pattern)})
    return [p for p in found if not p.name.startswith(("apogee", "gaia"))]


def _raw(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _header_end(data: bytes) -> int:
    for i in range(0, min(len(data), 2880 * 40), 80):
        if data[i:i + 8] == b"END     ":
            return i
    return min(len(data), 2880)


# --------------------------------------------------------------------------- byte mutations
def byte_flips(data: bytes, rng) -> bytes:
    out = bytearray(data)
    for pos in rng.integers(0, len(out), int(rng.integers(1, 40))):
        out[pos] ^= 1 << int(rng.integers(0, 8))
    return bytes(out)


def header_flips(data: bytes, rng) -> bytes:
    out = bytearray(data)
    end = _header_end(data)
    for pos in rng.integers(0, end, int(rng.integers(1, 6))):
        out[pos] = int(rng.integers(32, 127))
    return bytes(out)


def truncation(data: bytes, rng) -> bytes:
    return data[:int(rng.integers(1, len(data)))]


def block_truncation(data: bytes, rng) -> bytes:
    return data[:2880 * int(rng.integers(1, len(data) // 2880))]


def card_edit(data: bytes, rng) -> bytes:
    out = bytearray(data)
    cards = [i for i in range(0, len(data) - 80, 80) if data[i:i + 8] in CARD_KEYS
             and data[i + 8:i + 10] == b"= "]
    if not cards:
        return byte_flips(data, rng)
    for i in rng.choice(cards, size=min(len(cards), int(rng.integers(1, 3))), replace=False):
        value = CARD_VALUES[int(rng.integers(len(CARD_VALUES)))]
        out[i + 10:i + 80] = value.rjust(20).ljust(70)
    return bytes(out)


def card_delete(data: bytes, rng) -> bytes:
    cards = [i for i in range(0, len(data) - 80, 80) if data[i:i + 8] in CARD_KEYS]
    if not cards:
        return truncation(data, rng)
    i = int(rng.choice(cards))
    out = bytearray(data)
    out[i:i + 80] = b"COMMENT   deleted by the fuzz corpus".ljust(80)
    return bytes(out)


# ---------------------------------------------------------------------- structural mutations
def _rewrite(data: bytes, edit) -> bytes:
    """`data` with `edit` applied to its HDUs; only the primary, the spectrum's HDU and the one
    after it (identifiers) are kept, which is all a reader looks at and keeps astropy fast."""
    import io

    hdul = fits.open(io.BytesIO(data))
    i = _spectrum_hdu(hdul)
    hdul = fits.HDUList(list(hdul[:i + 2]))
    edit(hdul)
    buffer = io.BytesIO()
    hdul.writeto(buffer, output_verify="silentfix")
    return buffer.getvalue()


def _spectrum_hdu(hdul) -> int:
    for i, hdu in enumerate(hdul):
        if isinstance(hdu, fits.BinTableHDU):
            return i
    return 0


def _columns(table) -> dict:
    return {n.lower(): n for n in table.columns.names}


def dtype_change(data: bytes, rng) -> bytes:
    kind = ("int16", "float64", "text", "uint8", "bool")[int(rng.integers(5))]

    def edit(hdul):
        i = _spectrum_hdu(hdul)
        if i == 0:
            values = hdul[0].data
            hdul[0] = fits.PrimaryHDU({"int16": values.astype(np.int16),
                                       "float64": values.astype(np.float64),
                                       "uint8": values.astype(np.uint8),
                                       "bool": values.astype(np.uint8) % 2,
                                       "text": values.astype(np.int32)}[kind],
                                      header=hdul[0].header)
            return
        table = hdul[i]
        names = [n for n in table.columns.names if table.columns[n].format.repeat > 1]
        name = names[int(rng.integers(len(names)))] if names else table.columns.names[0]
        cols = []
        for col in table.columns:
            if col.name == name:
                values = np.asarray(table.data[name])
                if kind == "text":
                    col = fits.Column(name=name, format="12A",
                                      array=np.array([str(v)[:12] for v in values.ravel()[:1]]
                                                     * len(values)))
                else:
                    arr = values.astype({"int16": np.int16, "float64": np.float64,
                                         "uint8": np.uint8, "bool": np.bool_}[kind])
                    fmt = {"int16": "I", "float64": "D", "uint8": "B", "bool": "L"}[kind]
                    repeat = arr[0].size if arr.ndim > 1 else 1
                    col = fits.Column(name=name, format=f"{repeat}{fmt}", array=arr)
            cols.append(col)
        hdul[i] = fits.BinTableHDU.from_columns(cols, header=table.header)

    return _rewrite(data, edit)


def shape_change(data: bytes, rng) -> bytes:
    how = int(rng.integers(4))

    def edit(hdul):
        i = _spectrum_hdu(hdul)
        if i == 0:
            values = hdul[0].data
            new = (values[0], values[:, : values.shape[1] // 7], values[None], values[:1])[how]
            hdul[0] = fits.PrimaryHDU(new, header=hdul[0].header)
            return
        table = hdul[i]
        cols = _columns(table)
        target = cols.get("flux") or cols.get("ivar")
        out = []
        for col in table.columns:
            if col.name == target:
                values = np.asarray(table.data[target])
                if how == 0:  # shorter arrays than the other columns
                    values = values[..., : max(1, values.shape[-1] // 3)]
                elif how == 1:  # one value a row
                    values = values[..., :1]
                elif how == 2:  # 2-D cells
                    n = values.shape[-1] - values.shape[-1] % 2
                    values = values[..., :n].reshape((*values.shape[:-1], 2, n // 2))
                else:  # one more row than the table
                    out.append(col)
                    continue
                fmt = col.format[-1] if col.format[-1].isalpha() else "E"
                repeat = int(np.prod(values.shape[1:])) if values.ndim > 1 else 1
                dim = f"({values.shape[-1]},{values.shape[-2]})" if values.ndim == 3 else None
                col = fits.Column(name=target, format=f"{repeat}{fmt}", array=values, dim=dim)
            out.append(col)
        new = fits.BinTableHDU.from_columns(out, header=table.header)
        if how == 3:
            new = fits.BinTableHDU.from_columns(out, header=table.header, nrows=len(table.data) + 2)
        hdul[i] = new

    return _rewrite(data, edit)


def value_injection(data: bytes, rng) -> bytes:
    value = (np.nan, np.inf, -np.inf, 0.0, 1e38, -1e38)[int(rng.integers(6))]
    fraction = (0.01, 0.3, 1.0)[int(rng.integers(3))]

    def edit(hdul):
        i = _spectrum_hdu(hdul)
        if i == 0:
            values = np.array(hdul[0].data, dtype=np.float32)
            row = int(rng.integers(values.shape[0]))
            hit = rng.random(values.shape[1]) < fraction
            values[row, hit] = value
            hdul[0] = fits.PrimaryHDU(values, header=hdul[0].header)
            return
        table = hdul[i]
        names = [n for n in table.columns.names
                 if np.asarray(table.data[n]).dtype.kind == "f"]
        name = names[int(rng.integers(len(names)))]
        values = np.array(table.data[name])
        values[rng.random(values.shape) < fraction] = value
        table.data[name] = values

    return _rewrite(data, edit)


# ------------------------------------------------------------------------------------ gzip
def gzip_plain(data: bytes, rng) -> bytes:
    return gzip.compress(data, compresslevel=int(rng.integers(1, 4)), mtime=0)


def gzip_truncated(data: bytes, rng) -> bytes:
    packed = gzip.compress(data, compresslevel=1, mtime=0)
    return packed[:int(rng.integers(10, len(packed)))]


def gzip_flipped(data: bytes, rng) -> bytes:
    return byte_flips(gzip.compress(data, compresslevel=1, mtime=0), rng)


def gzip_two_members(data: bytes, rng) -> bytes:
    second = gzip.compress(data[:int(rng.integers(1, 9000))], compresslevel=1, mtime=0)
    return gzip.compress(data, compresslevel=1, mtime=0) + second


def gzip_trailing_garbage(data: bytes, rng) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0) + rng.bytes(int(rng.integers(1, 600)))


def gzip_of_gzip(data: bytes, rng) -> bytes:
    return gzip.compress(gzip.compress(data, compresslevel=1, mtime=0), compresslevel=1, mtime=0)


def gzip_small_bomb(data: bytes, rng) -> bytes:
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    zero = bytes(1 << 20)
    return b"".join([packer.compress(data)] + [packer.compress(zero)
                                               for _ in range(int(rng.integers(2, 6)))]
                    + [packer.flush()])


MUTATIONS = (byte_flips, header_flips, truncation, block_truncation, card_edit, card_delete,
             dtype_change, shape_change, value_injection, gzip_plain, gzip_truncated,
             gzip_flipped, gzip_two_members, gzip_trailing_garbage, gzip_of_gzip,
             gzip_small_bomb, card_edit)
GZIPPED = {"gzip_plain", "gzip_truncated", "gzip_flipped", "gzip_two_members",
           "gzip_trailing_garbage", "gzip_of_gzip", "gzip_small_bomb"}


def make_corpus(shared: Path, folder: Path, n_sources: int | None = None) -> list[Path]:
    """MUTANTS_PER_SOURCE mutants of every source file, the same bytes on every run."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for index, source in enumerate(_sources(shared)[:n_sources]):
        rng = np.random.default_rng([SEED, index])
        data = _raw(source)
        stem = source.name.split(".fits")[0]
        for k in range(MUTANTS_PER_SOURCE):
            mutate = MUTATIONS[k % len(MUTATIONS)]
            try:
                mutant = mutate(data, rng)
            except Exception:  # astropy refused to write this variant: a byte mutation instead
                mutant = byte_flips(data, rng)
            suffix = ".fits.gz" if mutate.__name__ in GZIPPED else ".fits"
            path = folder / f"{stem}~{k:02d}-{mutate.__name__}{suffix}"
            path.write_bytes(mutant)
            out.append(path)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not _sources(shared):
        pytest.skip(f"real survey spectra not available at {shared}")
    return make_corpus(shared, tmp_path_factory.mktemp("fuzz") / "corpus")


def test_corpus_is_deterministic_and_large_enough(corpus, shared_data, tmp_path):
    assert len(corpus) >= 300
    assert len({p.read_bytes() for p in corpus}) > 0.95 * len(corpus)
    again = make_corpus(shared_data, tmp_path / "again", n_sources=3)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in corpus[:len(again)]]


def _run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("bossnet-onnx", path=os.path.dirname(sys.executable))
    command = [exe] if exe else [sys.executable, "-c",
                                 "from bossnet_onnx.cli import app; app()"]
    return subprocess.run(command + args, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_every_mutant_gives_named_errors_and_keeps_the_good_files(corpus, shared_data,
                                                                  tmp_path):
    from bossnet_onnx.outputs.catalogue import read_catalogue

    good = [tmp_path / "good" / p.name for p in _sources(shared_data)]
    (tmp_path / "good").mkdir()
    for path, source in zip(good, _sources(shared_data)):
        shutil.copy(source, path)
    problems = []
    for b in range(BATCHES):
        batch = corpus[b::BATCHES]
        inputs = sorted(batch + good, key=lambda p: p.name)  # good files mixed in between
        out = tmp_path / f"batch{b}.fits"
        run = _run_cli(["predict", *map(str, inputs), "--draws", "2", "--seed", "3",
                        "--quiet", "-o", str(out)], tmp_path)
        if "Traceback" in run.stderr or run.returncode not in (0, 1):
            problems.append(f"batch {b}: exit {run.returncode}: {run.stderr[-2000:]}")
            continue
        table = read_catalogue(out)
        sources = [str(s) for s in table["path"]]
        problems.extend(f"{path.name}: no catalogue row" for path in inputs
                        if str(path) not in sources)
        for row in table:
            if row["result_flags"] & 1 and str(row["path"]) not in str(row["error"]):
                problems.append(f"row error does not name its file: {row['error']!r}")
            if Path(str(row["path"])) in good and row["result_flags"] & 1:
                problems.append(f"good file failed: {row['error']}")
            values = [float(np.ma.filled(row[c], np.nan))
                      for c in ("teff", "logg", "fe_h", "bn_v_r", "e_teff", "e_logg", "e_fe_h",
                                "e_bn_v_r")]  # the network's outputs (v_rad may be NaN)
            if not row["result_flags"] & 1 and not np.isfinite(values).all():
                problems.append(f"{row['path']}: a row without bit 0 has non-finite labels "
                                f"{values}")
        problems.extend(f"stderr line names no input file: {line!r}"
                        for line in run.stderr.splitlines()
                        if line.strip() and not line.startswith("warning: model ")  # demo
                        and not any(str(p) in line for p in inputs))
    assert problems == []
