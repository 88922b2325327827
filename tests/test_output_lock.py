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
