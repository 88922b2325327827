"""The `bossnet-onnx` command line: thin typer wrappers, one public function each.

Errors derived from BossNetError are printed as one line on stderr with exit status 1; typer's
own usage errors exit 2, and so does an output path refused before any work (OutputPathError:
exists without --overwrite, a directory, unwritable, unknown type, writer package missing).
Every path printed goes through `textsafe.printable`, so a file name cannot forge a line.
"""
from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from . import __version__
from .errors import BossNetError, BossNetWarning, OptionError, OutputPathError
from .textsafe import printable
from .wording import plural


def _help_as_flag(command: Any, ctx: Any) -> None:
    """typer labels --help `<bool>`; show it as the flag it is (the option is cached per
    command, so setting it once holds)."""
    option = command.get_help_option(ctx)
    if option is not None:
        option.metavar = ""


class _Group(typer.core.TyperGroup):
    """A command group whose own --help and its commands' render as flags."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _help_as_flag(command, ctx)
        return command


app = typer.Typer(
    cls=_Group,
    name="bossnet-onnx",
    help="BOSS Net stellar parameters (log g, Teff, [Fe/H], RV) from optical spectra, via ONNX.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


MODEL_HELP = ("Installed model name (`models list`) or ONNX file (default: the bundled demo "
              "model).")


def _fail(exc: BaseException) -> None:
    """Print one line and exit 1 (2 for an output path refused before work): the house rule."""
    typer.echo(f"error: {printable(exc)}", err=True)
    raise typer.Exit(code=2 if isinstance(exc, OutputPathError) else 1)


def _warn(text: str) -> None:
    typer.echo(f"warning: {printable(text)}", err=True)


def _flag(*names: str, help: str) -> Any:
    """A boolean option that --help shows as a flag, without typer's `<bool>` (which invites
    `--overwrite true`, and then "true" is read as an input file)."""
    return typer.Option(False, *names, help=help, metavar="")


_OVERWRITE_HELP = "Replace the output file if it exists (default: refuse, before any work)."


def _option(name: str, value: Any) -> Any:
    """One option checked by RunOptions (the one place options are validated): a bad value is
    a usage error (exit 2) before any work, in RunOptions' words."""
    from .run.options import RunOptions

    try:
        return getattr(RunOptions(**{name: value}), name)
    except OptionError as exc:
        raise typer.BadParameter(exc.usage) from None


def _precision(value: str) -> str:
    return _option("precision", value)


def _provider(value: str) -> str:
    return _option("provider", value)


