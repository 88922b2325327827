"""downloads: a real loopback HTTP server, faults injected, every byte verified by blob id."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from http_fixture import Fault, FileServer

from bossnet_onnx.errors import DownloadError, VerificationError
from bossnet_onnx.model.downloads import (
    DEFAULT_MODELS_URL,
    MODELS_URL_ENV,
    RetryPolicy,
    copy_verified,
    fetch_verified,
    file_url,
    models_url,
)
from bossnet_onnx.model.registry import git_blob_id

COMMIT = "0123456789abcdef0123456789abcdef01234567"
PATH = f"/{COMMIT}/bossnet/model_x/model_chunk_0"
FAST = RetryPolicy(timeout=2.0, attempts=4, backoff=0.0)


def blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture
def payload() -> bytes:
    return np.random.default_rng(5).bytes(300_000)


@pytest.fixture
def server(payload):
    srv = FileServer(files={PATH: payload}).start()
    yield srv
    srv.stop()


def test_git_blob_id_matches_git(tmp_path):
    # The ids git itself prints (`git hash-object`) for an empty file and for "hello\n".
    (tmp_path / "e").write_bytes(b"")
    (tmp_path / "h").write_bytes(b"hello\n")
    assert git_blob_id(tmp_path / "e") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert git_blob_id(tmp_path / "h") == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_models_url_default_and_mirror(monkeypatch):
    monkeypatch.delenv(MODELS_URL_ENV, raising=False)
    assert models_url() == DEFAULT_MODELS_URL
    monkeypatch.setenv(MODELS_URL_ENV, "http://mirror.example/bossnet/")
    assert models_url() == "http://mirror.example/bossnet"
    assert file_url(models_url(), COMMIT, "a b/c") == f"http://mirror.example/bossnet/{COMMIT}/a%20b/c"


def test_fetch_verifies_and_installs(server, payload, tmp_path):
    dest = tmp_path / "model_chunk_0"
    got = fetch_verified(server.url + PATH, dest, blob(payload), policy=FAST)
    assert dest.read_bytes() == payload and got.size == len(payload)
    assert got.transferred == len(payload) and got.resumed_from == 0
    assert not (tmp_path / "model_chunk_0.part").exists()
    assert server.ranges(PATH) == [None]


def test_truncated_body_is_resumed_with_a_range_request(server, payload, tmp_path):
    server.add_fault(PATH, Fault(cut_after=100_000))
    dest = tmp_path / "model_chunk_0"
    got = fetch_verified(server.url + PATH, dest, blob(payload), policy=FAST)
    assert dest.read_bytes() == payload
    assert server.ranges(PATH) == [None, "bytes=100000-"]
    assert got.attempts == 2 and got.transferred == len(payload)


def test_partial_file_from_an_earlier_run_is_resumed(server, payload, tmp_path):
    dest = tmp_path / "model_chunk_0"
    (tmp_path / "model_chunk_0.part").write_bytes(payload[:123_456])
    got = fetch_verified(server.url + PATH, dest, blob(payload), policy=FAST)
    assert server.ranges(PATH) == ["bytes=123456-"]
    assert got.resumed_from == 123_456 and got.transferred == len(payload) - 123_456
    assert dest.read_bytes() == payload


def test_server_ignoring_range_restarts_cleanly(server, payload, tmp_path):
    (tmp_path / "model_chunk_0.part").write_bytes(payload[:1000])
    server.add_fault(PATH, Fault(ignore_range=True))
    fetch_verified(server.url + PATH, tmp_path / "model_chunk_0", blob(payload), policy=FAST)
    assert (tmp_path / "model_chunk_0").read_bytes() == payload


def test_whole_part_left_behind_gets_416_and_is_verified(server, payload, tmp_path):
    (tmp_path / "model_chunk_0.part").write_bytes(payload)
    fetch_verified(server.url + PATH, tmp_path / "model_chunk_0", blob(payload), policy=FAST)
    assert (tmp_path / "model_chunk_0").read_bytes() == payload


def test_server_errors_are_retried_with_backoff(server, payload, tmp_path):
    server.add_fault(PATH, Fault(status=500), Fault(status=503))
    waits = []
    policy = RetryPolicy(timeout=2.0, attempts=4, backoff=0.5)
    fetch_verified(server.url + PATH, tmp_path / "c", blob(payload), policy=policy,
                   sleep=waits.append)
    assert waits == [0.5, 1.0]
    assert (tmp_path / "c").read_bytes() == payload


def test_persistent_server_error_gives_one_line(server, payload, tmp_path):
    server.add_fault(PATH, *[Fault(status=500)] * 4)
    with pytest.raises(DownloadError, match=r"model_chunk_0: HTTP 500 .*after 4 attempts.*"
                                            r"BOSSNET_ONNX_MODELS_URL") as err:
        fetch_verified(server.url + PATH, tmp_path / "c", blob(payload), policy=FAST)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "c").exists()


def test_404_is_not_retried(server, payload, tmp_path):
    url = server.url + f"/{COMMIT}/missing"
    with pytest.raises(DownloadError, match=r"/missing: HTTP 404 .*not at this address"):
        fetch_verified(url, tmp_path / "c", blob(payload), policy=FAST)
    assert len(server.ranges(f"/{COMMIT}/missing")) == 1


def test_slow_server_times_out_then_succeeds(server, payload, tmp_path):
    server.add_fault(PATH, Fault(delay=1.5))
    policy = RetryPolicy(timeout=0.5, attempts=3, backoff=0.0)
    got = fetch_verified(server.url + PATH, tmp_path / "c", blob(payload), policy=policy)
    assert got.attempts == 2 and (tmp_path / "c").read_bytes() == payload


def test_stall_mid_body_keeps_the_part_and_resumes(server, payload, tmp_path):
    server.add_fault(PATH, Fault(stall=1.5))
    policy = RetryPolicy(timeout=0.5, attempts=3, backoff=0.0)
    fetch_verified(server.url + PATH, tmp_path / "c", blob(payload), policy=policy)
    ranges = server.ranges(PATH)
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert (tmp_path / "c").read_bytes() == payload


def test_server_down_names_the_url(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{COMMIT}/x"
    with pytest.raises(DownloadError, match=rf"127.0.0.1:{port}/{COMMIT}/x: cannot connect"):
        fetch_verified(url, tmp_path / "c", "0" * 40, policy=RetryPolicy(1.0, 2, 0.0))


def test_flipped_byte_is_refused_and_deleted(server, payload, tmp_path):
    bad = bytearray(payload)
    bad[1234] ^= 0x01
    server.files[PATH] = bytes(bad)
    expected = blob(payload)
    with pytest.raises(VerificationError) as err:
        fetch_verified(server.url + PATH, tmp_path / "model_chunk_0", expected, policy=FAST)
    text = str(err.value)
    assert "model_chunk_0" in text and expected in text and blob(bytes(bad)) in text
    assert list(tmp_path.iterdir()) == []


def test_copy_verified_from_a_clone(tmp_path, payload):
    src = tmp_path / "clone_file"
    src.write_bytes(payload)
    dest = tmp_path / "out"
    copy_verified(src, dest, blob(payload))
    assert dest.read_bytes() == payload
    with pytest.raises(VerificationError, match=r"clone_file: git blob id .*check out the "
                                                r"registry's commit"):
        copy_verified(src, tmp_path / "out2", "1" * 40)
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out2.part").exists()


FULL_DISK = """
import resource, signal, sys
from bossnet_onnx.errors import DownloadError
from bossnet_onnx.model.downloads import RetryPolicy, fetch_verified
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
try:
    fetch_verified(sys.argv[1], sys.argv[2], sys.argv[3], policy=RetryPolicy(timeout=2.0))
