"""Regenerate the README figures (docs/figures/spectrum.png, docs/figures/kiel.png).

    python docs/figures/make_figures.py [--model MODEL] [--examples DIR] [--synthetic N]

By default both figures come from the bundled example spectra (examples/) and the default model,
through the same public functions the `plot` and `kiel` commands use: the Kiel diagram of
`predict` over every example file, and the spectrum plot of the first example (SDSS spec files
first) that was predicted without any flag. `--synthetic N` uses N spectra from
`bossnet_onnx.synthetic` instead (for when no example data is at hand); the figures then say so
in their titles.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bossnet_onnx.model.session import open_model
from bossnet_onnx.outputs.catalogue import build_table
from bossnet_onnx.outputs.plotting import plot_kiel, plot_spectrum
from bossnet_onnx.run.options import RunOptions
from bossnet_onnx.run.rows import prepare_spectrum, result_from_outputs
from bossnet_onnx.run.stream import predict, run_metadata
from bossnet_onnx.spectrum import Spectrum

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SUFFIXES = (".fits", ".fits.gz", ".fit", ".csv", ".ecsv")


def example_files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.iterdir()
                  if p.is_file() and p.name.lower().endswith(SUFFIXES))


def from_examples(files: list[str], model, draws: int, seed: int) -> None:
    table = predict(files, model=model, draws=draws, seed=seed)
    n_files = len(set(table["path"]))
    plot_kiel(table, HERE / "kiel.png",
              title=f"bundled examples: {len(table)} spectra from {n_files} files   "
                    f"(model {table.meta['MODEL']}, {table.meta['PROVNC']})")
    # A single-spectrum SDSS spec file without flags makes the clearest one-panel figure.
    clean = sorted((r for r in table if r["result_flags"] == 0),
                   key=lambda r: not Path(str(r["path"])).name.startswith("spec-"))
    pick = clean[0] if clean else table[int(np.argmin(table["result_flags"]))]
    plot_spectrum(str(pick["path"]), HERE / "spectrum.png", hdu=int(pick["hdu"]),
                  row=int(pick["row"]), model=model, draws=draws, seed=seed)
    print(f"kiel: {len(table)} rows; spectrum: {pick['source']} HDU {pick['hdu']} "
          f"row {pick['row']}")


def from_synthetic(n: int, model, draws: int, seed: int) -> None:
    from bossnet_onnx.science.synthetic import sample_labels, synthesize_batch

    rng = np.random.default_rng(seed)
    labels = sample_labels(n, rng)
    wave, flux, ivar = synthesize_batch(labels["teff"], labels["logg"], labels["fe_h"],
                                        labels["rv"], labels["snr"], rng, ebv=labels["ebv"])
    records = [Spectrum(wave, flux[i], ivar[i], source=f"synthetic-{i:04d}.fits",
                        format="synthetic", hdu=1, row=i) for i in range(n)]
    results = []
    for spec in records:
        prep = prepare_spectrum(spec, model.metadata, draws, seed)
        results.append(result_from_outputs(prep, model.run_physical(prep.inputs), model.metadata, draws))
    table = build_table(results, meta=run_metadata(model, RunOptions(draws=draws, seed=seed)))
    plot_kiel(table, HERE / "kiel.png",
              title=f"{n} synthetic spectra   (model {table.meta['MODEL']}, "
                    f"{table.meta['PROVNC']})")
    best = int(np.argmax(np.where(table["result_flags"] == 0, labels["snr"], -1)))
    plot_spectrum(records[best], HERE / "spectrum.png", model=model, draws=draws, seed=seed)
    print(f"kiel: {n} synthetic spectra; spectrum: synthetic row {best}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="ONNX model (default: the bundled one)")
    parser.add_argument("--examples", type=Path, default=REPO / "examples")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N")
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = open_model(args.model, provider="cpu")
    files = [] if args.synthetic else example_files(args.examples)
    if files:
        from_examples(files, model, args.draws, args.seed)
    else:
        from_synthetic(args.synthetic or 400, model, args.draws, args.seed)


if __name__ == "__main__":
    main()