@contextmanager
def _warnings_on_stderr() -> Iterator[None]:
    """Every bossnet-onnx warning (demo model, no-ivar fallback, ...) as one stderr line, once,
    whatever --quiet says: they change what the numbers mean."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BossNetWarning)
        try:
            yield
        finally:
            seen = set()
            for w in caught:
                if issubclass(w.category, BossNetWarning) and str(w.message) not in seen:
                    seen.add(str(w.message))
                    _warn(str(w.message))


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"bossnet-onnx {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Show the version.",
        metavar=""),
) -> None:
    """BOSS Net via ONNX: `predict` spectra, `models pull` the published weights, `export`
    checkpoints, `info` on models."""


def _print_table(table) -> None:
    """A readable summary on stdout: one line per spectrum, the columns people look at.

    `hdu`/`row` say where in the file (-1: in memory / the only one), `telescope` the survey's
    instrument, `flags` the names of the DR19 result_flags bits set, `quality` ours.
    """
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    from .science.flags import flag_names

    view = RichTable(box=None, pad_edge=False, header_style="bold")
    for name in ("path", "hdu", "row", "telescope", "teff", "e_teff", "logg", "e_logg", "fe_h",
                 "e_fe_h", "bn_v_r", "e_bn_v_r", "frame", "snr", "flags", "quality", "error"):
        view.add_column(name, justify="left" if name in ("path", "telescope", "error", "frame",
                                                         "flags", "quality") else "right")

    def num(value, fmt):
        return "nan" if value != value else format(value, fmt)

    def cell(r, name, fmt):  # a column the model's member does not predict is absent
        return num(r[name], fmt) if name in table.colnames else ""

    has_telescope = "telescope" in table.colnames
    for r in table:
        view.add_row(
            Text(printable(Path(str(r["path"])).name)), str(r["hdu"]), str(r["row"]),
            Text(printable(r["telescope"]) if has_telescope else ""),
            num(r["teff"], ".0f"), num(r["e_teff"], ".0f"), num(r["logg"], ".2f"),
            num(r["e_logg"], ".2f"), num(r["fe_h"], ".2f"), num(r["e_fe_h"], ".2f"),
            cell(r, "bn_v_r", ".1f"), cell(r, "e_bn_v_r", ".1f"), str(r["frame"]),
            num(r["snr_model"], ".1f"),
            # DR19's result_flags and our quality problems by name, apart: quality problems do
            # not make a row bad
            ",".join(flag_names(int(r["result_flags"]))) or "-",
            ",".join(flag_names(0, int(r["quality_flags"]))) or "-",
            Text(printable(r["error"])),
        )
    Console(width=240, soft_wrap=True).print(view)


def _check_draws(value: int) -> int:
    return _option("draws", value)


@app.command()
def predict(
    inputs: list[str] = typer.Argument(..., help="Spectrum files, globs, directories or @list.txt."),
    output: Path | None = typer.Option(None, "--output", "-o",
                                          help="Catalogue: .fits, .csv, .ecsv or .parquet. "
                                               "Default: a table on stdout."),
    model: str | None = typer.Option(None, "--model", "-m",
                                        help=MODEL_HELP + " auto: each file to the installed "
                                        "model of the member that reads it (BOSS, APOGEE, "
                                        "Gaia RVS, Gaia XP), one table per member."),
    provider: str = typer.Option("auto", "--provider", callback=_provider,
                                 help="auto, cpu, cuda or openvino (auto: onnxruntime, CUDA if "
                                      "it has it, else its CPU provider; OpenVINO only when "
                                      "asked for, or for --precision bf16)."),
    precision: str = typer.Option("fp32", "--precision", callback=_precision,
                                  help="fp32 (exact), bf16 (openvino) or int8 (the model's "
                                       ".int8.onnx copy); reduced ones only within the accuracy "
                                       "budget."),
    draws: int = typer.Option(20, "--draws", callback=_check_draws,
                              help="Monte-Carlo draws for e_*: 0 (none) or 2 to 10000."),
    seed: int = typer.Option(0, "--seed", help="Seed of the draws (with each spectrum's content)."),
    recipe: str = typer.Option("reference", "--recipe",
                               help="Preprocessing: reference (hutchresearch/BOSSNet) or astra "
                                    "(SDSS DR19's production code)."),
    air: bool = _flag("--air", help="The files' wavelengths are in air: convert "
                             "them to vacuum (IAU/Morton 2000; docs: Inputs)."),
    recursive: bool = _flag("--recursive", "-r",
                                   help="Search directories recursively."),
    batch_size: int = typer.Option(32, "--batch-size", min=1,
                                    help="Model rows gathered per model round (memory ~ rows; "
                                         "the labels do not depend on it)."),
    threads: int | None = typer.Option(None, "--threads", min=1,
                                          help="CPU threads (default: CPUs this process may use)."),
    readers: int | None = typer.Option(None, "--readers", min=1,
                                          help="Processes reading the files while the model "
                                               "runs (default: one reading thread, on every "
                                               "engine). Rows do not depend on it."),
    shard: str | None = typer.Option(None, "--shard", help="K/N: only the K-th of N slices "
                                        "of the sorted inputs (1-based), or auto: K and N from "
                                        "a SLURM job array."),
    resume: bool = _flag("--resume", help="Continue an interrupted run from its "
                                "progress file (needs -o)."),
    overwrite: bool = _flag("--overwrite", help=_OVERWRITE_HELP),
    quiet: bool = _flag("--quiet", "-q", help="No progress bar or summary."),
    dask: str | None = typer.Option(None, "--dask", help="Run on a Dask cluster (needs -o and "
                                    "the dask extra): local:N workers on this machine, a "
                                    "scheduler address tcp://HOST:PORT, or a scheduler .json "
                                    "file. Same rows as a local run."),
    samp: bool = _flag("--samp", help="Send the finished catalogue (-o .fits "
                              "or .vot) to TOPCAT/Aladin through a running SAMP hub."),
) -> None:
    """Predict log g, Teff, [Fe/H] and RV for every spectrum in INPUTS."""
    from .run.options import RunOptions
    from .run.stream import predict as run_predict
    from .run.to_file import Interrupted, predict_to_file

    try:
        options = RunOptions(draws=draws, seed=seed, recipe=recipe, air=air,
                             batch_size=batch_size, shard=shard, recursive=recursive,
                             provider=provider, threads=threads, precision=precision,
                             readers=readers, progress=not quiet and sys.stderr.isatty())
        cluster = None
        if dask is not None:
            from .run.distributed import parse_cluster

            cluster = parse_cluster(dask)
    except OptionError as exc:
        raise typer.BadParameter(exc.usage, param_hint=exc.option) from None
    if resume and output is None:
        raise typer.BadParameter("--resume needs --output/-o (the catalogue being resumed)",
                                 param_hint="--resume")
    if cluster is not None and output is None:
        raise typer.BadParameter("--dask needs --output/-o: the workers write their parts "
                                 "beside it", param_hint="--dask")
    mixed = model == "auto"
    if mixed and (resume or cluster is not None):
        raise typer.BadParameter(f"{'--resume' if resume else '--dask'} does not work with "
                                 f"--model auto (a mixed run is run again whole)",
                                 param_hint="--model")
    if samp:
        _check_samp(output)
    try:
        with _warnings_on_stderr():
            if mixed:
                from .run.mixed import predict_mixed, predict_mixed_to_file

                tables = predict_mixed(inputs, options) if output is None else \
                    predict_mixed_to_file(inputs, output, options, overwrite=overwrite)
                written = _mixed_outputs(output, tables)
                table = None
            elif output is None:
                table = run_predict(inputs, model=model, options=options)
            elif cluster is not None:
                from .run.distributed import predict_distributed

                table = predict_distributed(inputs, output, options, model=model, dask=cluster,
                                            resume=resume, overwrite=overwrite)
            else:
                table = predict_to_file(inputs, output, options, model=model, resume=resume,
                                        overwrite=overwrite, on_warning=_warn)
    except Interrupted as exc:
        typer.echo(printable(exc), err=True)
        raise typer.Exit(code=130) from None
    except OptionError as exc:
        raise typer.BadParameter(exc.usage, param_hint=exc.option) from None
    except BossNetError as exc:
        _fail(exc)
    if table is not None:
        tables, written = {"": table}, {"": output} if output is not None else {}
    n_failed = 0
    for member, one in tables.items():
        failed = [r for r in one if r["result_flags"] & 1]
        n_failed += len(failed)
        for r in failed:
            typer.echo(f"failed: {printable(r['error'])}", err=True)
        if output is None:
            if member:
                typer.echo(f"# {member}")
            _print_table(one)
        if not quiet:
            where = f" -> {printable(written[member])}" if member in written else ""
            typer.echo(f"{member + ': ' if member else ''}"
                       f"{plural(len(one), 'spectrum', 'spectra')}, {len(failed)} failed; model "
                       f"{one.meta['MODEL']} "
                       f"({one.meta['PROVNC']}) on {one.meta['PROVIDER']} "
                       f"{one.meta['PRECISN']}{where}", err=True)
    if samp and output is not None:
        from .outputs.samp import send_tables

        try:
            reached = send_tables(list(dict.fromkeys(written.values())))
        except BossNetError as exc:
            _fail(exc)
        if not quiet:
            typer.echo(f"sent to {plural(reached, 'SAMP client', 'SAMP clients')}", err=True)
    if n_failed:
        raise typer.Exit(code=1)


def _check_samp(output: Path | None) -> None:
    """--samp's checks before any work: an -o SAMP can load (usage, exit 2), a hub running
    (exit 1)."""
    from .outputs.samp import check_hub, samp_mtype

    if output is None:
        raise typer.BadParameter("--samp needs --output/-o (a .fits or .vot catalogue to send)",
                                 param_hint="--samp")
    try:
        samp_mtype(output)
    except BossNetError as exc:
        raise typer.BadParameter(str(exc), param_hint="--samp") from None
    try:
        check_hub()
    except BossNetError as exc:
        _fail(exc)


def _mixed_outputs(output: Path | None, tables: dict) -> dict[str, Path]:
    """Where a mixed run wrote each member's table (FITS: all in -o)."""
    if output is None:
        return {}
    from .outputs.catalogue import format_for, member_output_path

    if format_for(output) == "fits":
        return dict.fromkeys(tables, output)
    return {member: member_output_path(output, member) for member in tables}


