"""The `bossnet-onnx` command line: thin typer wrappers, one public function each.

Errors derived from BossNetError are printed as one line on stderr with exit status 1; typer's
own usage errors exit 2.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from . import __version__
from .errors import BossNetError

app = typer.Typer(
    name="bossnet-onnx",
    help="BOSS Net stellar parameters (log g, Teff, [Fe/H], RV) from optical spectra, via ONNX.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(exc: BaseException) -> None:
    """Print one line and exit 1: the house rule for every command."""
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=1)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"bossnet-onnx {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Show the version."
    ),
) -> None:
    """BOSS Net via ONNX: `predict` spectra, `export` checkpoints, `info` on models."""


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
