#!/usr/bin/env python3
"""The two quick-start commands, needing nothing but Python 3.10+ and pip.

    python3 tasks.py demo   # torch-free install, predict on the bundled model and example data
    python3 tasks.py test   # full test environment (torch==2.13.0 CPU), whole test suite

Each makes its own virtual environment inside the checkout (.venv-run, .venv) and reuses it on
later calls, so a second run is quick.
"""
from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# torch is pinned to the CPU wheel the workplace keeps on disk: an unpinned torch pulls several
# GB of CUDA packages.
TORCH_PIN = "torch==2.13.0"
TEST_EXTRAS = "export,test,plot,parquet,dask,openvino"


def _venv(name: str) -> Path:
    path = ROOT / name
    python = path / "bin" / "python"
    if not python.exists():
        print(f"[tasks] creating {path}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(path)
        _run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    return python


def _run(cmd: list[str], **kwargs) -> None:
    print("[tasks] " + " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, cwd=ROOT, **kwargs)
    if rc != 0:
        sys.exit(rc)


def demo() -> None:
    """Install the runtime alone (no torch) and predict the bundled examples."""
    python = _venv(".venv-run")
    _run([str(python), "-m", "pip", "install", "-q", "."])
    exe = python.parent / "bossnet-onnx"
    examples = sorted(str(p) for p in (ROOT / "examples").glob("*.fits"))
    _run([str(exe), "predict", *examples, "--draws", "20", "--seed", "42"])


def test(pytest_args: list[str]) -> None:
    """Install everything (torch pinned) and run the whole suite, slow tests included."""
    python = _venv(".venv")
    _run([str(python), "-m", "pip", "install", "-q", TORCH_PIN])
    _run([str(python), "-m", "pip", "install", "-q", "-e", f".[{TEST_EXTRAS}]", TORCH_PIN])
    env = dict(os.environ, MPLBACKEND="Agg")
    _run([str(python), "-m", "pytest", "-q", *pytest_args], env=env)


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in {"demo", "test"}:
        print(__doc__)
        sys.exit(2)
    if argv[0] == "demo":
        demo()
    else:
        test(argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
