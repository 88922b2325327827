"""Pictures of results: a spectrum with what the model saw, and a Kiel diagram of a catalogue.

Astronomers check a pipeline by looking at it, so both plots show the evidence next to the
numbers: the observed spectrum with its bad pixels, the 3900-point log-flux the network was fed,
and the labels, errors and flags exactly as `predict` computes them (same draws, same seed).

matplotlib is the optional `plot` extra and is imported only inside these functions. Figures are
built with `matplotlib.figure.Figure` and an explicit Agg canvas, never through pyplot: nothing
is registered with pyplot's figure manager and the process-wide backend is left alone, so calling
these from a notebook or a GUI program neither leaks figures nor switches the user's backend,
and a machine without a display renders the same PNG.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BossNetError, InputError, OutputError
from ..readers.paths import FITS_SUFFIXES
from ..science.flags import QualityFlags, ResultFlags, flag_bad, flag_warn
from ..spectrum import ReadFailure, Spectrum, location_text

if TYPE_CHECKING:  # pragma: no cover
    from astropy.table import Table
    from matplotlib.figure import Figure

    from ..model.session import BossNetModel

__all__ = [
    "PlotExtraError",
    "plot_spectrum",
    "plot_kiel",
    "load_labels",
    "kiel_counts",
    "label_columns",
    "LABEL_ALIASES",
    "DPI",
    "SPECTRUM_PANEL_SIZE",
    "KIEL_SIZE",
    "MAX_PANELS",
]

#: Pixels per inch of the PNGs (figure size in inches x DPI = image size in pixels).
DPI = 100
#: Width and height (inches) of one spectrum's panel: observed flux above, model input below.
SPECTRUM_PANEL_SIZE = (12.0, 5.0)
#: Width and height (inches) of the Kiel diagram.
KIEL_SIZE = (7.5, 6.0)
#: More panels than this make an unreadable image: the user is asked to pick with --hdu/--row.
MAX_PANELS = 24

#: Teff and log g ranges a Kiel diagram always shows (more when the data need it), so that a
#: handful of stars is seen against the usual dwarf-giant frame, not zoomed to fill the axes.
_KIEL_FRAME = (3500.0, 7000.0, 0.0, 5.5)
_LOG_TEFF_TICKS = (2000, 3000, 4000, 5000, 6000, 8000, 10000, 15000, 20000, 30000, 50000,
                   70000, 100000)

PLOT_EXTRA_MESSAGE = "plotting needs the plot extra: pip install 'bossnet-onnx[plot]'"

_PROVENANCE_NOTES = {
    "published-weights": "",
    "synthetic-demo": "(synthetic demo model)",
    "random-weights": "(random weights: not a trained model)",
    "user-weights": "(user weights)",
}


class PlotExtraError(BossNetError):
    """matplotlib (the `plot` extra) is not installed."""


def _require_matplotlib() -> None:
    """Fail before any work is done (reading files, opening the model) without the extra."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotExtraError(PLOT_EXTRA_MESSAGE) from None


def _figure(size: tuple[float, float]) -> Figure:
    """A pyplot-free Figure with an Agg canvas (see the module docstring for why)."""
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, output: str | os.PathLike) -> Path:
    output = Path(output)
    if output.parent != Path("") and not output.parent.is_dir():
        raise InputError(f"{output}: output directory {output.parent} does not exist")
    if output.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise InputError(f"{output}: unknown image type {output.suffix!r}; use .png, .pdf or .svg")
    from ..atomic import write_atomically

    # No bbox_inches="tight": the image keeps exactly figsize x DPI pixels. Atomic, so a failed
    # write (full disk) leaves no half image.
    try:
        write_atomically(output, lambda tmp: fig.savefig(tmp, dpi=DPI), suffix=output.suffix)
    except OSError as exc:
        raise OutputError(f"cannot write {output}: {exc.strerror or exc}") from None
    return output


# ------------------------------------------------------------------------------- spectrum plot
def _select(records: Sequence[Spectrum | ReadFailure], where: str, hdu: int | None,
            row: int | None) -> list[Spectrum | ReadFailure]:
    chosen = [r for r in records
              if (hdu is None or r.hdu == hdu) and (row is None or r.row == row)]
    if not chosen:
        have = ", ".join(f"HDU {r.hdu} row {r.row}" for r in records[:12])
        asked = " ".join(f"--{k} {v}" for k, v in (("hdu", hdu), ("row", row)) if v is not None)
        raise InputError(f"{where}: no spectrum matches {asked}; the file holds: {have or 'none'}")
    if len(chosen) > MAX_PANELS:
        raise InputError(
            f"{where}: {len(chosen)} spectra selected, more than {MAX_PANELS} panels fit in one "
            f"image; pick some with --hdu/--row"
        )
    return chosen


