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


def _print_table(table) -> None:
    """A readable summary on stdout: one line per spectrum, the columns people look at."""
    from rich.console import Console
    from rich.table import Table as RichTable

    view = RichTable(box=None, pad_edge=False, header_style="bold")
    for name in ("source", "hdu", "row", "teff", "e_teff", "logg", "e_logg", "fe_h", "e_fe_h",
                 "v_rad", "e_v_rad", "flags", "error"):
        view.add_column(name, justify="left" if name in ("source", "error") else "right")

    def num(value, fmt):
        return "nan" if value != value else format(value, fmt)

    for r in table:
        view.add_row(
            Path(str(r["source"])).name, str(r["hdu"]), str(r["row"]),
            num(r["teff"], ".0f"), num(r["e_teff"], ".0f"), num(r["logg"], ".2f"),
            num(r["e_logg"], ".2f"), num(r["fe_h"], ".2f"), num(r["e_fe_h"], ".2f"),
            num(r["v_rad"], ".1f"), num(r["e_v_rad"], ".1f"), str(r["result_flags"]),
            str(r["error"]),
        )
    Console(width=200, soft_wrap=True).print(view)


@app.command()
def predict(
    inputs: List[str] = typer.Argument(..., help="Spectrum files, globs, directories or @list.txt."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Catalogue: .fits, .csv, .ecsv or .parquet. "
                                               "Default: a table on stdout."),
    model: Optional[Path] = typer.Option(None, "--model", "-m",
                                         help="ONNX model (default: the bundled demo model)."),
    provider: str = typer.Option("auto", "--provider", help="auto, cpu or cuda."),
    draws: int = typer.Option(20, "--draws", min=0, help="Monte-Carlo draws for e_* (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the draws (with each spectrum's identity)."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Model rows per run."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1,
                                          help="CPU threads (default: CPUs this process may use)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Predict log g, Teff, [Fe/H] and RV for every spectrum in INPUTS."""
    from .catalogue import write_catalogue
    from .pipeline import predict as run_predict

    show_progress = not quiet and sys.stderr.isatty()
    try:
        table = run_predict(inputs, model=model, provider=provider, draws=draws, seed=seed,
                            batch_size=batch_size, threads=threads, progress=show_progress)
        if output is not None:
            write_catalogue(table, output)
    except BossNetError as exc:
        _fail(exc)
    failed = [r for r in table if r["result_flags"] & 1]
    for r in failed:
        typer.echo(f"failed: {r['error']}", err=True)
    if output is None:
        _print_table(table)
    if not quiet:
        where = f" -> {output}" if output is not None else ""
        typer.echo(f"{len(table)} spectra, {len(failed)} failed; model {table.meta['MODEL']} "
                   f"({table.meta['PROVNC']}) on {table.meta['PROVIDER']}{where}", err=True)
    if failed:
        raise typer.Exit(code=1)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