@app.command()
def merge(
    parts: list[Path] = typer.Argument(..., help="Shard catalogues (from --shard K/N runs)."),
    output: Path = typer.Option(..., "--output", "-o", help="Merged catalogue."),
    overwrite: bool = _flag("--overwrite", help=_OVERWRITE_HELP),
) -> None:
    """Concatenate shard catalogues, checking provenance, duplicates and missing shards."""
    from .run.sharding import merge_catalogues

    try:
        table = merge_catalogues([str(p) for p in parts], output, overwrite=overwrite)
    except BossNetError as exc:
        _fail(exc)
    typer.echo(f"merged {plural(len(parts), 'catalogue', 'catalogues')}, "
               f"{plural(len(table), 'row', 'rows')} -> {printable(output)}", err=True)


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="Official model directory (model_args.yaml + "
                                      "model_chunk_*), a .pt/.pth state dict, or a dict with "
                                      "'state_dict'."),
    output: Path = typer.Option(..., "--output", "-o", help="ONNX file to write."),
    config: Path | None = typer.Option(None, "--config", help="model_args.yaml (default: the "
                                          "checkpoint's own, else the official BOSS config)."),
    stats: Path | None = typer.Option(None, "--stats", help="Normalisation stats YAML "
                                         "(stats/boss.yaml layout; default: BOSS)."),
    name: str | None = typer.Option(None, "--name", help="Model name stored in the file."),
    opset: int = typer.Option(18, "--opset", min=18, help="ONNX opset (>= 18)."),
    batch: int | None = typer.Option(None, "--batch", min=1,
                                        help="Fix the batch axis to N (default: dynamic)."),
    quantize: str | None = typer.Option(None, "--quantize", help="int8: also write "
                                           "<output stem>.int8.onnx (linear layers quantized)."),
    provenance: str = typer.Option("user-weights", "--provenance",
                                   help="published-weights, user-weights, synthetic-demo or "
                                        "random-weights."),
    description: str = typer.Option("", "--description", help="Free text stored in the file."),
    member: str | None = typer.Option(None, "--member", help="Family member: boss, apogee, "
                                         "gaia-rvs or gaia-xp (default: from the checkpoint's "
                                         "name or model_args.yaml)."),
    converter: str = typer.Option("auto", "--converter", help="torch (the export extra), "
                                  "numpy (no torch: reads the checkpoint itself, checks against "
                                  "a numpy forward pass) or auto (torch when installed)."),
) -> None:
    """Convert a BOSS Net family checkpoint into a verified, fixed-shape ONNX model."""
    from .convert import CONVERTER_CHOICES
    from .convert.choose import export_checkpoint
    from .science.members import MEMBERS

    if member is not None and member not in MEMBERS:
        raise typer.BadParameter(f"{member!r}; choose one of {', '.join(MEMBERS)}",
                                 param_hint="--member")
    if quantize not in (None, "int8"):
        raise typer.BadParameter(f"{quantize!r}; the only choice is int8", param_hint="--quantize")
    if converter not in CONVERTER_CHOICES:
        raise typer.BadParameter(f"{converter!r}; choose one of {', '.join(CONVERTER_CHOICES)}",
                                 param_hint="--converter")
    try:
        report = export_checkpoint(checkpoint, output, converter=converter, config=config,
                                   stats=stats, name=name, opset=opset, batch=batch,
                                   quantize=quantize, provenance=provenance,
                                   description=description, member=member)
    except BossNetError as exc:
        _fail(exc)
    typer.echo(report.summary())


