"""--shard K/N selection and `merge` checks (provenance, duplicates, missing shards)."""
from __future__ import annotations

import functools
import operator

import numpy as np
import pytest

from bossnet_onnx.errors import OutputError
from bossnet_onnx.outputs.catalogue import Result, build_table, read_catalogue, write_catalogue
from bossnet_onnx.run.sharding import Shard, merge_catalogues, parse_shard, select_shard

META = {"MODEL": "m", "MODELSHA": "a" * 64, "NDRAWS": 5, "SEED": 1, "PREPROC": "bossnet-log95-v1"}


def test_parse_shard():
    assert parse_shard("3/8") == Shard(3, 8)
    assert str(parse_shard(" 1 / 1 ")) == "1/1"
    for bad in ("0/4", "5/4", "x", "3", "1/0", ""):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


def test_shards_partition_sorted_inputs():
    paths = [f"f{i:02d}.fits" for i in (5, 1, 9, 3, 7, 2, 8)]
    shards = [select_shard(paths, Shard(k, 3)) for k in (1, 2, 3)]
    assert shards[0] == ["f01.fits", "f05.fits", "f09.fits"]
    assert sorted(functools.reduce(operator.iadd, shards, [])) == sorted(paths)
    assert select_shard(paths, None) == paths


def shard_table(tmp_path, k, n, sources, **meta):
    results = [Result(source=s, format="spec", hdu=1, labels={"teff": 5000.0 + i})
               for i, s in enumerate(sources)]
    table = build_table(results, meta={**META, "SHARD": f"{k}/{n}", **meta})
    return write_catalogue(table, tmp_path / f"part{k}.fits")


def test_merge_concatenates_and_keeps_provenance(tmp_path):
    a = shard_table(tmp_path, 1, 2, ["b.fits", "d.fits"])
    b = shard_table(tmp_path, 2, 2, ["a.fits", "c.fits"])
    merged = merge_catalogues([a, b], tmp_path / "all.fits")
    assert list(merged["path"]) == ["a.fits", "b.fits", "c.fits", "d.fits"]
    back = read_catalogue(tmp_path / "all.fits")
    assert back.meta["MODELSHA"] == "a" * 64 and back.meta["NSHARDS"] == 2
    assert "SHARD" not in back.meta


def test_merge_refuses_missing_duplicate_and_mixed(tmp_path):
    a = shard_table(tmp_path, 1, 3, ["a.fits"])
    b = shard_table(tmp_path, 2, 3, ["b.fits"])
    with pytest.raises(OutputError, match=r"missing shard\(s\) 3/3"):
        merge_catalogues([a, b], tmp_path / "all.fits")
    with pytest.raises(OutputError, match=r"shard\(s\) 1/3 given twice"):
        merge_catalogues([a, a, b], tmp_path / "all.fits")
    c = shard_table(tmp_path, 3, 3, ["a.fits"])
    with pytest.raises(OutputError, match=r"1 spectrum appears more than once, e.g. a.fits"):
        merge_catalogues([a, b, c], tmp_path / "all.fits")
    d = shard_table(tmp_path, 3, 3, ["c.fits"], SEED=2)
    with pytest.raises(OutputError, match="has SEED=2 but"):
        merge_catalogues([a, b, d], tmp_path / "all.fits")
    assert not (tmp_path / "all.fits").exists()


