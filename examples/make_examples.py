"""Write the small example spectra of the README quick start (reproducible, seeded).

They are synthetic (bossnet_onnx.synthetic) but written in the real survey layouts, so
`bossnet-onnx predict examples/*.fits` runs the same readers as real SDSS files. The true labels
go to examples/LABELS.tsv for comparison with the predictions.

    python examples/make_examples.py [--out examples]
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from astropy.io.fits.verify import VerifyWarning

from bossnet_onnx.synthetic.layouts import write_mwm, write_spec
from bossnet_onnx.synthetic.spectra import synthesize

SEED = 2024


def make_examples(out: str | Path) -> list[Path]:
    """Write the example files into `out`; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    truth: list[tuple[str, str, float, float, float, float, float]] = []
    written: list[Path] = []

    # One SDSS spec file per star: a solar-type G dwarf and an M dwarf.
    for name, (teff, logg, feh, rv, snr), fiber, sub in (
        ("spec-9999-60000-0042.fits", (5800.0, 4.4, 0.0, 23.5, 40.0), 42, "G2"),
        ("spec-9999-60000-0108.fits", (3500.0, 4.9, -0.2, -48.0, 30.0), 108, "M2"),
    ):
        wave, flux, ivar = synthesize(teff, logg, feh, rv, snr, rng)
        written.append(write_spec(out / name, wave, flux, ivar, plate=9999, mjd=60000,
                                  fiberid=fiber, catalogid=27021597000000000 + fiber,
                                  sdss_id=100000000 + fiber, subclass=sub, overwrite=True))
        truth.append((name, "HDU 1", teff, logg, feh, rv, snr))

    # mwmStar: one K giant observed from APO (good S/N) and LCO (poorer).
    sdss_id, catalogid = 100000201, 27021597000000201
    k_giant = (4600.0, 2.4, -0.6, -61.3)
    rows = {}
    for site, snr in (("apo", 60.0), ("lco", 25.0)):
        _, flux, ivar = synthesize(*k_giant, snr, rng)
        rows[site] = [{"flux": flux, "ivar": ivar, "sdss_id": sdss_id, "catalogid": catalogid,
                       "telescope": f"{site}25m", "min_mjd": 59800, "max_mjd": 60100,
                       "n_visits": 3}]
        truth.append((f"mwmStar-0.6.0-{sdss_id}.fits", f"BOSS/{site.upper()} row 0",
                      *k_giant, snr))
    written.append(write_mwm(out / f"mwmStar-0.6.0-{sdss_id}.fits", rows["apo"], rows["lco"],
                             kind="star", sdss_id=sdss_id, catalogid=catalogid, overwrite=True))

    # mwmVisit: three APO visits of an A-type binary (the RV changes between visits).
    sdss_id, catalogid = 100000202, 27021597000000202
    visits = []
    for i, (rv, snr, mjd) in enumerate(((12.0, 35.0, 59850), (-35.0, 50.0, 59900),
                                        (48.0, 20.0, 59990))):
        _, flux, ivar = synthesize(8500.0, 4.1, -0.3, rv, snr, rng)
        visits.append({"flux": flux, "ivar": ivar, "sdss_id": sdss_id, "catalogid": catalogid,
                       "telescope": "apo25m", "mjd": mjd})
        truth.append((f"mwmVisit-0.6.0-{sdss_id}.fits", f"BOSS/APO row {i}", 8500.0, 4.1, -0.3,
                      rv, snr))
    written.append(write_mwm(out / f"mwmVisit-0.6.0-{sdss_id}.fits", visits, (), kind="visit",
                             sdss_id=sdss_id, catalogid=catalogid, overwrite=True))

    lines = ["file\twhere\tteff\tlogg\tfe_h\trv_kms\tsnr"]
    lines += ["\t".join([f, w] + [f"{v:g}" for v in vals]) for f, w, *vals in truth]
    (out / "LABELS.tsv").write_text("\n".join(lines) + "\n")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent))
    args = parser.parse_args(argv)
    # Harmless astropy header-verification notes from the writers are not worth printing.
    warnings.simplefilter("ignore", VerifyWarning)
    for path in make_examples(args.out):
        print(f"{path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