@app.command()
def plot(
    spectrum: Path = typer.Argument(..., help="A spectrum file (any format predict reads)."),
    output: Path | None = typer.Option(None, "--output", "-o",
                                          help="Image (.png, .pdf, .svg). Default: "
                                               "<spectrum stem>.png in the current directory."),
    hdu: int | None = typer.Option(None, "--hdu", help="Only spectra from this HDU."),
    row: int | None = typer.Option(None, "--row", help="Only spectra from this table row."),
    model: str | None = typer.Option(None, "--model", "-m",
                                        help=MODEL_HELP),
    provider: str = typer.Option("auto", "--provider", callback=_provider,
                                 help="auto, cpu, cuda or openvino."),
    draws: int = typer.Option(20, "--draws", callback=_check_draws,
                              help="Monte-Carlo draws for e_*: 0 (none) or 2 to 10000."),
    seed: int = typer.Option(0, "--seed", help="Seed of the draws (as in predict)."),
    overwrite: bool = _flag("--overwrite", help=_OVERWRITE_HELP),
    recipe: str = typer.Option("reference", "--recipe",
                               help="Preprocessing, as in predict: reference or astra."),
    air: bool = _flag("--air", help="The file's wavelengths are in air: convert "
                             "them to vacuum."),
) -> None:
    """Plot each spectrum, the model input it became, and its labels, errors and flags."""
    from .outputs.plotting import plot_spectrum
    from .run.output_paths import IMAGE_SUFFIXES, check_output
    from .science.preprocess import RECIPES

    if recipe not in RECIPES:
        raise typer.BadParameter(f"{recipe!r} is not one of {', '.join(RECIPES)}",
                                 param_hint="--recipe")

    name = spectrum.name
    for suffix in (".gz", ".fits", ".fit", ".csv", ".ecsv"):
        name = name[: -len(suffix)] if name.lower().endswith(suffix) else name
    target = output if output is not None else Path(f"{name}.png")
    try:
        check_output(target, overwrite=overwrite, suffixes=IMAGE_SUFFIXES)
        with _warnings_on_stderr():
            fig = plot_spectrum(spectrum, target, hdu=hdu, row=row, model=model,
                                provider=provider, draws=draws, seed=seed, recipe=recipe,
                                air=air)
    except BossNetError as exc:
        _fail(exc)
    typer.echo(f"{plural(len(fig.axes) // 2, 'spectrum', 'spectra')} -> {printable(target)}",
               err=True)