def _value(v: float, e: float, fmt: str) -> str:
    if not math.isfinite(v):
        return "nan"
    text = format(v, fmt)
    return f"{text} ± {format(e, fmt)}" if math.isfinite(e) else text


def _flag_names(bits: int, quality: int = 0) -> str:
    """DR19 flags, then our quality bits on their own ("quality: ..."), never mixed."""
    names = [str(f.name) for f in ResultFlags if bits & f.value]
    text = ", ".join(names) if names else "none"
    problems = [str(f.name) for f in QualityFlags if quality & f.value]
    return text + (f"   quality: {', '.join(problems)}" if problems else "")


def _title(record: Spectrum | ReadFailure, labels: dict[str, float], flags: int, error: str,
           model_label: str, quality: int = 0) -> str:
    where = location_text(Path(record.source).name, record.hdu, record.row)
    if error:
        first = f"{where}   prediction failed"
        second = f"error: {error}"
        if len(second) > 160:
            second = second[:157] + "..."
        return (f"{first}\n{second}\nflags: {_flag_names(flags, quality)}   "
                f"model: {model_label}")
    text = (f"Teff = {_value(labels['teff'], labels['e_teff'], '.0f')} K    "
            f"log g = {_value(labels['logg'], labels['e_logg'], '.2f')}    "
            f"[Fe/H] = {_value(labels['fe_h'], labels['e_fe_h'], '.2f')}")
    if "bn_v_r" in labels:  # family members without an RV output have no bn_v_r
        text += f"    RV = {_value(labels['bn_v_r'], labels['e_bn_v_r'], '.1f')} km/s"
    return f"{where}\n{text}\nflags: {_flag_names(flags, quality)}   model: {model_label}"


def _robust_limits(values: np.ndarray, window: int = 15) -> tuple[float, float] | None:
    """y-limits that follow the continuum and lines, not single-pixel spikes (cosmics, sky).

    The range of a running median over `window` pixels, widened by 15%, so noisy blue ends and
    sky residuals do not squash the spectrum while a steep continuum stays fully visible.
    """
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    if values.size > window:
        values = np.median(np.lib.stride_tricks.sliding_window_view(values, window), axis=1)
    lo, hi = float(values.min()), float(values.max())
    pad = 0.15 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.1
    return lo - pad, hi + pad


