#!/usr/bin/env python3
"""Accuracy budget of every engine x precision on trained weights, in physical units.

Why: a reduced precision is offered for a network only when it stays within the budget of
bossnet_onnx.model.precision (median and 99.9th percentile / max |Δ| against exact fp32 onnxruntime).
This prints the figures behind that verdict for the bundled demo model (trained on synthetic
spectra; or any --model, e.g. a published model you pulled and exported) on two held-out sets:
the runtime's deterministic synthetic set (what `--precision` measures on first use) and the
real survey spectra in ../shared/data (when present). Plain bf16 (everything in bf16) is shown
next to the mixed plan that is offered, and int8 is the exported int8 copy.

    python benchmarks/precision.py [--model M.onnx] [--n 768] [--markdown]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from bossnet_onnx.model import engine_openvino
from bossnet_onnx.model.precision import (
    BUDGET,
    QUANTITIES,
    UNITS,
    compare,
    heldout_inputs,
    int8_sibling,
)
from bossnet_onnx.model.session import BossNetModel, open_model

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def real_inputs(model: BossNetModel, folders: list[Path], draws: int = 20) -> np.ndarray:
    """Model input rows of every spectrum the readers find in `folders`, noise-free row plus
    `draws` Monte-Carlo copies each (all of them are model inputs in a real run)."""
    from bossnet_onnx.run.options import RunOptions
    from bossnet_onnx.run.reading import StageTimes, read_and_prepare
    from bossnet_onnx.run.rows import Prepared

    rows = []
    for folder in folders:
        for path in sorted(p for p in folder.iterdir() if p.is_file()):
            items = read_and_prepare(str(path), model.metadata, RunOptions(draws=draws), StageTimes())
            rows.extend(item.inputs for item in items if isinstance(item, Prepared))
    return np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)


def make_int8_copy(fp32: Path, workdir: Path) -> Path | None:
    """The int8 copy `bossnet-onnx export --quantize int8` would write, made from the .onnx.

    The demo model's checkpoint is not shipped, so the copy is quantized from the ONNX file
    with the exporter's own routine, its parity reference being the fp32 ONNX model.
    """
    try:
        import torch

        from bossnet_export.quantize import quantize_int8
    except ImportError:
        return None
    import onnxruntime as ort

    session = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])

    class OnnxAsTorch(torch.nn.Module):
        def forward(self, x):
            rows = x.numpy().reshape(x.shape[0], -1)
            return torch.from_numpy(session.run(["normalized"], {"flux": rows})[0])

    local = workdir / fp32.name
    local.write_bytes(fp32.read_bytes())
    meta = open_model(local, provider="cpu").metadata
    quantize_int8(local, int8_sibling(local), OnnxAsTorch(), meta)
    return local


def variants(path: Path, threads: int, workdir: Path) -> list[tuple[str, BossNetModel]]:
    """(label, model) for every engine x precision installed, built without the budget gate."""
    ref = open_model(path, provider="cpu", threads=threads)
    out = [("onnxruntime fp32", ref)]

    def wrap(session, engine: str, precision: str) -> BossNetModel:
        return BossNetModel(path=path, metadata=ref.metadata, session=session,
                            provider=session.get_providers()[0], threads=threads,
                            engine=engine, precision=precision)

    if engine_openvino.available():
        out.append(("openvino fp32", wrap(engine_openvino.open_session(path, threads), "openvino",
                                          "fp32")))
        if engine_openvino.supports_bf16():
            out.append(("openvino bf16 plain", wrap(engine_openvino.open_session(
                path, threads, "bf16", bf16_plan="plain"), "openvino", "bf16")))
            out.append(("openvino bf16 (offered plan)", wrap(engine_openvino.open_session(
                path, threads, "bf16"), "openvino", "bf16")))
    int8_source = path if int8_sibling(path).is_file() else make_int8_copy(path, workdir)
    if int8_source is not None:
        q = open_model(int8_sibling(int8_source), provider="cpu", threads=threads)
        q.precision = "int8"
        out.append(("onnxruntime int8", q))
    return out


def table(rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        return "\n".join(["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])] +
                         ["| " + " | ".join(r) + " |" for r in rows[1:]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--n", type=int, default=None, help="held-out synthetic spectra")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    ref = open_model(args.model, provider="cpu", threads=args.threads)
    path = ref.path
    sets = {"synthetic": heldout_inputs(ref, args.n)}
    folders = [f for f in (args.data, EXAMPLES) if f.is_dir()]
    if folders:
        real = real_inputs(ref, folders)
        if real.size:
            sets["real"] = real
    print(f"model: {path.name} ({ref.metadata.model_name}, {ref.metadata.provenance}); "
          f"held-out: " + ", ".join(f"{k} {v.shape[0]} spectra" for k, v in sets.items()))
    print("budget: median " + ", ".join(f"{q} {BUDGET.median[q]:g} {UNITS[q]}" for q in QUANTITIES)
          + "; p99.9 and max " + ", ".join(f"{q} {BUDGET.maximum[q]:g}" for q in QUANTITIES))
    expected = {name: ref.run_physical(x) for name, x in sets.items()}
    head = ["engine / precision", "set"] + [f"|Δ{q}| {UNITS[q]} med/p99.9/max" for q in QUANTITIES] \
        + ["verdict"]
    rows = [head]
    with tempfile.TemporaryDirectory() as tmp:
        for label, model in variants(path, args.threads, Path(tmp)):
            for name, x in sets.items():
                got = compare(expected[name], model.run_physical(x), ref.metadata.parameter_names)
                cells = [f"{got['median'][q]:.2g}/{got['p999'][q]:.2g}/{got['maximum'][q]:.2g}"
                         for q in QUANTITIES]
                verdict = "within" if not got["misses"] else "MISSES: " + got["misses"][0]
                rows.append([label, f"{name} ({x.shape[0]})", *cells, verdict])
    print()
    print(table(rows, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
