"""The ORT-format copy: keyed on the model's content, proven before use, never fatal, private or
shared on purpose, bounded. Every check compares numbers with the `.onnx` loaded directly."""
from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from onnx_fixtures import write_linear_model

import bossnet_onnx.model.ort_cache as ort_cache
from bossnet_onnx.errors import ModelError
from bossnet_onnx.model.content import external_data_files, model_content_sha256
from bossnet_onnx.model.files import default_model_path
from bossnet_onnx.model.session import open_model, probe_inputs

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", str(folder))
    monkeypatch.delenv("BOSSNET_ONNX_SHARED_CACHE", raising=False)
    monkeypatch.delenv("BOSSNET_ONNX_CACHE_MAX_MB", raising=False)
    return folder


@pytest.fixture
def settled(monkeypatch):
    """Treat freshly written files as settled, so the content memo is written and used."""
    monkeypatch.setattr(ort_cache, "RACY_NS", -10 ** 11)


def memos(folder: Path) -> list[Path]:
    return sorted((folder / ort_cache.MEMO_DIR).glob("*.json"))


def direct_outputs(path, monkeypatch, x):
    """What the model file itself gives, with the cache switched off."""
    before = os.environ.get("BOSSNET_ONNX_CACHE")
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", "off")
    try:
        return open_model(path, provider="cpu", threads=1).run_physical(x)
    finally:
        monkeypatch.setenv("BOSSNET_ONNX_CACHE", before)


def assert_same(actual, expected):
    """Same weights: equal up to float reassociation between the mapped and direct sessions
    (a different model moves outputs by > 0.01)."""
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-3)


def entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.ort"))


def probe(n=3900) -> np.ndarray:
    return probe_inputs(n)


def test_copy_built_once_and_reused_with_identical_outputs(cache, tmp_path, monkeypatch):
    path = write_linear_model(tmp_path / "m.onnx", seed=8)
    mapped = open_model(path, provider="cpu")
    (copy,) = entries(cache)
    manifest = json.loads(copy.with_suffix(".json").read_text())
    assert manifest["model_sha256"] == model_content_sha256(path)
    stamp = copy.stat().st_mtime_ns
    again = open_model(path, provider="cpu")
    assert [p.stat().st_mtime_ns for p in entries(cache)] == [stamp]
    x = probe()
    assert_same(mapped.run_physical(x), direct_outputs(path, monkeypatch, x))
    np.testing.assert_array_equal(mapped.run_physical(x), again.run_physical(x))


def test_same_content_in_two_places_shares_one_entry(cache, tmp_path):
    a = write_linear_model(tmp_path / "a.onnx", seed=3)
    b = tmp_path / "elsewhere" / "b.onnx"
    b.parent.mkdir()
    shutil.copy(a, b)
    assert ort_cache.cached_ort_model(a) == ort_cache.cached_ort_model(b)
    assert len(entries(cache)) == 1


def test_planted_copy_is_never_used_bundled_model_gives_its_own_numbers(cache, tmp_path,
                                                                        monkeypatch):
    bundled = default_model_path()
    own = ort_cache.cached_ort_model(bundled)
    other = write_linear_model(tmp_path / "other.onnx", seed=5, scale=3.0)
    planted_from = ort_cache.cached_ort_model(other)
    x = probe()
    expected = direct_outputs(bundled, monkeypatch, x)
    # 1: another model's copy over the bundled model's entry (manifest left alone)
    shutil.copyfile(planted_from, own)
    model = open_model(bundled, provider="cpu", threads=1)
    assert_same(model.run_physical(x), expected)
    # 2: another model's copy and its manifest, both renamed to the bundled model's key
    shutil.copyfile(planted_from, own)
    shutil.copyfile(planted_from.with_suffix(".json"), own.with_suffix(".json"))
    model = open_model(bundled, provider="cpu", threads=1)
    assert_same(model.run_physical(x), expected)
    # 3: a copy without any manifest
    own.with_suffix(".json").unlink()
    shutil.copyfile(planted_from, own)
    model = open_model(bundled, provider="cpu", threads=1)
    assert_same(model.run_physical(x), expected)
    assert model.run_physical(x)[0, 1] != pytest.approx(
        open_model(other, provider="cpu").run_physical(x)[0, 1], rel=1e-3)


