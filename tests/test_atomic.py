"""Atomic writes: complete or absent, never half; the temporary file always goes."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bossnet_onnx.atomic import write_atomically


def test_complete_file_with_umask_permissions(tmp_path):
    out = tmp_path / "x.bin"
    old = os.umask(0o022)
    try:
        write_atomically(out, lambda tmp: Path(tmp).write_bytes(b"done"))
    finally:
        os.umask(old)
    assert out.read_bytes() == b"done"
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt])
def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path, error):
    out = tmp_path / "x.bin"
    out.write_bytes(b"old")

    def half_then_fail(tmp):
        with open(tmp, "wb") as handle:
            handle.write(b"ha")
        raise error

    with pytest.raises(type(error) if isinstance(error, BaseException) else error):
        write_atomically(out, half_then_fail)
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_plot_on_a_full_disk_leaves_no_half_image(tiny_tmpfs):
    pytest.importorskip("matplotlib")
    from bossnet_onnx.errors import OutputError
    from bossnet_onnx.outputs.catalogue import Result, build_table
    from bossnet_onnx.outputs.plotting import plot_kiel

    small = tiny_tmpfs(options="size=8k")
    table = build_table([Result(source=f"s{i}.fits", labels={"teff": 5000.0 + 10 * i,
                                                             "logg": 4.0, "fe_h": 0.0})
                         for i in range(50)])
    with pytest.raises(OutputError, match=r"cannot write .*kiel\.png: No space left on device"):
        plot_kiel(table, small / "kiel.png")
    assert list(small.iterdir()) == []