def _draw_observed(ax, spec: Spectrum, grid: np.ndarray) -> None:
    wave = np.asarray(spec.wavelength, dtype=np.float64)
    flux = np.asarray(spec.flux, dtype=np.float64)
    ivar = np.asarray(spec.ivar, dtype=np.float64)
    good_ivar = np.isfinite(ivar) & (ivar > 0)
    bad = ~np.isfinite(flux) | ~good_ivar
    if spec.mask is not None:
        bad |= np.asarray(spec.mask, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = np.where(good_ivar, 1.0 / np.sqrt(np.where(good_ivar, ivar, 1.0)), np.nan)
    # The noise band is drawn over the flux line, opaque enough to be seen at 12 inches wide
    # even where sigma is a few line widths (a high-S/N spectrum): hidden bands were the bug.
    ax.plot(wave, flux, color="black", lw=0.5, label="observed flux", zorder=2)
    ax.fill_between(wave, flux - sigma, flux + sigma, color="tab:blue", alpha=0.45, lw=0,
                    label="±1σ (from ivar)", zorder=3)
    # ...and sigma itself, so the noise level reads at a glance even when the band is thin
    ax.plot(wave, sigma, color="tab:cyan", lw=0.6, label="1σ error", zorder=2)
    if bad.any():
        ax.fill_between(wave, 0, 1, where=bad, transform=ax.get_xaxis_transform(),
                        color="tab:red", alpha=0.18, lw=0, step="mid",
                        label=f"masked or ivar ≤ 0 ({int(bad.sum())} px)")
    limits = _robust_limits(flux[~bad]) or _robust_limits(flux)
    if limits is not None:
        lo, hi = limits
        if lo > 0:  # start at zero: the 1σ line sits near it and flux reads against it
            lo = -0.02 * hi
        ax.set_ylim(lo, hi)
    finite_wave = wave[np.isfinite(wave)]
    lo = min(float(finite_wave.min()), float(grid[0])) if finite_wave.size else float(grid[0])
    hi = max(float(finite_wave.max()), float(grid[-1])) if finite_wave.size else float(grid[-1])
    ax.set_xlim(lo - 20, hi + 20)
    ax.set_ylabel(f"flux [{spec.flux_unit}]" if spec.flux_unit else "flux\n(unit not in file)")


def _mark_model_range(ax, grid: np.ndarray, label: bool) -> None:
    for edge in (grid[0], grid[-1]):
        ax.axvline(float(edge), color="tab:green", ls="--", lw=0.9,
                   label=f"model range {grid[0]:.0f}-{grid[-1]:.0f} Å"
                   if label and edge == grid[0] else None)


def _draw_input(ax, grid: np.ndarray, inputs: np.ndarray, flux_floor: float) -> None:
    """The 3900-point model input, its draws' 16-84% band, and the pixels at the log floor.

    Pixels at ln(flux_floor) (flux <= 0 after interpolation, e.g. a dead Ca II H&K region)
    would stretch the y-axis to -14 and flatten everything else into a line: the limits follow
    the other pixels and the floor pixels are marked as red ticks along the bottom edge.
    """
    floor = float(np.log(np.float32(flux_floor)))
    at_floor = inputs[0] <= floor + 1e-4
    shown = [inputs[0]]
    if inputs.shape[0] > 2:
        lo, hi = np.percentile(inputs[1:], [16, 84], axis=0)
        ax.fill_between(grid, lo, hi, color="tab:orange", alpha=0.6, lw=0,
                        label=f"{inputs.shape[0] - 1} noisy draws, 16-84%", zorder=3)
        for edge in (lo, hi):  # edges drawn too: a band a pixel wide still shows
            ax.plot(grid, edge, color="tab:orange", lw=0.9, zorder=3)
        shown += [lo, hi]
    ax.plot(grid, inputs[0], color="tab:purple", lw=0.5, label="model input (noise-free)",
            zorder=4)
    # limits from the noise-free input plus the band's typical half-width: a draw dipping to
    # near-zero flux next to a floor region must not drag the axis down either
    limits = _robust_limits(inputs[0][~at_floor])  # running median: one-pixel dips stay out
    if limits is not None:
        spread = float(np.median(shown[2] - shown[1])) / 2 if len(shown) == 3 else 0.0
        lo_y, hi_y = limits[0] - spread, limits[1] + spread
        ax.set_ylim(lo_y, hi_y)
    if at_floor.any():
        n = int(at_floor.sum())
        ax.plot(grid[at_floor], np.zeros(n), transform=ax.get_xaxis_transform(), ls="none",
                marker="|", ms=12, mew=1.2, color="tab:red", clip_on=False, zorder=4,
                label=f"{n} {'point' if n == 1 else 'points'} at the ln({flux_floor:g}) floor "
                      f"(flux ≤ 0), off scale")
    ax.set_ylabel("ln flux\n(model input)")


def _message(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=9,
            color="tab:red", wrap=True)
    ax.set_yticks([])


def _model_label(model: BossNetModel) -> str:
    meta = model.metadata
    note = _PROVENANCE_NOTES.get(meta.provenance, f"({meta.provenance})")
    return f"{meta.model_name} {note}".strip()


def _wavelength_label(record: Spectrum | ReadFailure) -> str:
    """Vacuum always (the model's grid is vacuum); says so when the file's air was converted."""
    if isinstance(record, Spectrum) and record.converted_from_air:
        return "vacuum wavelength [Å] (converted from the file's air wavelengths)"
    return "vacuum wavelength [Å]"


def _as_records(source: Any) -> tuple[list[Spectrum | ReadFailure], str]:
    from ..readers.in_memory import as_records, is_in_memory

    if isinstance(source, (Spectrum, ReadFailure)):
        return [source], source.source
    if is_in_memory(source):  # specutils, Table, arrays: never iterated pixel by pixel
        records = list(as_records(source, 0))
        return records, records[0].source if records else "<memory>"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InputError(f"{path}: spectrum file not found")
        from ..readers import read_spectra

        return list(read_spectra(str(path))), str(path)
    if not isinstance(source, (list, tuple)):
        from ..readers.in_memory import ACCEPTED_INPUTS

        raise TypeError(f"plot_spectrum: cannot plot an object of type "
                        f"{type(source).__name__}; expected {ACCEPTED_INPUTS}")
    records = list(source)
    if not records or not all(isinstance(r, (Spectrum, ReadFailure)) for r in records):
        raise InputError("plot_spectrum: expected a file path or Spectrum records, got "
                         f"{type(source).__name__} (empty or of other types)")
    return records, records[0].source


def plot_spectrum(source: str | os.PathLike | Spectrum | Sequence[Spectrum | ReadFailure],
                  output: str | os.PathLike | None = None, *, hdu: int | None = None,
                  row: int | None = None, model: str | os.PathLike | BossNetModel | None = None,
                  provider: str = "auto", draws: int = 20, seed: int = 0,
                  recipe: str = "reference", air: bool = False) -> Figure:
    """One panel per spectrum: observed flux over the model's 3900-point input, labels on top.

    `source` is a spectrum file (every format `predict` reads) or Spectrum records; `hdu`/`row`
    keep only matching spectra. Labels, errors and flags are computed as `predict` computes them
    with the same `model`, `draws` and `seed`, so the title agrees with the catalogue row.
    Returns the Figure (size SPECTRUM_PANEL_SIZE per panel at DPI); saved when `output` is given.
    """
    from ..model.session import BossNetModel, open_model
    from ..run.rows import in_vacuum, prepare_spectrum, result_from_outputs

    _require_matplotlib()
    if draws < 0:
        raise ValueError(f"draws must be >= 0, got {draws}")
    records, where = _as_records(source)
    chosen = _select(records, where, hdu, row)
    if air:  # as predict --air does: the model sees vacuum wavelengths
        chosen = [in_vacuum(r) if isinstance(r, Spectrum) and not r.converted_from_air else r
                  for r in chosen]
    fig = _figure((SPECTRUM_PANEL_SIZE[0], SPECTRUM_PANEL_SIZE[1] * len(chosen)))
    session = model if isinstance(model, BossNetModel) else open_model(model, provider)
    meta = session.metadata
    grid = np.asarray(meta.grid, dtype=np.float64)
    label = _model_label(session)
    outer = fig.add_gridspec(len(chosen), 1)
    for i, record in enumerate(chosen):
        inner = outer[i].subgridspec(2, 1, height_ratios=(3, 2), hspace=0.0)
        ax_obs = fig.add_subplot(inner[0])
        ax_in = fig.add_subplot(inner[1], sharex=ax_obs)
        ax_obs.tick_params(labelbottom=False)
        labels: dict[str, float] = {}
        flags, error, quality = int(ResultFlags.RUNTIME_EXCEPTION), "", 0
        if isinstance(record, ReadFailure):
            error = record.error
            _message(ax_obs, "spectrum could not be read")
            _message(ax_in, "no model input")
            ax_obs.set_xlim(grid[0] - 300, grid[-1] + 300)
        else:
            _draw_observed(ax_obs, record, grid)
            try:
                prep = prepare_spectrum(record, meta, draws, seed, recipe)
            except BossNetError as exc:
                error = str(exc)
                _message(ax_in, "no model input: the spectrum cannot be preprocessed")
            else:
                result = result_from_outputs(prep, session.run_physical(prep.inputs), meta, draws)
                labels, flags, error = dict(result.labels), result.result_flags, result.error
                quality = result.quality_flags
                _draw_input(ax_in, grid, prep.inputs, meta.preprocessing.flux_floor)
        _mark_model_range(ax_obs, grid, label=True)
        _mark_model_range(ax_in, grid, label=False)
        # Legends sit above the axes, right of the title, so they never hide the spectrum.
        if ax_obs.get_legend_handles_labels()[0]:
            ax_obs.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=7, ncols=2,
                          frameon=False, borderaxespad=0.2)
        if ax_in.get_legend_handles_labels()[0]:
            ax_in.legend(loc="lower right", fontsize=7, ncols=3, framealpha=0.8)
        ax_obs.set_title(_title(record, labels, flags, error, label, quality), fontsize=9,
                         loc="left")
        ax_in.set_xlabel(_wavelength_label(record))
    if output is not None:
        _save(fig, output)
    return fig