@pytest.mark.parametrize("replace", [False, True])
def test_reexported_model_with_same_size_and_mtime_runs_the_new_weights(cache, tmp_path,
                                                                         monkeypatch, settled,
                                                                         replace):
    path = write_linear_model(tmp_path / "m.onnx", seed=1, scale=2.0)
    x = probe()
    old = open_model(path, provider="cpu").run_physical(x)
    assert len(memos(cache)) == 1  # the memo is in play: it must notice the change
    before = path.stat()
    time.sleep(0.05)  # past one kernel timestamp tick
    if replace:  # rsync -a: a new file renamed over the old one
        write_linear_model(tmp_path / "new.onnx", seed=2, scale=2.0)
        os.replace(tmp_path / "new.onnx", path)
    else:  # cp -p over the file: rewritten in place
        write_linear_model(path, seed=2, scale=2.0)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    new = open_model(path, provider="cpu").run_physical(x)
    assert_same(new, direct_outputs(path, monkeypatch, x))
    assert np.max(np.abs(new - old)) > 0.01
    assert len(entries(cache)) == 2


def test_changed_external_data_file_is_noticed(cache, tmp_path, monkeypatch, settled):
    path = write_linear_model(tmp_path / "ext" / "m.onnx" if (tmp_path / "ext").mkdir() is None
                              else None, seed=1, scale=2.0, external_data=True)
    files = external_data_files(path)
    assert sorted(p.name for p in files) == ["W", "c", "mean", "std"]
    x = probe()
    old = open_model(path, provider="cpu").run_physical(x)
    assert len(memos(cache)) == 1
    weights = path.parent / "W"
    before = weights.stat()
    time.sleep(0.05)
    data = np.fromfile(weights, dtype=np.float32)
    (data[::-1] * 1.5).astype(np.float32).tofile(weights)
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    new = open_model(path, provider="cpu").run_physical(x)
    assert_same(new, direct_outputs(path, monkeypatch, x))
    assert np.max(np.abs(new - old)) > 0.01


def test_memo_spares_the_hash_only_while_every_file_is_unchanged(cache, tmp_path, monkeypatch):
    path = write_linear_model(tmp_path / "m.onnx", seed=4)
    first = ort_cache.cached_ort_model(path)
    assert memos(cache) == []  # written just now: too fresh to memoise (racy)
    monkeypatch.setattr(ort_cache, "RACY_NS", -10 ** 11)
    assert ort_cache.cached_ort_model(path) == first
    (memo,) = memos(cache)
    assert stat.S_IMODE(memo.stat().st_mode) == 0o600

    def no_hashing(model):
        raise AssertionError("hashed although nothing changed")

    monkeypatch.setattr(ort_cache, "model_content_sha256", no_hashing)
    assert ort_cache.cached_ort_model(path) == first  # answered from the memo
    time.sleep(0.05)
    os.utime(path)  # only the times: ctime moves, so the memo no longer vouches for the file
    with pytest.raises(AssertionError, match="hashed although"):
        ort_cache.content_sha256(path, cache)
    monkeypatch.undo()
    memo.write_text(json.dumps({"files": [], "sha256": "0" * 64}))  # a memo for other files
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", str(cache))
    assert ort_cache.content_sha256(path, cache) == model_content_sha256(path)


def test_memo_written_by_another_user_or_writable_is_ignored(cache, tmp_path, monkeypatch,
                                                             settled):
    path = write_linear_model(tmp_path / "m.onnx", seed=4)
    ort_cache.cached_ort_model(path)
    sha = ort_cache.content_sha256(path, cache)
    (memo,) = memos(cache)
    doc = json.loads(memo.read_text())
    doc["sha256"] = "f" * 64  # a forged memo
    memo.write_text(json.dumps(doc))
    os.chmod(memo, 0o666)
    assert ort_cache.content_sha256(path, cache) == sha
    if os.getuid() == 0:
        memo.write_text(json.dumps(doc))
        os.chmod(memo, 0o600)
        os.chown(memo, 65534, 65534)
        assert ort_cache.content_sha256(path, cache) == sha


