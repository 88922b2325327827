"""Bounded memory: capped gzip decompression, spectra streamed one at a time, Monte-Carlo rows
in pieces, --draws limits, seeds that use every bit (issue 10, part 3)."""
from __future__ import annotations

import gc
import os
import re
import zlib

import numpy as np
import pytest
from astropy.io import fits
from onnx_fixtures import write_linear_model
from typer.testing import CliRunner

from bossnet_onnx.cli import app
from bossnet_onnx.errors import InputError
from bossnet_onnx.model.session import open_model
from bossnet_onnx.readers import iter_spectra, read_spectra
from bossnet_onnx.readers._fits import MAX_FITS_BYTES, MAX_TRAILING_BYTES
from bossnet_onnx.run import reading
from bossnet_onnx.run import stream as pipeline
from bossnet_onnx.run.options import RunOptions
from bossnet_onnx.run.rows import MIN_PIECE_ROWS, prepare_pieces, prepare_spectrum
from bossnet_onnx.run.stream import predict
from bossnet_onnx.science.uncertainty import MAX_DRAWS, check_draws, spectrum_rng

layouts = __import__("layouts")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return open_model(write_linear_model(tmp_path_factory.mktemp("m") / "lin.onnx", seed=3))


def _star(seed: int):
    rng = np.random.default_rng(seed)
    wave = layouts.boss_native_wavelength()
    flux = (20 + 5 * np.sin(wave / (150 + 20 * seed)) + rng.standard_normal(wave.size))
    return wave, flux.astype(np.float32), np.full(wave.size, 4.0, np.float32)


def _spec(path, seed: int):
    return layouts.write_spec(path, *_star(seed), plate=1000 + seed, mjd=59000, fiberid=seed + 1)


def _gzip_with_zeros(content: bytes, n_mib: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zero = bytes(1 << 20)
    return b"".join([packer.compress(content)] + [packer.compress(zero) for _ in range(n_mib)]
                    + [packer.flush()])


# ------------------------------------------------------------------ gzip bombs, file size caps
def test_gzip_bomb_of_zeros_after_a_valid_file_stops_early(tmp_path):
    spec = _spec(tmp_path / "s.fits", 1)
    bomb = tmp_path / "spec-bomb.fits.gz"
    bomb.write_bytes(_gzip_with_zeros(spec.read_bytes(), 400))  # 400 MiB of zeros, ~0.4 MB
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(InputError, match=rf"spec-bomb\.fits\.gz: .*more than "
                                         rf"{MAX_TRAILING_BYTES} bytes after the last HDU .*"
                                         rf"decompression bomb.*stopped decompressing at "
                                         rf"\d+ bytes"):
        read_spectra(bomb)


def test_gzip_whose_header_declares_more_than_the_cap_is_refused_at_once(tmp_path):
    header = fits.Header()
    for key, value in (("SIMPLE", True), ("BITPIX", -64), ("NAXIS", 2), ("NAXIS1", 20000),
                       ("NAXIS2", 20000)):
        header[key] = value
    bomb = tmp_path / "big.fits.gz"
    bomb.write_bytes(_gzip_with_zeros(header.tostring().encode(), 4))
    with pytest.raises(InputError, match=r"big\.fits\.gz: HDU at byte 0 declares 3200005440 "
                                         r"bytes, more than the 1024 MiB .*MAX_FITS_BYTES"):
        read_spectra(bomb)


def test_plain_file_over_the_cap_is_refused_without_reading(tmp_path, monkeypatch):
    from bossnet_onnx.readers import _fits

    spec = _spec(tmp_path / "s.fits", 2)
    monkeypatch.setattr(_fits, "MAX_FITS_BYTES", spec.stat().st_size - 1)
    with pytest.raises(InputError, match=rf"s\.fits: is {spec.stat().st_size} bytes, more "
                                         rf"than the 0 MiB"):
        read_spectra(spec)
    assert MAX_FITS_BYTES == 1 << 30


def test_gzipped_file_reads_as_the_plain_one_and_leaves_no_temporary_file(tmp_path):
    import gzip
    import os
    import tempfile

    spec = _spec(tmp_path / "s.fits", 3)
    packed = tmp_path / "s.fits.gz"
    packed.write_bytes(gzip.compress(spec.read_bytes()))
    before = set(os.listdir(tempfile.gettempdir()))
    (a,), (b,) = read_spectra(spec), read_spectra(packed)
    np.testing.assert_array_equal(a.flux, b.flux)
    assert set(os.listdir(tempfile.gettempdir())) - before == set()


# ------------------------------------------------------------- spectra one at a time, pieces
def test_many_spectra_are_read_one_at_a_time(tmp_path):
    rows = [{"flux": _star(i)[1], "ivar": _star(i)[2]} for i in range(6)]
    path = layouts.write_mwm(tmp_path / "mwmVisit-0.6.0-1.fits", rows, kind="visit")
    records = iter_spectra(path)
    first = next(records)  # built before the other rows are decoded
    assert first.row == 0 and [r.row for r in records] == [1, 2, 3, 4, 5]


def test_results_of_a_big_file_come_out_before_the_file_is_finished(tmp_path, model,
                                                                    monkeypatch):
    rows = [{"flux": _star(i)[1], "ivar": _star(i)[2]} for i in range(40)]
    path = layouts.write_mwm(tmp_path / "mwmVisit-0.6.0-2.fits", rows, kind="visit")
    monkeypatch.setattr(pipeline, "READ_AHEAD_PIECES", 4)
    made = []
    real = reading.prepare_pieces

    def counting(spec, *args):
        made.append(spec.row)
        yield from real(spec, *args)

    monkeypatch.setattr(reading, "prepare_pieces", counting)
    results = pipeline.stream(model, [str(path)], RunOptions(draws=2, seed=1, batch_size=3))
    first = next(results)
    # the first engine call (32 rows: 11 spectra of 3 rows) plus a read-ahead of 4 pieces:
    # far fewer than 40 spectra were prepared
    assert first.row == 0 and len(made) <= 17
    assert [r.row for r in results] == list(range(1, 40))


@pytest.mark.parametrize("piece_rows", [2, 7, 64])
def test_pieces_are_exactly_the_rows_made_at_once(tmp_path, model, piece_rows):
    (spec,) = read_spectra(_spec(tmp_path / "s.fits", 4))
    whole = prepare_spectrum(spec, model.metadata, 30, 9)
    pieces = list(prepare_pieces(spec, model.metadata, 30, 9, piece_rows))
    assert len(pieces) == -(-31 // piece_rows)
    assert [p.first_row for p in pieces] == list(range(0, 31, piece_rows))
    np.testing.assert_array_equal(np.concatenate([p.inputs for p in pieces]), whole.inputs)
    assert {p.quality for p in pieces} == {whole.quality}


def test_many_draws_are_run_in_pieces_with_the_same_result(tmp_path, model, monkeypatch):
    paths = [str(_spec(tmp_path / f"s{i}.fits", i)) for i in range(3)]
    reference = predict(paths, model=model, draws=150, seed=5, batch_size=1000)
    shapes = []
    real = model.run_physical
    monkeypatch.setattr(model, "run_physical", lambda x: shapes.append(x.shape[0]) or real(x))
    pieces = predict(paths, model=model, draws=150, seed=5, batch_size=8)
    assert max(shapes) == MIN_PIECE_ROWS  # never all 151 rows of a spectrum at once
    for name in ("teff", "e_teff", "e_logg", "e_fe_h", "e_v_rad"):
        np.testing.assert_allclose(pieces[name], reference[name], rtol=1e-6)


# --------------------------------------------------------------------------- --draws limits
@pytest.mark.parametrize("bad", [-1, 1, MAX_DRAWS + 1])
def test_draws_must_be_zero_or_two_to_max(bad, model):
    with pytest.raises(ValueError, match=rf"draws must be 0 \(no uncertainties\) or between 2 "
                                         rf"and {MAX_DRAWS}, got {bad}"):
        predict([], model=model, draws=bad)
    assert check_draws(0) == 0 and check_draws(2) == 2 and check_draws(MAX_DRAWS) == MAX_DRAWS


@pytest.mark.parametrize("bad", ["1", "-3", "10001"])
def test_cli_draws_usage_error_before_any_work(bad, tmp_path):
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "missing.fits"),
                                      "--draws", bad])
    assert result.exit_code == 2
    text = " ".join(re.sub("[\u2500-\u257f]", " ", result.output).split())  # no rich box
    assert "draws must be 0 (no uncertainties) or between 2 and 10000" in text
    assert "missing.fits" not in text  # refused before the inputs were looked at


