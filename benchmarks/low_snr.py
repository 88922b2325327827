"""Why QualityFlags.LOW_SNR is set below snr_model = 5: label error against S/N.

Synthetic spectra (bossnet_onnx.synthetic) with known labels at fixed S/N, run through the
bundled demo model with the reference recipe; prints the rms error of Teff, log g and [Fe/H]
per S/N level and `snr_model` as measured. The demo model is trained on the same synthetic
family, so the figures show the shape of the curve (a floor at high S/N, a steep rise below),
not the published network's accuracy.

    python benchmarks/low_snr.py [--per-level 40] [--seed 5]
"""
from __future__ import annotations

import argparse

import numpy as np

from bossnet_onnx.model.session import open_model
from bossnet_onnx.run.rows import prepare_spectrum, result_from_outputs
from bossnet_onnx.science.synthetic import synthesize
from bossnet_onnx.spectrum import Spectrum

LEVELS = (1, 2, 3, 5, 8, 12, 20, 40)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-level", type=int, default=40)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    model = open_model(None)
    rng = np.random.default_rng(args.seed)
    print("S/N  snr_model  rms dTeff [K]  rms dlogg  rms dFeH")
    for snr in LEVELS:
        rows = []
        for _ in range(args.per_level):
            teff, logg = rng.uniform(4000, 7000), rng.uniform(1.5, 4.8)
            feh, rv = rng.uniform(-1.5, 0.3), rng.uniform(-80, 80)
            wave, flux, ivar = synthesize(teff, logg, feh, rv, snr, rng)
            prep = prepare_spectrum(Spectrum(wave, flux, ivar, source="synthetic", format="x"),
                                    model.metadata, 0, 0)
            labels = result_from_outputs(prep, model.run_physical(prep.inputs),
                                         model.metadata, 0).labels
            rows.append((labels["teff"] - teff, labels["logg"] - logg, labels["fe_h"] - feh,
                         prep.snr_model))
        d = np.array(rows)
        rms = np.sqrt(np.mean(d[:, :3] ** 2, axis=0))
        print(f"{snr:3d}  {np.median(d[:, 3]):9.1f}  {rms[0]:13.0f}  {rms[1]:9.2f}  "
              f"{rms[2]:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
