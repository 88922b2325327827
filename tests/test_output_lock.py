"""One writer per output: the lock names its holder, dies with its process, is released on
every exit path."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from bossnet_onnx.errors import OutputLockedError
from bossnet_onnx.run.lock import OutputLock, lock_path

HOLDER = """
import sys, time
from bossnet_onnx.run.lock import OutputLock
with OutputLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def hold_in_subprocess(output) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(output)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_lock_file_names_the_holder_and_goes_away(tmp_path):
    out = tmp_path / "cat.fits"
    assert lock_path(out) == tmp_path / "cat.fits.lock"
    with OutputLock(out):
        info = json.loads(lock_path(out).read_text())
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
        assert info["started"].endswith("Z")
    assert not lock_path(out).exists()


def test_lock_released_when_the_body_raises(tmp_path):
    out = tmp_path / "cat.fits"
    with pytest.raises(ZeroDivisionError), OutputLock(out):
        raise ZeroDivisionError
    assert not lock_path(out).exists()
    with OutputLock(out):
        pass


def test_second_writer_refused_at_once_naming_the_holder(tmp_path):
    out = tmp_path / "cat.fits"
    proc = hold_in_subprocess(out)
    try:
        t0 = time.monotonic()
        with pytest.raises(OutputLockedError,
                           match=rf"cat\.fits is being written by pid {proc.pid} on "
                                 rf"{socket.gethostname()} since .*Z \(lock .*cat\.fits\.lock\); "
                                 rf"wait for that run"):
            OutputLock(out).acquire()
        assert time.monotonic() - t0 < 1.0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_killed_holders_lock_file_does_not_block(tmp_path):
    out = tmp_path / "cat.fits"
    proc = hold_in_subprocess(out)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert lock_path(out).exists()  # left behind by SIGKILL ...
    assert json.loads(lock_path(out).read_text())["pid"] == proc.pid
    with OutputLock(out):  # ... but the kernel dropped the flock with the process
        assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
    assert not lock_path(out).exists()


def test_planted_lock_link_is_refused_and_its_target_untouched(tmp_path):
    """`cat.fits.lock` linked to another file: taking the lock must not truncate it."""
    from bossnet_onnx.errors import OutputError as _OutputError
    from bossnet_onnx.run.lock import OutputLock as _OutputLock

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "cat.fits"
    (tmp_path / "cat.fits.lock").symlink_to(victim)
    with pytest.raises(_OutputError, match=r"cat\.fits\.lock: is a symbolic link; refusing"):
        _OutputLock(out).acquire()
    assert victim.read_text() == "precious"
    (tmp_path / "cat.fits.lock").unlink()
    os.mkfifo(tmp_path / "cat.fits.lock")  # a FIFO would block a plain open
    with pytest.raises(_OutputError, match=r"is a FIFO"):
        _OutputLock(out).acquire()


def test_planted_pull_lock_link_is_refused(tmp_path):
    from bossnet_onnx.errors import PullError
    from bossnet_onnx.model.home import pull_lock

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / "boss.lock").symlink_to(victim)
    with pytest.raises(PullError, match=r"boss: cannot use the lock file .*symbolic link"), \
            pull_lock("boss", tmp_path):
        pass
    assert victim.read_text() == "precious"
    (tmp_path / "locks" / "boss.lock").unlink()
    with pull_lock("boss", tmp_path) as path:  # a plain lock file still works
        assert path.read_text() == str(os.getpid())
