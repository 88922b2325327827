#!/usr/bin/env python3
"""Development lanes, needing nothing but Python 3.10+ and pip.

    python3 tasks.py demo   # torch-free install, predict on the bundled model and example data
    python3 tasks.py test   # full test environment (torch==2.13.0 CPU), whole test suite
    python3 tasks.py lint   # ruff + mypy, the gate CI runs before the tests
    python3 tasks.py fast   # torch-free runtime tests only (no torch install; about a minute)
    python3 tasks.py docs   # the documentation site into docs/_build/html, warnings as errors

`demo` and `test` are the README's quick start. Each lane makes its own virtual environment
inside the checkout (.venv-run, .venv, .venv-fast, .venv-docs; `lint` shares `test`'s) and reuses it on
later calls, so a second run is quick. Extra arguments go to pytest (`test`, `fast`).
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
# cpu: the onnxruntime engine (the core package has none, so that GPU users can pick [gpu])
TEST_EXTRAS = "cpu,export,test,plot,parquet,dask,lint,openvino"
# the torch-free lane: everything the runtime tests need, nothing that pulls torch
FAST_EXTRAS = "cpu,test,plot,parquet"
# the docs lane: Sphinx (pinned in the `docs` extra) plus what the tutorial page runs at build time
DOCS_EXTRAS = "cpu,plot,docs"


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
    _run([str(python), "-m", "pip", "install", "-q", ".[cpu]"])
    exe = python.parent / "bossnet-onnx"
    examples = sorted(str(p) for p in (ROOT / "examples").glob("*.fits"))
    _run([str(exe), "predict", *examples, "--draws", "20", "--seed", "42"])


def _full_env() -> Path:
    python = _venv(".venv")
    _run([str(python), "-m", "pip", "install", "-q", TORCH_PIN])
    _run([str(python), "-m", "pip", "install", "-q", "-e", f".[{TEST_EXTRAS}]", TORCH_PIN])
    return python


def test(pytest_args: list[str]) -> None:
    """Install everything (torch pinned) and run the whole suite, slow tests included."""
    python = _full_env()
    env = dict(os.environ, MPLBACKEND="Agg")
    _run([str(python), "-m", "pytest", "-q", *pytest_args], env=env)


def lint(_args: list[str]) -> None:
    """ruff (rules in pyproject.toml) and mypy over the packages, in the full environment so
    that torch's own types are checked in the export package."""
    python = _full_env()
    _run([str(python), "-m", "ruff", "check", "."])
    _run([str(python), "-m", "mypy"])


def fast(pytest_args: list[str]) -> None:
    """The runtime's tests without torch: what a runtime-only change needs, in about a minute.
    Tests that need torch skip themselves (importorskip); slow ones are left to `test`."""
    python = _venv(".venv-fast")
    _run([str(python), "-m", "pip", "install", "-q", "-e", f".[{FAST_EXTRAS}]"])
    env = dict(os.environ, MPLBACKEND="Agg")
    _run([str(python), "-m", "pytest", "-q", "-m", "not slow and not export", *pytest_args],
         env=env)


def docs(sphinx_args: list[str]) -> None:
    """Build the site (docs/) into docs/_build/html with every warning an error (-W), torch-free.
    The tutorial page runs the bundled model on examples/ during the build. -E reads every page
    again: a cached page would not repeat its warnings, and a second build would pass."""
    python = _venv(".venv-docs")
    _run([str(python), "-m", "pip", "install", "-q", "-e", f".[{DOCS_EXTRAS}]"])
    env = dict(os.environ, MPLBACKEND="Agg")
    _run([str(python), "-m", "sphinx", "-W", "--keep-going", "-E", "-b", "html", "docs",
          "docs/_build/html", *sphinx_args], env=env)
    print(f"[tasks] docs: {ROOT / 'docs' / '_build' / 'html' / 'index.html'}", flush=True)


LANES = {"demo": lambda _args: demo(), "test": test, "lint": lint, "fast": fast, "docs": docs}


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in LANES:
        print(__doc__)
        sys.exit(2)
    LANES[argv[0]](argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