def test_sharded_runs_merge_to_the_unsharded_rows(tmp_path):
    import layouts
    from onnx_fixtures import write_linear_model
    from typer.testing import CliRunner

    from bossnet_onnx.cli import app
    from bossnet_onnx.run.stream import predict

    model = write_linear_model(tmp_path / "m.onnx", seed=3, scale=2.0)
    wave = layouts.boss_native_wavelength()
    files = []
    for i in range(5):
        flux = (12 + np.sin(wave / (60 + 7 * i))).astype(np.float32)
        path = tmp_path / f"spec-5000-59000-{i + 1:04d}.fits"
        layouts.write_spec(path, wave, flux, np.full(wave.size, 4.0, np.float32), plate=5000,
                           mjd=59000, fiberid=i + 1)
        files.append(str(path))
    runner = CliRunner()
    parts = []
    for k in (1, 2, 3):
        out = tmp_path / f"part{k}.fits"
        res = runner.invoke(app, ["predict", *files[::-1], "-m", str(model), "--draws", "4",
                                  "--seed", "7", "--shard", f"{k}/3", "-o", str(out)])
        assert res.exit_code == 0, res.output
        parts.append(str(out))
    assert [len(read_catalogue(p)) for p in parts] == [2, 2, 1]
    res = runner.invoke(app, ["merge", *parts, "-o", str(tmp_path / "all.fits")])
    assert res.exit_code == 0, res.output
    assert "merged 3 catalogues, 5 rows" in res.output
    merged = read_catalogue(tmp_path / "all.fits")
    whole = predict(files, model=model, draws=4, seed=7)
    assert list(merged["path"]) == list(whole["path"])
    for name in ("teff", "e_teff", "logg", "e_logg", "fe_h", "e_fe_h", "bn_v_r", "e_bn_v_r"):
        np.testing.assert_array_equal(merged[name], whole[name])
    res = runner.invoke(app, ["merge", *parts[:2], "-o", str(tmp_path / "bad.fits")])
    assert res.exit_code == 1 and "missing shard(s) 3/3" in res.output


def test_merge_checks_the_provenance_of_every_part(tmp_path):
    """The first part lacking the keys used to switch the check off: two models merged."""
    a = shard_table(tmp_path, 1, 2, ["a.fits"], MODEL=None, MODELSHA=None)
    b = shard_table(tmp_path, 2, 2, ["b.fits"], MODEL="other", MODELSHA="b" * 64)
    assert "MODEL" not in read_catalogue(a).meta
    with pytest.raises(OutputError, match=r"part2\.fits has MODEL='other' but .*part1\.fits "
                                          r"has no MODEL; shards of one catalogue"):
        merge_catalogues([a, b], tmp_path / "all.fits")
    with pytest.raises(OutputError, match=r"part1\.fits has no MODEL but .*part2\.fits has "
                                          r"MODEL='other'"):
        merge_catalogues([b, a], tmp_path / "all.fits")
    assert not (tmp_path / "all.fits").exists()


def test_a_header_claiming_a_billion_shards_is_one_line_in_bounded_memory(tmp_path):
    """SHARD = '1/1000000000' used to build a 10^9-element set (2.4 GB, then a traceback)."""
    import resource
    import subprocess
    import sys
    import time

    a = shard_table(tmp_path, 1, 10 ** 9, ["a.fits"])
    b = shard_table(tmp_path, 2, 10 ** 9, ["b.fits"])
    script = ("import resource, sys\n"
              "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
              "from bossnet_onnx.cli import main\n"
              "sys.argv = ['bossnet-onnx', 'merge', *sys.argv[1:]]\n"
              "main()\n")
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", script, str(a), str(b), "-o",
                          str(tmp_path / "all.fits")], capture_output=True, text=True,
                         timeout=120)
    took = time.monotonic() - started
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr[-2000:]
    assert ("missing shard(s) 3/1000000000, 4/1000000000, 5/1000000000, 6/1000000000, "
            "7/1000000000 and 999,999,993 more" in out.stderr)
    print(f"billion-shard header refused in {took:.2f} s under a 2 GiB address-space limit "
          f"(ru_maxrss of children {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss} KB)")


