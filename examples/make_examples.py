"""Write the small example spectra of the README quick start (reproducible, seeded).

They are synthetic (bossnet_onnx.synthetic) but written in the real survey layouts, so
`bossnet-onnx predict examples/*.fits` runs the same readers as real SDSS files, in DR19's frames
and key names: spec files barycentric, mwmStar coadds and in-stack mwmVisit rows in the star's
rest frame (shifted by their XCSAO velocity), other visits barycentric. The true labels go to
examples/LABELS.tsv for comparison with the predictions.

    python examples/make_examples.py [--out examples]
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from astropy.io.fits.verify import VerifyWarning

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test tooling: survey-file writers
from layouts import write_mwm, write_spec

from bossnet_onnx.science.synthetic import synthesize

SEED = 2024


def make_examples(out: str | Path) -> list[Path]:
    """Write the example files into `out`; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    truth: list[tuple] = []
    written: list[Path] = []

    # One SDSS-V spec file per star (barycentric wavelengths): a G dwarf and an M dwarf.
    for name, (teff, logg, feh, rv, snr), fiber, sub in (
        ("spec-9999-60000-0042.fits", (5800.0, 4.4, 0.0, 23.5, 40.0), 42, "G2"),
        ("spec-9999-60000-0108.fits", (3500.0, 4.9, -0.2, -48.0, 30.0), 108, "M2"),
    ):
        wave, flux, ivar = synthesize(teff, logg, feh, rv, snr, rng)
        written.append(write_spec(out / name, wave, flux, ivar, plate=9999, mjd=60000,
                                  fiberid=fiber, catalogid=27021597000000000 + fiber,
                                  sdss_id=100000000 + fiber, subclass=sub, obs="APO",
                                  ra=150.0 + fiber / 100, dec=2.0, snr=snr,
                                  xcsao_rv=rv + 0.4, xcsao_erv=1.5,
                                  specobjid=f"{9999}{60000}{fiber:05d}", overwrite=True))
        truth.append((name, "HDU 1", "barycentric", teff, logg, feh, rv, rv, snr))

    # mwmStar: one K giant observed from APO (good S/N) and LCO (poorer). DR19 coadds are in
    # the star's rest frame: each visit was shifted by its XCSAO velocity before stacking, so
    # the spectrum carries only the residual (true RV minus the XCSAO mean `v_rad`).
    sdss_id, catalogid = 100000201, 27021597000000201
    teff, logg, feh, true_rv = 4600.0, 2.4, -0.6, -61.3
    rows = {}
    for i, (site, snr, xcsao_mean) in enumerate((("apo", 60.0, -61.0), ("lco", 25.0, -62.1))):
        residual = true_rv - xcsao_mean
        _, flux, ivar = synthesize(teff, logg, feh, residual, snr, rng)
        rows[site] = [{"flux": flux, "ivar": ivar, "sdss_id": sdss_id, "catalogid": catalogid,
                       "telescope": f"{site}25m", "min_mjd": 59800, "max_mjd": 60100,
                       "n_visits": 3, "n_good_visits": 3, "spectrum_pk_id": 7000201 + i,
                       "v_rad": xcsao_mean, "e_v_rad": 0.3, "snr": snr}]
        truth.append((f"mwmStar-0.6.0-{sdss_id}.fits", f"BOSS/{site.upper()} row 0", "rest",
                      teff, logg, feh, true_rv, residual, snr))
    written.append(write_mwm(out / f"mwmStar-0.6.0-{sdss_id}.fits", rows["apo"], rows["lco"],
                             kind="star", sdss_id=sdss_id, catalogid=catalogid, ra=210.5,
                             dec=-5.25, gaia_v_rad=-60.8, overwrite=True))

    # mwmVisit: three APO visits of an A-type binary (the RV changes between visits). Two are
    # in the stack (rest frame: shifted by their own xcsao_v_rad, leaving a small residual);
    # the third failed the stacking cut (XCSAO R < 6) and stays barycentric.
    sdss_id, catalogid = 100000202, 27021597000000202
    visits = []
    for i, (rv, xcsao, in_stack, snr, mjd) in enumerate((
            (12.0, 11.2, True, 35.0, 59850), (-35.0, -34.1, True, 50.0, 59900),
            (48.0, 40.0, False, 20.0, 59990))):
        in_frame = rv - xcsao if in_stack else rv
        _, flux, ivar = synthesize(8500.0, 4.1, -0.3, in_frame, snr, rng)
        visits.append({"flux": flux, "ivar": ivar, "sdss_id": sdss_id, "catalogid": catalogid,
                       "telescope": "apo25m", "mjd": mjd, "fieldid": 101234, "plateid": 0,
                       "spectrum_pk_id": 8000202 + i, "drp_spectrum_pk_id": 9000202 + i,
                       "in_stack": in_stack, "xcsao_v_rad": xcsao, "xcsao_e_v_rad": 1.2,
                       "xcsao_rxc": 12.0 if in_stack else 4.0, "snr": snr})
        truth.append((f"mwmVisit-0.6.0-{sdss_id}.fits", f"BOSS/APO row {i}",
                      "rest" if in_stack else "barycentric", 8500.0, 4.1, -0.3, rv, in_frame,
                      snr))
    written.append(write_mwm(out / f"mwmVisit-0.6.0-{sdss_id}.fits", visits, (), kind="visit",
                             sdss_id=sdss_id, catalogid=catalogid, ra=33.75, dec=41.5,
                             overwrite=True))

    # rv_kms: the true barycentric RV; rv_in_frame_kms: the shift the spectrum carries in
    # its own frame (what bn_v_r measures; bn_v_bary should come back to rv_kms)
    lines = ["file\twhere\tframe\tteff\tlogg\tfe_h\trv_kms\trv_in_frame_kms\tsnr"]
    lines += ["\t".join([f, w, frame] + [f"{v:g}" for v in vals])
              for f, w, frame, *vals in truth]
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