# ---------------------------------------------------------------------------------- Kiel plot
#: Column names recognised for each label, first match wins (compared case-insensitively,
#: ignoring spaces): our/DR19 names, APOGEE/ASPCAP (TEFF, LOGG, FE_H, M_H), LAMOST LRS stellar
#: catalogues (teff, logg, feh), Gaia DR3 GSP-Phot, and the usual printed forms.
LABEL_ALIASES: dict[str, tuple[str, ...]] = {
    "teff": ("teff", "t_eff", "teff_k", "teff_gspphot", "teff_gspspec", "teff_lasp"),
    "logg": ("logg", "log_g", "log(g)", "logg_gspphot", "logg_gspspec", "logg_lasp"),
    "fe_h": ("fe_h", "feh", "[fe/h]", "fe/h", "m_h", "mh", "[m/h]", "feh_lasp",
             "mh_gspphot", "mh_gspspec"),
}


def _column(table: Table, name: str):
    lower = {c.lower(): c for c in table.colnames}
    return lower.get(name)


def label_columns(colnames: Sequence[str], overrides: dict[str, str | None] | None = None,
                  where: str = "table") -> dict[str, str | None]:
    """The table's column for teff, logg and fe_h: `overrides` (kiel --teff/--logg/--feh) when
    given, which must exist, else the first LABEL_ALIASES name present (None when none is)."""
    by_key = {c.lower().replace(" ", ""): c for c in colnames}
    out: dict[str, str | None] = {}
    for label, aliases in LABEL_ALIASES.items():
        wanted = (overrides or {}).get(label)
        if wanted:
            found = by_key.get(wanted.lower().replace(" ", ""))
            if found is None:
                option = {"fe_h": "--feh"}.get(label, f"--{label}")
                raise InputError(f"{where}: has no column {wanted!r} ({option}); its columns: "
                                 f"{', '.join(colnames)}")
            out[label] = found
        else:
            out[label] = next((by_key[a] for a in aliases if a in by_key), None)
    return out


