"""Packaging: every install gets at most one onnxruntime, and CPU and GPU users exactly one.

onnxruntime and onnxruntime-gpu both install the `onnxruntime` module and overwrite each other's
files, so the core package depends on neither and the `cpu` / `gpu` extras each add one. pip's
own resolver proves it (`pip install --dry-run --report`, nothing installed); these tests need
PyPI and skip cleanly without it. Without an engine the runtime says which extra to install.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENGINES = {"onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino"}

#: extra -> the engines its install must contain (exactly)
EXPECTED = {"": set(), "cpu": {"onnxruntime"}, "gpu": {"onnxruntime-gpu"}, "export": set()}


def _pypi_reachable() -> bool:
    try:
        with socket.create_connection(("pypi.org", 443), timeout=5):
            return True
    except OSError:
        return False


def _dry_run(extra: str, report: Path) -> subprocess.Popen:
    target = f".[{extra}]" if extra else "."
    return subprocess.Popen(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--report", str(report), target],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_resolver_installs_exactly_one_engine_per_extra(tmp_path):
    if not _pypi_reachable():
        pytest.skip("PyPI is not reachable: the resolver test needs the package index")
    runs = {extra: _dry_run(extra, tmp_path / f"report-{extra or 'plain'}.json")
            for extra in EXPECTED}  # side by side: each takes 30-60 s of mostly waiting
    installed = {}
    for extra, proc in runs.items():
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"[{extra}]: {err[-2000:]}"
        report = json.loads((tmp_path / f"report-{extra or 'plain'}.json").read_text())
        installed[extra] = {item["metadata"]["name"].lower() for item in report["install"]}
    for extra, engines in EXPECTED.items():
        assert installed[extra] & ENGINES == engines, (extra, installed[extra] & ENGINES)
        assert "bossnet-onnx" in installed[extra]
    assert "torch" in installed["export"] and "torch" not in installed["cpu"]


def test_pyproject_declares_no_engine_in_the_core():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = [d.split(">")[0].split("=")[0].split("[")[0].strip().lower()
             for d in project["dependencies"]]
    assert not set(names) & ENGINES
    assert project["optional-dependencies"]["cpu"] == ["onnxruntime>=1.17"]
    assert project["optional-dependencies"]["gpu"] == ["onnxruntime-gpu>=1.19"]


def test_without_an_engine_the_cli_says_which_extra_to_install(tmp_path):
    """onnxruntime (and the optional openvino engine) made unimportable: predict and info fail
    with one line, exit 1; --help and
    --version still work (the core imports no engine)."""
    script = tmp_path / "no_engine.py"
    script.write_text(textwrap.dedent("""
        import sys
        class _Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('onnxruntime', 'openvino'):  # no engine at all
                    raise ImportError('no engine in this test: ' + name)
        sys.meta_path.insert(0, _Block())
        from bossnet_onnx.cli import main
        sys.argv = ['bossnet-onnx', *sys.argv[1:]]
        main()
    """))
    example = REPO / "examples" / "spec-9999-60000-0042.fits"
    env = dict(os.environ)
    for args in (["predict", str(example), "-q"], ["info"]):
        proc = subprocess.run([sys.executable, str(script), *args], capture_output=True,
                              text=True, env=env, timeout=120)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.strip().splitlines() == [
            "error: no ONNX Runtime engine is installed; install one: pip install "
            "'bossnet-onnx[cpu]' (or 'bossnet-onnx[gpu]' for NVIDIA GPUs, never both)"]
    proc = subprocess.run([sys.executable, str(script), "--version"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("bossnet-onnx")
