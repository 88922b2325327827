"""Test tooling shared by the run tests (test_runs.py, test_read_pool.py, ...): a series of
small spec files, a long input list of hard links to them, a run interrupted after k rows, and
what /proc says about a process."""
from __future__ import annotations

import os
from pathlib import Path

import layouts  # our own module: a broken import must fail
import numpy as np

import bossnet_onnx.run.to_file as runs


def spec_series(folder: Path, n: int) -> list[str]:
    """`n` small spec files (plate 3000, fibres 1..n) with smooth, noisy fluxes."""
    wave = layouts.boss_native_wavelength()
    out = []
    for i in range(n):
        rng = np.random.default_rng(i)
        flux = (10 + np.cos(wave / (90 + i)) + rng.standard_normal(wave.size)).astype(np.float32)
        path = folder / f"spec-3000-59000-{i + 1:04d}.fits"
        layouts.write_spec(path, wave, flux, np.full(wave.size, 2.0, np.float32), plate=3000,
                           mjd=59000, fiberid=i + 1)
        out.append(str(path))
    return out


def long_input_list(files: list[str], copies: int, folder: Path) -> Path:
    """An @list of `copies` hard links to each file: distinct paths (inputs are de-duplicated
    by real path), so a run has far more work than a test waits for."""
    listed = []
    for k in range(copies):
        for f in files:
            link = folder / f"c{k}-{os.path.basename(f)}"
            os.link(f, link)
            listed.append(str(link))
    many = folder / "list.txt"
    many.write_text("\n".join(listed) + "\n")
    return many


def interrupt_after(monkeypatch, k_stop: int):
    """Make `predict_to_file`'s stream raise KeyboardInterrupt (Ctrl-C) once `k_stop` rows are
    done; returns the real stream, to put back for the resumed run."""
    real = runs.stream

    def stopping(*args, **kwargs):
        for k, res in enumerate(real(*args, **kwargs)):
            if k == k_stop:
                raise KeyboardInterrupt
            yield res

    monkeypatch.setattr(runs, "stream", stopping)
    return real


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def running(pid: int) -> bool:
    """`pid` exists and is not a zombie."""
    try:
        return _stat_fields(pid)[0] != "Z"
    except OSError:
        return False


def children(pid: int) -> set[int]:
    """Pids whose parent is `pid`."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat_fields(int(entry.name))[1]) == pid:
                    found.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found