def load_labels(path: str | os.PathLike, hdu: int | None = None,
                columns: dict[str, str | None] | None = None) -> Table:
    """A table with teff, logg and fe_h columns: one of our catalogues or any survey table.

    Columns are found by `label_columns` (`columns` overrides the names, e.g. {"fe_h": "FEH"}).
    FITS files are searched HDU by HDU for the first table having all three, as summary files
    such as astraAllStarBossNet hold several tables; `hdu` picks one explicitly. Other types go
    through `read_catalogue`. The file's name is kept in `meta["source_file"]` for the title.
    """
    from astropy.table import Table

    from .catalogue import read_catalogue

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: catalogue not found")
    name = path.name.lower()
    if not name.endswith(FITS_SUFFIXES):
        table = read_catalogue(path)
        table.meta["source_file"] = path.name
        label_columns(table.colnames, columns, str(path))  # a --teff/--logg/--feh not there
        return table
    import warnings

    from astropy.io import fits
    from astropy.units import UnitsWarning

    try:
        with fits.open(path, memmap=False) as hdul:
            candidates = range(len(hdul)) if hdu is None else [hdu]
            if hdu is not None and not 0 <= hdu < len(hdul):
                raise InputError(f"{path}: has HDUs 0-{len(hdul) - 1}, not --hdu {hdu}")
            for index in candidates:
                h = hdul[index]
                if not isinstance(h, (fits.BinTableHDU, fits.TableHDU)):
                    continue
                try:
                    found = label_columns(h.columns.names, columns, f"{path}[HDU {index}]")
                except InputError:
                    if hdu is not None:
                        raise
                    continue
                if all(found.values()):
                    with warnings.catch_warnings():  # TUNIT 'dex': not a FITS-standard unit
                        warnings.simplefilter("ignore", UnitsWarning)
                        table = Table.read(h)
                    table.meta["source_file"] = path.name
                    return table
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{path}: cannot read as FITS ({exc})") from None
    where = f"HDU {hdu}" if hdu is not None else "no table HDU"
    raise InputError(f"{path}: {where} has the columns teff, logg and fe_h that a Kiel diagram "
                     f"needs (any case; also e.g. TEFF/LOGG/FE_H, feh, [Fe/H], M_H); name them "
                     f"with --teff/--logg/--feh")