def test_merge_holds_one_part_at_a_time(tmp_path):
    """Peak memory of a merge: the merged table plus one part (was: every part plus their
    stack), then the writer's copy. Measured with tracemalloc, which sees numpy's buffers."""
    import tracemalloc

    n_parts, rows = 4, 1_500
    parts = [shard_table(tmp_path, k, n_parts, [f"s{k}-{i:06d}.fits" for i in range(rows)])
             for k in range(1, n_parts + 1)]
    merged_bytes = n_parts * sum(c.nbytes for c in read_catalogue(parts[0]).itercols())
    tracemalloc.start()
    merged = merge_catalogues(parts, tmp_path / "all.fits")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(merged) == rows * n_parts and len(set(merged["path"])) == rows * n_parts
    ratio = peak / merged_bytes
    print(f"merge of {n_parts} x {rows} rows: peak {peak / 1e6:.1f} MB, merged table "
          f"{merged_bytes / 1e6:.1f} MB, ratio {ratio:.2f}")
    assert ratio < 5.1  # measured: 5.92 before (all parts + their stack), 4.35 now; the rest
    # is the catalogue writer's serialised copy


SLURM = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "8"}


@pytest.mark.parametrize(("env", "expected"), [
    (SLURM, Shard(3, 8)),  # --array=1-8
    ({**SLURM, "SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_MIN": "0"}, Shard(1, 8)),  # 0-7
    ({**SLURM, "SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "0"}, Shard(8, 8)),
    ({"SLURM_ARRAY_TASK_ID": "14", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_COUNT": "8",
      "SLURM_ARRAY_TASK_STEP": "2"}, Shard(3, 8)),  # --array=10-24:2
])
def test_shard_auto_from_slurm_array(env, expected):
    assert parse_shard("auto", env) == expected
    assert parse_shard(" AUTO ", env) == expected


def test_shard_auto_tasks_of_an_array_partition_the_inputs():
    paths = [f"f{i:02d}.fits" for i in range(11)]
    env = {"SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "4"}
    picked = [select_shard(paths, parse_shard("auto", {**env, "SLURM_ARRAY_TASK_ID": str(t)}))
              for t in range(4)]
    assert sorted(functools.reduce(operator.iadd, picked, [])) == paths


def test_shard_auto_reads_the_process_environment(monkeypatch):
    for name, value in SLURM.items():
        monkeypatch.setenv(name, value)
    assert str(parse_shard("auto")) == "3/8"


@pytest.mark.parametrize(("env", "match"), [
    ({}, r"SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT not set.*--shard K/N"),
    ({"SLURM_ARRAY_TASK_ID": "2"}, "SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT not set"),
    ({**SLURM, "SLURM_ARRAY_TASK_ID": "x"}, "not whole numbers"),
    ({**SLURM, "SLURM_ARRAY_TASK_ID": "9"}, "array task 9 is not one of 8"),
    ({**SLURM, "SLURM_ARRAY_TASK_ID": "0"}, "array task 0 is not one of 8"),
    ({**SLURM, "SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_STEP": "2"}, "in steps of 2"),
])
def test_shard_auto_refuses_without_a_usable_array(env, match):
    with pytest.raises(ValueError, match=match):
        parse_shard("auto", env)


@pytest.mark.filterwarnings("ignore::bossnet_onnx.errors.DemoModelWarning")
def test_cli_shard_auto_writes_k_of_n_and_refuses_outside_an_array(tmp_path, monkeypatch):
    from pathlib import Path

    from typer.testing import CliRunner

    from bossnet_onnx.cli import app

    example = Path(__file__).resolve().parents[1] / "examples" / "spec-9999-60000-0042.fits"
    for name in (*SLURM, "SLURM_ARRAY_TASK_STEP"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "part.fits"
    refused = CliRunner().invoke(app, ["predict", str(example), "--shard", "auto", "--draws",
                                       "0", "-o", str(out)])
    assert refused.exit_code == 2 and "SLURM_ARRAY_TASK_ID" in refused.output
    assert not out.exists()
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "0")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "0")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "1")
    done = CliRunner().invoke(app, ["predict", str(example), "--shard", "auto", "--draws", "0",
                                    "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert read_catalogue(out).meta["SHARD"] == "1/1"