@app.command()
def kiel(
    catalogue: Path = typer.Argument(..., help="A catalogue from predict (.fits, .csv, .ecsv, "
                                     ".parquet) or any table with teff, logg, fe_h columns."),
    output: Path | None = typer.Option(None, "--output", "-o",
                                          help="Image (.png, .pdf, .svg). Default: "
                                               "<catalogue stem>.kiel.png in the current "
                                               "directory."),
    hdu: int | None = typer.Option(None, "--hdu", help="FITS HDU holding the table "
                                      "(default: the first with teff, logg, fe_h)."),
    teff: str | None = typer.Option(None, "--teff", help="Column holding Teff (default: "
                                       "teff, TEFF, teff_gspphot, ...)."),
    logg: str | None = typer.Option(None, "--logg", help="Column holding log g (default: "
                                       "logg, LOGG, log_g, ...)."),
    feh: str | None = typer.Option(None, "--feh", help="Column holding [Fe/H] (default: "
                                      "fe_h, FE_H, feh, [Fe/H], M_H, ...)."),
    overwrite: bool = _flag("--overwrite", help=_OVERWRITE_HELP),
) -> None:
    """Kiel diagram (Teff vs log g, coloured by [Fe/H], flagged rows marked) of a catalogue."""
    from .outputs.plotting import kiel_counts, load_labels, plot_kiel
    from .run.output_paths import IMAGE_SUFFIXES, check_output

    name = catalogue.name
    for suffix in (".gz", ".fits", ".fit", ".csv", ".ecsv", ".parquet"):
        name = name[: -len(suffix)] if name.lower().endswith(suffix) else name
    target = output if output is not None else Path(f"{name}.kiel.png")
    try:
        check_output(target, overwrite=overwrite, suffixes=IMAGE_SUFFIXES)
        columns = {"teff": teff, "logg": logg, "fe_h": feh}
        table = load_labels(catalogue, hdu=hdu, columns=columns)
        counts = kiel_counts(table, columns=columns)
        plot_kiel(table, target, columns=columns)
    except BossNetError as exc:
        _fail(exc)
    typer.echo(f"{counts['good']} unflagged, {counts['warn']} flag_warn, {counts['bad']} "
               f"flag_bad, {counts['failed'] + counts['no_labels']} not drawn -> "
               f"{printable(target)}",
               err=True)