def _as_bool(column) -> np.ndarray:
    """Booleans from a column that CSV readers may have left as "True"/"False" text."""
    values = np.ma.asarray(column)
    if values.dtype.kind in "USO":
        text = np.char.lower(np.char.strip(np.ma.filled(values.astype(str), "false")))
        return np.isin(text, ("true", "t", "1", "yes"))
    return np.ma.filled(values, False).astype(bool)


def _flag_arrays(table: Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(failed, warn, bad) booleans from whatever flag columns the table has."""
    n = len(table)
    failed = np.zeros(n, bool)
    warn = np.zeros(n, bool)
    bad = np.zeros(n, bool)
    name = _column(table, "result_flags")
    if name is not None:
        bits = np.ma.filled(np.asarray(table[name]), 0).astype(np.int64)
        failed = (bits & int(ResultFlags.RUNTIME_EXCEPTION)) != 0
        warn, bad = flag_warn(bits), flag_bad(bits)
    for key, target in (("flag_warn", "warn"), ("flag_bad", "bad")):
        col = _column(table, key)
        if col is not None:
            values = _as_bool(table[col])
            if target == "warn":
                warn = warn | values
            else:
                bad = bad | values
    return failed, warn, bad


def _floats(table: Table, name: str) -> np.ndarray:
    col = table[name]
    values = np.ma.filled(np.ma.asarray(col, dtype=np.float64), np.nan)
    return np.asarray(values, dtype=np.float64)


def _as_table(catalogue: str | os.PathLike | Table, hdu: int | None,
              columns: dict[str, str | None] | None = None) -> tuple[Table, str]:
    from astropy.table import Table

    if isinstance(catalogue, Table):
        return catalogue, "table"
    return load_labels(catalogue, hdu=hdu, columns=columns), str(catalogue)


def _groups(table: Table, where: str, columns: dict[str, str | None] | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """teff, logg, fe_h and the row masks: good, warn, bad (drawn), failed, no_labels (not)."""
    names = label_columns(table.colnames, columns, where)
    missing = [k for k, v in names.items() if v is None]
    if missing:
        raise InputError(f"{where}: lacks column(s) {', '.join(missing)}; a Kiel diagram needs "
                         f"teff, logg and fe_h (or name them with --teff/--logg/--feh), found "
                         f"{', '.join(table.colnames)}")
    teff, logg, fe_h = (_floats(table, str(names[k])) for k in ("teff", "logg", "fe_h"))
    failed, warn, bad = _flag_arrays(table)
    quality_name = _column(table, "quality_flags")
    quality = np.zeros(len(table), bool)
    if quality_name is not None:
        quality = np.ma.filled(np.asarray(table[quality_name]), 0).astype(np.int64) != 0
    usable = ~failed & np.isfinite(teff) & np.isfinite(logg) & (teff > 0)
    masks = {
        "good": usable & ~warn & ~bad & ~quality,
        "warn": usable & warn & ~bad & ~quality,
        "bad": usable & bad,
        # input problems (our quality_flags) are not DR19 flags but must not pass as clean
        "quality": usable & quality & ~bad,
        "failed": failed,
        "no_labels": ~failed & ~usable,
    }
    return teff, logg, fe_h, masks


def kiel_counts(catalogue: str | os.PathLike | Table, *, hdu: int | None = None,
                columns: dict[str, str | None] | None = None) -> dict[str, int]:
    """Rows per Kiel-diagram group: good, warn, bad (drawn); failed, no_labels (not drawn)."""
    table, where = _as_table(catalogue, hdu, columns)
    *_, masks = _groups(table, where, columns)
    counts = {k: int(v.sum()) for k, v in masks.items()}
    counts["total"] = len(table)
    return counts


def plot_kiel(catalogue: str | os.PathLike | Table, output: str | os.PathLike | None = None,
              *, hdu: int | None = None, title: str | None = None,
              columns: dict[str, str | None] | None = None) -> Figure:
    """Teff against log g (both axes reversed, as stars sit on the HR diagram), colour [Fe/H].

    Rows with `result_flags` bit 0 or without finite teff/logg are not drawn; flag_bad rows are
    grey crosses and flag_warn rows open circles, so a flagged star is never mistaken for a good
    one; the legend gives the count of each (`kiel_counts` returns them). The Teff axis is
    logarithmic when the plotted range spans more than a factor 3 (e.g. white dwarfs next to
    M dwarfs). Columns are recognised by name (LABEL_ALIASES: also APOGEE's FE_H, LAMOST's
    feh, Gaia's mh_gspphot, [Fe/H]) or named in `columns` ({"teff": ..., "logg": ...,
    "fe_h": ...}). Returns the Figure (KIEL_SIZE at DPI); saved when `output` is given.
    """
    _require_matplotlib()
    table, where = _as_table(catalogue, hdu, columns)
    teff, logg, fe_h, masks = _groups(table, where, columns)
    n = {k: int(v.sum()) for k, v in masks.items()}
    fig = _figure(KIEL_SIZE)
    ax = fig.add_subplot()
    import matplotlib as mpl
    from matplotlib.colors import Normalize
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    usable = masks["good"] | masks["warn"] | masks["bad"] | masks["quality"]
    finite_feh = fe_h[usable & np.isfinite(fe_h)]
    lo, hi = np.percentile(finite_feh, [1, 99]) if finite_feh.size else (-2.5, 0.5)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    norm = Normalize(vmin=float(lo), vmax=float(hi))
    cmap = mpl.colormaps["viridis"]
    good, warn, bad = masks["good"], masks["warn"], masks["bad"]
    n_drawn = int(usable.sum())
    size = 30.0 if n_drawn < 300 else 12.0 if n_drawn < 20000 else 3.0
    points = ax.scatter(teff[good], logg[good], c=fe_h[good], cmap=cmap, norm=norm, s=size, lw=0,
                        label=f"no flag ({n['good']})", gid="good", plotnonfinite=True)
    edge = cmap(norm(np.nan_to_num(fe_h[warn], nan=float(lo))))
    ax.scatter(teff[warn], logg[warn], facecolors="none", edgecolors=edge, s=size * 1.6, lw=0.9,
               label=f"flag_warn ({n['warn']})", gid="warn")
    ax.scatter(teff[bad], logg[bad], c="0.45", marker="x", s=size * 1.3, lw=0.8,
               label=f"flag_bad ({n['bad']})", gid="bad")
    poor = masks["quality"]
    if n["quality"]:
        ax.scatter(teff[poor], logg[poor], facecolors="none", edgecolors="tab:red", marker="s",
                   s=size * 1.3, lw=0.8, label=f"quality_flags set ({n['quality']})",
                   gid="quality")
    fig.colorbar(points, ax=ax, pad=0.01).set_label("[Fe/H]")
    if usable.any():
        t, g = teff[usable], logg[usable]
        if t.max() / t.min() > 3.0:
            ax.set_xscale("log")
            t_lo, t_hi = t.min() / 1.08, t.max() * 1.08
            ticks = [v for v in _LOG_TEFF_TICKS if t_lo <= v <= t_hi]
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}"))
            ax.xaxis.set_minor_locator(NullLocator())
        else:
            pad = 0.05 * (t.max() - t.min()) or 100.0
            t_lo, t_hi = min(t.min() - pad, _KIEL_FRAME[0]), max(t.max() + pad, _KIEL_FRAME[1])
        g_pad = 0.05 * (g.max() - g.min()) or 0.3
        ax.set_xlim(t_hi, t_lo)
        ax.set_ylim(max(g.max() + g_pad, _KIEL_FRAME[3]), min(g.min() - g_pad, _KIEL_FRAME[2]))
    else:
        ax.set_xlim(8000, 3000)
        ax.set_ylim(6, 0)
        ax.text(0.5, 0.5, "no rows with labels to plot", transform=ax.transAxes, ha="center")
    ax.set_xlabel("Teff [K]")
    ax.set_ylabel("log g [dex]")
    legend_title = f"{len(table)} rows"
    if n["failed"] or n["no_labels"]:
        legend_title += (f"; not drawn: {n['failed']} failed (bit 0), "
                         f"{n['no_labels']} without Teff/log g")
    # Upper left is hot, low-gravity stars: the emptiest corner of a Kiel diagram.
    ax.legend(loc="upper left", fontsize=8, title=legend_title, title_fontsize=8,
              framealpha=0.85)
    if title is None:
        title = str(table.meta.get("source_file") or "Kiel diagram")
        model = table.meta.get("MODEL")
        if model:
            prov = table.meta.get("PROVNC")
            note = f", {prov}" if prov and prov != "published-weights" else ""
            title += f"   (model {model}{note})"
    ax.set_title(title, fontsize=10)
    ax.grid(True, lw=0.3, alpha=0.5)
    if output is not None:
        _save(fig, output)
    return fig