except DownloadError as exc:
    print(exc)
"""


def test_full_disk_is_one_line(server, payload, tmp_path):
    # A file-size limit makes every write past 64 KiB fail, as on a full disk (a link to
    # /dev/full would be refused as a planted link now).
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", FULL_DISK, server.url + PATH,
                          str(tmp_path / "c"), blob(payload)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.count("\n") == 1, out.stderr
    assert "c.part: cannot write (File too large)" in out.stdout
    assert "the part already fetched is kept" in out.stdout


def test_planted_part_link_is_never_written_through(server, payload, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (tmp_path / "c.part").symlink_to(victim)
    got = fetch_verified(server.url + PATH, tmp_path / "c", blob(payload), policy=FAST)
    assert got.path.read_bytes() == payload and got.resumed_from == 0
    assert victim.read_bytes() == b"precious"
    # A link in the clone's place is read (it is only read); one as the part is not used.
    (tmp_path / "d.part").symlink_to(victim)
    copy_verified(got.path, tmp_path / "d", blob(payload))
    assert victim.read_bytes() == b"precious" and (tmp_path / "d").read_bytes() == payload


@pytest.mark.parametrize("how", ["no-length", "long-length"])
def test_endless_body_stops_at_the_pinned_size_and_leaves_no_part(tmp_path, how):
    import time

    small = b"#" * 150 + b"\n"  # 151 bytes, like a model_args.yaml
    srv = FileServer(files={PATH: small, PATH + "-long": small + b"\0" * (64 << 20)}).start()
    try:
        if how == "no-length":  # the file, then garbage without end and no Content-Length
            srv.add_fault(PATH, Fault(endless=True))
        url = srv.url + PATH + ("-long" if how == "long-length" else "")
        started = time.monotonic()
        with pytest.raises(DownloadError, match=r"sends more than the 151 bytes the registry "
                                                r"pins .*part was deleted"):
            fetch_verified(url, tmp_path / "a", blob(small), policy=FAST, max_bytes=len(small))
        took = time.monotonic() - started
        assert not (tmp_path / "a.part").exists() and not (tmp_path / "a").exists()
        assert took < 5, took
        print(f"endless body ({how}) refused after {took:.3f} s, 0 bytes kept")
        # the next pull, from a good server, is not spoiled by what the bad one sent
        got = fetch_verified(srv.url + PATH, tmp_path / "a", blob(small), policy=FAST,
                             max_bytes=len(small))
        assert got.path.read_bytes() == small
    finally:
        srv.stop()


def test_trickling_server_meets_the_overall_deadline(tmp_path):
    import time

    data = bytes(range(200))
    srv = FileServer(files={PATH: data}).start()
    srv.add_fault(PATH, *[Fault(trickle=2.0)] * 3)  # 1 byte / 2 s: each read is in time
    slow = RetryPolicy(timeout=5.0, attempts=3, backoff=0.0, deadline_slack=3.0,
                       min_rate=1000.0)  # 3 s + 200 B at 1 kB/s = 3.2 s for this file
    try:
        started = time.monotonic()
        with pytest.raises(DownloadError, match=r"not finished within 3 s .*too slow.*bytes "
                                                r"fetched are kept"):
            fetch_verified(srv.url + PATH, tmp_path / "t", blob(data), policy=slow,
                           max_bytes=len(data))
        took = time.monotonic() - started
        print(f"trickle stopped after {took:.2f} s (deadline 3.2 s)")
        assert 3.0 <= took < 6.5, took
        kept = (tmp_path / "t.part").stat().st_size
        assert 1 <= kept <= 3
        # the part is resumed from a good server
        got = fetch_verified(srv.url + PATH, tmp_path / "t", blob(data), policy=FAST,
                             max_bytes=len(data))
        assert got.resumed_from == kept and got.path.read_bytes() == data
    finally:
        srv.stop()