@app.command()
def info(
    model: str | None = typer.Argument(None, help=MODEL_HELP),
    as_json: bool = _flag("--json", help="Print the details as JSON."),
) -> None:
    """Describe a model: provenance, checksums, grid, parameters, stats, opset, providers."""
    import json

    from .model.info import format_model_info, model_info

    try:
        details = model_info(model)
    except BossNetError as exc:
        _fail(exc)
    typer.echo(json.dumps(details, indent=2) if as_json else format_model_info(details))


models_app = typer.Typer(
    cls=_Group,
    help="The published BOSS Net weights: list them, pull (fetch, verify, export) one.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list(
    as_json: bool = _flag("--json", help="Print the registry (every file with "
                                 "its path and git blob id) and the install state as JSON."),
) -> None:
    """Each published model: description, repository, commit, size, whether it is installed."""
    import json

    from .model.pull import format_model_list, list_models

    try:
        doc = list_models()
    except BossNetError as exc:
        _fail(exc)
    typer.echo(json.dumps(doc, indent=1) if as_json else format_model_list(doc))


@models_app.command("pull")
def models_pull(
    name: str = typer.Argument(..., help="Model name (see `bossnet-onnx models list`)."),
    source_dir: Path | None = typer.Option(None, "--from", help="Take the files from a "
                                              "local clone of the repository (or a copy of "
                                              "the model's folder) instead of the network."),
    force: bool = _flag("--force", help="Fetch, verify and export again even "
                               "if the model is installed."),
    quiet: bool = _flag("--quiet", "-q", help="No progress bar."),
    converter: str = typer.Option("auto", "--converter", help="torch, numpy (no torch needed) "
                                  "or auto (torch when installed)."),
) -> None:
    """Fetch NAME's published files, verify their git blob ids, convert and install NAME.onnx."""
    from .model.pull import pull_model

    try:
        result = pull_model(name, source_dir=source_dir, force=force,
                            progress=not quiet and sys.stderr.isatty(), converter=converter)
    except BossNetError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        typer.echo(f"interrupted: nothing was installed; verified files and the partial "
                   f"download are kept, run `bossnet-onnx models pull {name}` again to resume",
                   err=True)
        raise typer.Exit(code=130) from None
    typer.echo(result.summary(), err=True)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