def test_model_with_missing_external_file_is_not_cached_and_blamed_on_the_model(cache, tmp_path):
    (tmp_path / "ext").mkdir()
    path = write_linear_model(tmp_path / "ext" / "m.onnx", external_data=True)
    (path.parent / "W").unlink()
    assert model_content_sha256(path) is None
    assert ort_cache.cached_ort_model(path) is None
    with pytest.raises(ModelError, match=r"m\.onnx: external data W not found"):
        open_model(path, provider="cpu")


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage-same-size", "directory",
                                    "unreadable", "manifest-garbage", "manifest-other-onnxruntime",
                                    "manifest-huge"])
def test_damaged_entry_is_rebuilt_with_the_right_numbers(cache, tmp_path, monkeypatch, damage):
    path = write_linear_model(tmp_path / "m.onnx", seed=6, scale=2.0)
    x = probe()
    expected = direct_outputs(path, monkeypatch, x)
    copy = ort_cache.cached_ort_model(path)
    manifest = copy.with_suffix(".json")
    data = copy.read_bytes()
    if damage == "truncated":
        copy.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        copy.write_bytes(b"")
    elif damage == "garbage-same-size":
        copy.write_bytes(bytes(reversed(data)))
        st = copy.stat()
        os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif damage == "unreadable":  # (root still reads it: then it is re-proven by its bytes)
        os.chmod(copy, 0)
    elif damage == "directory":
        copy.unlink()
        copy.mkdir()
    elif damage == "manifest-garbage":
        manifest.write_text("{not json")
    elif damage == "manifest-other-onnxruntime":
        doc = json.loads(manifest.read_text())
        doc["onnxruntime"] = "0.0.1"
        manifest.write_text(json.dumps(doc))
    elif damage == "manifest-huge":
        manifest.write_text(json.dumps({"pad": "x" * 200_000}))
    model = open_model(path, provider="cpu", threads=1)
    assert_same(model.run_physical(x), expected)
    if damage != "directory":  # a directory in the way cannot be replaced: bypassed instead
        rebuilt = json.loads(manifest.read_text())
        assert rebuilt["model_sha256"] == model_content_sha256(path)
        assert copy.stat().st_size == rebuilt["ort_size"] > 0


def test_copy_that_does_not_load_falls_back_without_blaming_the_model(cache, tmp_path,
                                                                      monkeypatch):
    """Even an entry that passes every check but fails in onnxruntime is not the model's fault."""
    path = write_linear_model(tmp_path / "m.onnx", seed=6, scale=2.0)
    x = probe()
    monkeypatch.setattr(ort_cache, "_proven", lambda *args: True)
    copy = ort_cache.cached_ort_model(path)
    copy.write_bytes(b"\0" * 100)
    model = open_model(path, provider="cpu", threads=1)
    assert_same(model.run_physical(x), direct_outputs(path, monkeypatch, x))
    assert not copy.exists()  # the bad entry was removed


def test_copied_cache_entry_is_proven_by_its_bytes(cache, tmp_path):
    """A cache restored from a backup (new inode and ctime) is re-hashed, not thrown away."""
    path = write_linear_model(tmp_path / "m.onnx", seed=2)
    copy = ort_cache.cached_ort_model(path)
    data = copy.read_bytes()
    copy.unlink()
    copy.write_bytes(data)
    os.chmod(copy, 0o600)
    stamp = copy.stat().st_ino
    assert ort_cache.cached_ort_model(path) == copy
    assert copy.stat().st_ino == stamp  # used as it is, not rebuilt


def test_private_folder_and_files_are_user_only(cache, tmp_path):
    path = write_linear_model(tmp_path / "m.onnx")
    copy = ort_cache.cached_ort_model(path)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    for entry in (copy, copy.with_suffix(".json")):
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600
        assert entry.stat().st_uid == os.getuid()