# -------------------------------------------------------------------------------- seed width
def test_seeds_do_not_repeat_every_2_to_the_32():
    def draw(seed):
        return spectrum_rng(seed, "f.fits[HDU 1]").standard_normal(4)

    seeds = [0, 1, 2**32 - 1, 2**32, 2**32 + 1, 2**64, 2**64 + 1, -1, -(2**32), 2**200]
    values = [tuple(draw(s)) for s in seeds]
    assert len(set(values)) == len(seeds)
    # seeds below 2**32 keep the draws they always had
    legacy = np.random.SeedSequence([7, *[int.from_bytes(
        __import__("hashlib").sha256(b"f.fits[HDU 1]").digest()[i:i + 4], "little")
        for i in range(0, 16, 4)]])
    np.testing.assert_array_equal(draw(7), np.random.Generator(np.random.PCG64(legacy))
                                  .standard_normal(4))


def test_spectra_already_saved_are_skipped_within_a_file(tmp_path, model):
    """The interface for checkpoints inside a big file: rows named in `skip` are not run."""
    rows = [{"flux": _star(i)[1], "ivar": _star(i)[2]} for i in range(5)]
    path = str(layouts.write_mwm(tmp_path / "mwmVisit-0.6.0-3.fits", rows, kind="visit"))
    everything = list(pipeline.stream(model, [path], RunOptions(draws=2, seed=1)))
    rest = list(pipeline.stream(model, [path], RunOptions(draws=2, seed=1),
                                skip={(path, 1, 0), (path, 1, 1)}))
    assert [r.row for r in rest] == [2, 3, 4]
    # NaN-aware: rho_* are NaN with fewer than 3 draws
    np.testing.assert_equal([r.labels for r in rest], [r.labels for r in everything[2:]])


def _rss_mb(kind: str) -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(kind)) / 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux /proc needed")
def test_reading_a_big_table_keeps_neither_its_pages_nor_copies_of_its_columns(tmp_path):
    _, flux, ivar = _star(0)
    rows = [{"flux": flux, "ivar": ivar} for _ in range(400)]
    path = layouts.write_mwm(tmp_path / "mwmVisit-0.6.0-4.fits", rows, kind="visit")
    size_mb = path.stat().st_size / 2**20  # ~37 MB
    gc.collect()
    anon, mapped = _rss_mb("RssAnon"), _rss_mb("RssFile")
    n = 0
    for _record in iter_spectra(path):
        n += 1
        if n == 300:
            # pages read are given back as the reader goes
            assert _rss_mb("RssFile") - mapped < size_mb / 2
    del _record
    gc.collect()
    assert n == 400
    # closing used to copy every column read (astropy's FITS_rec.__del__): +37 MB here
    assert _rss_mb("RssAnon") - anon < size_mb / 4