def test_older_open_private_folder_is_tightened(cache, tmp_path):
    cache.mkdir()
    os.chmod(cache, 0o777)
    assert ort_cache.cached_ort_model(write_linear_model(tmp_path / "m.onnx")) is not None
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700


def test_group_writable_entry_in_private_folder_is_rebuilt(cache, tmp_path):
    path = write_linear_model(tmp_path / "m.onnx")
    copy = ort_cache.cached_ort_model(path)
    os.chmod(copy, 0o666)
    assert ort_cache.cached_ort_model(path) == copy
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600


def test_cache_off_and_unwritable_fall_back_to_the_onnx(tmp_path, monkeypatch):
    monkeypatch.delenv("BOSSNET_ONNX_SHARED_CACHE", raising=False)
    path = write_linear_model(tmp_path / "m.onnx")
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", "off")
    assert ort_cache.cache_dir() is None and ort_cache.cached_ort_model(path) is None
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("BOSSNET_ONNX_CACHE", str(blocker / "cache"))
    assert ort_cache.cached_ort_model(path) is None
    assert open_model(path, provider="cpu").metadata.model_name == "linear-test"


def test_default_location_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("BOSSNET_ONNX_CACHE")
    monkeypatch.delenv("BOSSNET_ONNX_SHARED_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert ort_cache.cache_dir() == tmp_path / "bossnet-onnx"
    monkeypatch.setenv("BOSSNET_ONNX_SHARED_CACHE", str(tmp_path / "shared"))
    assert ort_cache.cache_dir() == tmp_path / "shared"


def test_refused_models_leave_no_copies(cache, tmp_path):
    reversed_batch = write_linear_model(tmp_path / "rev.onnx", hostile="reverse", scale=2.0)
    with pytest.raises(ModelError, match="depend on its position or neighbours"):
        open_model(reversed_batch, provider="cpu")
    wrong_grid = write_linear_model(tmp_path / "w.onnx", n_pixels=4648)
    with pytest.raises(ModelError, match="is not a BOSS Net model"):
        open_model(wrong_grid, provider="cpu")
    no_stats = write_linear_model(tmp_path / "s.onnx", drop_keys=("bossnet.stats",))
    with pytest.raises(ModelError, match=r"'bossnet\.stats' is missing"):
        open_model(no_stats, provider="cpu")
    assert list(cache.iterdir()) == []


def test_size_bound_evicts_least_recently_used(cache, tmp_path, monkeypatch):
    paths = [write_linear_model(tmp_path / f"m{i}.onnx", seed=i) for i in range(4)]
    one = ort_cache.cached_ort_model(paths[0])
    entry_bytes = one.stat().st_size + one.with_suffix(".json").stat().st_size
    monkeypatch.setenv("BOSSNET_ONNX_CACHE_MAX_MB", str(2.5 * entry_bytes / 1e6))
    assert ort_cache.cache_limit_bytes() == int(2.5 * entry_bytes)
    second = ort_cache.cached_ort_model(paths[1])
    old = os.stat(one.with_suffix(".json")).st_mtime
    os.utime(second.with_suffix(".json"), (old - 100, old - 100))  # m1 used long ago
    os.utime(one.with_suffix(".json"), (old - 50, old - 50))
    assert ort_cache.cached_ort_model(paths[0]) == one  # using m0 marks it recently used
    third = ort_cache.cached_ort_model(paths[2])
    assert sorted(entries(cache)) == sorted([one, third])
    assert not second.with_suffix(".json").exists()
    total = sum(p.stat().st_size for p in cache.iterdir())
    assert total <= ort_cache.cache_limit_bytes()


def test_model_larger_than_the_bound_is_not_cached(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("BOSSNET_ONNX_CACHE_MAX_MB", "0.01")
    path = write_linear_model(tmp_path / "m.onnx")
    assert ort_cache.cached_ort_model(path) is None
    assert open_model(path, provider="cpu").metadata.model_name == "linear-test"
    assert entries(cache) == []


def test_default_bound_is_documented():
    assert ort_cache.DEFAULT_MAX_MB == 2048
    assert "BOSSNET_ONNX_CACHE_MAX_MB" in (REPO / "docs" / "reliability.md").read_text()


# ------------------------------------------------------------ shared on purpose
SECOND_USER = 65534  # nobody


def as_second_user(path: Path) -> dict:
    """Open `path` in a forked child that has become another user (the kernel then enforces
    that user's permissions), returning its outputs and the cache entry it used."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 1
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(SECOND_USER)
            os.setuid(SECOND_USER)
            model = open_model(path, provider="cpu", threads=1)
            doc = {"out": model.run_physical(probe()).tolist(),
                   "copy": str(ort_cache.cached_ort_model(path)), "uid": os.getuid()}
            os.write(write_fd, json.dumps(doc).encode())
            code = 0
        except BaseException as exc:  # report, never raise into the parent's pytest
            os.write(write_fd, json.dumps({"error": repr(exc)}).encode())
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    return json.loads(data)


@pytest.fixture
def shared_setup(monkeypatch):
    if os.getuid() != 0:
        pytest.skip("acting as a second user needs root")
    base = Path(tempfile.mkdtemp(prefix="bossnet-shared-"))
    os.chmod(base, 0o755)
    monkeypatch.setenv("BOSSNET_ONNX_SHARED_CACHE", str(base / "cache"))
    monkeypatch.delenv("BOSSNET_ONNX_CACHE_MAX_MB", raising=False)
    path = write_linear_model(base / "m.onnx", seed=9, scale=2.0)
    os.chmod(path, 0o644)
    yield base, path
    shutil.rmtree(base, ignore_errors=True)


def test_shared_cache_built_by_one_user_is_used_by_a_second(shared_setup, monkeypatch):
    base, path = shared_setup
    copy = ort_cache.cached_ort_model(path)
    folder = base / "cache"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o3775
    for entry in (copy, copy.with_suffix(".json")):
        assert stat.S_IMODE(entry.stat().st_mode) == 0o644
    stamp = copy.stat().st_ino
    result = as_second_user(path)
    assert result.get("uid") == SECOND_USER, result
    assert result["copy"] == str(copy)  # the first user's entry, proven and mapped
    assert copy.stat().st_ino == stamp and copy.stat().st_uid == 0
    assert_same(result["out"], direct_outputs(path, monkeypatch, probe()))


def test_shared_entry_the_second_user_cannot_read_is_bypassed(shared_setup, monkeypatch):
    _base, path = shared_setup
    copy = ort_cache.cached_ort_model(path)
    os.chmod(copy, 0o600)  # unreadable for the second user, and not replaceable by them
    result = as_second_user(path)
    assert result.get("uid") == SECOND_USER, result
    assert result["copy"] == "None"
    assert_same(result["out"], direct_outputs(path, monkeypatch, probe()))


def test_shared_folder_writable_without_sticky_bit_is_not_trusted(shared_setup):
    base, path = shared_setup
    folder = base / "cache"
    folder.mkdir()
    os.chmod(folder, 0o777)
    assert ort_cache.cached_ort_model(path) is None
    os.chmod(folder, 0o1777)
    assert ort_cache.cached_ort_model(path) is not None


def test_second_user_keeps_own_memo_in_the_shared_folder(shared_setup, settled):
    base, path = shared_setup
    ort_cache.cached_ort_model(path)
    ort_cache.cached_ort_model(path)  # settled: the first user's memo is written now
    memo_dir = base / "cache" / ort_cache.MEMO_DIR
    assert stat.S_IMODE(memo_dir.stat().st_mode) == 0o3775
    os.chmod(memo_dir, 0o3777)  # as an administrator would open it to every user of the node
    result = as_second_user(path)
    assert result.get("uid") == SECOND_USER, result
    owners = sorted(p.stat().st_uid for p in memo_dir.glob("*.json"))
    assert owners == [0, SECOND_USER]
    second = next(p for p in memo_dir.glob("*.json") if p.stat().st_uid == SECOND_USER)
    assert stat.S_IMODE(second.stat().st_mode) == 0o600


@pytest.mark.slow
def test_cold_start_benchmark_prints_its_figures(tmp_path):
    import re
    import subprocess
    import sys

    path = write_linear_model(tmp_path / "m.onnx", seed=3)
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "cold_start.py"), "--model",
                           str(path), "--workdir", str(tmp_path / "w"), "--repeat", "1"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for what in ("hash", "memo", "probe", "open", "open-rehash", "direct"):
        assert re.search(rf"^{what}\s+\d+\.\d+ s$", proc.stdout, re.M), proc.stdout
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(figures) == {"hash", "memo", "probe", "open", "open-rehash", "direct"}
    assert all(v > 0 for v in figures.values())


def test_other_users_entry_in_a_private_cache_is_rebuilt(cache, tmp_path, monkeypatch):
    if os.getuid() != 0:
        pytest.skip("giving a file to another user needs root")
    path = write_linear_model(tmp_path / "m.onnx", seed=6, scale=2.0)
    copy = ort_cache.cached_ort_model(path)
    for entry in (copy, copy.with_suffix(".json")):
        os.chown(entry, SECOND_USER, SECOND_USER)
    assert ort_cache.cached_ort_model(path) == copy
    assert copy.stat().st_uid == copy.with_suffix(".json").stat().st_uid == 0
    x = probe()
    assert_same(open_model(path, provider="cpu").run_physical(x),
                direct_outputs(path, monkeypatch, x))


def test_model_swapped_between_hashing_and_conversion_is_never_cached(cache, tmp_path,
                                                                       monkeypatch):
    """Another process replaces the model right after it was hashed: the copy built from the
    new bytes must not be stored under the old bytes' key (it would run B for A later)."""
    a = write_linear_model(tmp_path / "m.onnx", seed=1, scale=2.0)
    same_as_a = write_linear_model(tmp_path / "a2.onnx", seed=1, scale=2.0)
    b = write_linear_model(tmp_path / "b.onnx", seed=2, scale=2.0)
    real = ort_cache.model_content_sha256

    def hash_then_swap(model):
        sha = real(model)
        os.replace(b, model)
        return sha

    monkeypatch.setattr(ort_cache, "model_content_sha256", hash_then_swap)
    assert ort_cache.cached_ort_model(a) is None
    assert entries(cache) == []
    monkeypatch.setattr(ort_cache, "model_content_sha256", real)
    x = probe()
    got = open_model(same_as_a, provider="cpu", threads=1).run_physical(x)
    assert_same(got, direct_outputs(same_as_a, monkeypatch, x))
    assert np.max(np.abs(got - direct_outputs(a, monkeypatch, x))) > 0.01  # a now holds B


@pytest.mark.parametrize("plant", ["dev-zero", "fifo", "outside", "directory"])
def test_external_data_that_is_not_a_file_beside_the_model_is_refused_in_one_line(
        tmp_path, plant):
    """`info` and `predict` used to hang hashing /dev/zero or opening a FIFO."""
    import subprocess
    import sys
    import time as _time

    (tmp_path / "ext").mkdir()
    path = write_linear_model(tmp_path / "ext" / "m.onnx", external_data=True)
    weights = path.parent / "W"
    elsewhere = tmp_path / "W-elsewhere"
    shutil.move(weights, elsewhere)
    if plant == "dev-zero":
        weights.symlink_to("/dev/zero")
    elif plant == "fifo":
        os.mkfifo(weights)
    elif plant == "outside":
        weights.symlink_to(elsewhere)
    else:
        weights.mkdir()
    assert model_content_sha256(path) is None
    expected = {"dev-zero": "lies outside the model's folder", "fifo": "is a FIFO",
                "outside": "lies outside the model's folder", "directory": "is a folder"}[plant]
    env = dict(os.environ, BOSSNET_ONNX_CACHE=str(tmp_path / "cache"))
    started = _time.monotonic()
    out = subprocess.run([sys.executable, "-m", "bossnet_onnx", "info", str(path)],
                         capture_output=True, text=True, timeout=120, env=env)
    took = _time.monotonic() - started
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
    assert f"m.onnx: external data W {expected}" in out.stderr
    print(f"{plant}: refused in {took:.2f} s (process start included)")
