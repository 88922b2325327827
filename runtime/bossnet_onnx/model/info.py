"""What a model file is, before anyone trusts its numbers: `bossnet-onnx info`.

A demonstration model trained on synthetic spectra and an export of the published weights have
the same shape and run the same way; only their metadata tells them apart. This gathers that
metadata, the file's own checksum and the execution providers this onnxruntime offers into one
plain dict (JSON-ready, for scripts and provenance records) and prints it for people.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["model_info", "format_model_info", "PROVENANCE_TEXT"]

#: What each provenance kind means for the person reading the results.
PROVENANCE_TEXT = {
    "published-weights": "exported from the published BOSS Net weights (Sizemore et al. 2024)",
    "synthetic-demo": "demonstration model trained on synthetic spectra; for science, export the "
                      "published weights (`bossnet-onnx models pull boss`, then --model boss)",
    "random-weights": "random weights: for tests and benchmarks only, its labels mean nothing",
    "user-weights": "exported from user-supplied weights (check their origin)",
}


def _dims(shape: list[Any]) -> list[Any]:
    return [d if isinstance(d, int) else str(d) for d in shape]


def model_info(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Everything worth knowing about a BOSS Net ONNX file (default: the bundled model).

    The file is opened with the CPU provider, which validates its metadata and signature as
    `predict` would, so a model `info` accepts is one `predict` can run.
    """
    from ..hashing import file_sha256
    from .session import import_onnxruntime, open_model

    ort = import_onnxruntime()
    model = open_model(path, provider="cpu", threads=1)
    meta = model.metadata
    session = model.session
    assert session is not None  # just opened
    file_path = Path(model.path).resolve()
    inputs = session.get_inputs()
    outputs = session.get_outputs()
    batch = inputs[0].shape[0]
    producer = session.get_modelmeta()
    grid = meta.grid
    return {
        "path": str(file_path),
        "file_size_bytes": file_path.stat().st_size,
        "file_sha256": file_sha256(file_path),
        "model_name": meta.model_name,
        "provenance": meta.provenance,
        "provenance_text": PROVENANCE_TEXT.get(meta.provenance, meta.provenance),
        "is_demo": meta.is_demo,
        "description": meta.description,
        "weights_sha256": meta.weights_sha256,
        "member": meta.member,
        "member_title": meta.family_member.title,
        "reads": meta.family_member.reads,
        "grid": {"start": float(grid[0]), "stop": float(grid[-1]), "n": int(grid.shape[0]),
                 "unit": "Angstrom" if meta.family_member.input_axis == "wavelength" else "coefficient",
                 "step": float((grid[-1] - grid[0]) / (grid.shape[0] - 1))},
        "parameters": list(meta.parameter_names),
        # MEAN and STD first: they are what turns network outputs into physical labels.
        "stats": {p: {k: float(meta.stats[p][k]) for k in
                      sorted(meta.stats[p], key=lambda k: (k not in ("MEAN", "STD"), k))}
                  for p in meta.parameter_names},
        "preprocessing": meta.preprocessing.to_json(),
        "opset": int(meta.opset),
        "exporter": dict(meta.exporter),
        # which converter built the file; files from before the key existed came from torch
        "converter": str(meta.exporter.get("converter", "torch")),
        "producer": producer.producer_name,
        "format_version": int(meta.format_version),
        "batch": "dynamic" if not isinstance(batch, int) else f"fixed {batch}",
        "fixed_batch_size": batch if isinstance(batch, int) else None,
        "inputs": {i.name: {"shape": _dims(i.shape), "type": i.type} for i in inputs},
        "outputs": {o.name: {"shape": _dims(o.shape), "type": o.type} for o in outputs},
        "model_config": dict(meta.model_config),
        "source": dict(meta.source) if meta.source else None,
        "onnxruntime_version": ort.__version__,
        "available_providers": list(ort.get_available_providers()),
        "openvino": _openvino_status(),
    }


def _openvino_status() -> dict[str, Any] | None:
    """The second engine, if installed: its version and whether this CPU can run bf16."""
    from . import engine_openvino

    if not engine_openvino.available():
        return None
    return {"version": engine_openvino.version(), "bf16": engine_openvino.supports_bf16()}


def _size(n_bytes: int) -> str:
    n = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def format_model_info(info: dict[str, Any]) -> str:
    """The dict from `model_info` as aligned text lines for a terminal."""
    grid = info["grid"]
    exporter = ", ".join(f"{k} {v}" for k, v in info["exporter"].items()) or "-"
    lines = [
        ("model", info["model_name"]),
        ("file", f"{info['path']} ({_size(info['file_size_bytes'])})"),
        ("provenance", f"{info['provenance']}: {info['provenance_text']}"),
        ("member", f"{info['member']} ({info['member_title']}): reads {info['reads']}"),
    ]
    if info["description"]:
        lines.append(("description", info["description"]))
    source = info.get("source")
    if source:
        lines += [
            ("published set", f"{source['registry_name']} ({source.get('member', 'boss')})"),
            ("  repository", f"{source['repository']} {source.get('folder', '')}".rstrip()),
            ("  commit", source["commit"]),
            ("  files", f"{len(source.get('files', []))} verified by git blob id "
                        f"(ids: --json)"),
        ]
    lines += [
        ("file sha256", info["file_sha256"]),
        ("weights sha256", info["weights_sha256"]),
        ("grid", f"{grid['start']:.1f}-{grid['stop']:.1f} A, {grid['n']} points "
                 f"(step {grid['step']:.4f} A)" if grid["unit"] == "Angstrom" else
                 f"{grid['n']} coefficients (no wavelength axis)"),
        ("parameters", ", ".join(info["parameters"])),
    ]
    for name, stat in info["stats"].items():
        text = ", ".join(f"{k} {v:.6g}" for k, v in stat.items())
        lines.append((f"  stats {name}", text))
    lines += [
        ("preprocessing", str(info["preprocessing"].get("version"))),
        ("opset", str(info["opset"])),
        ("converter", info.get("converter", "torch")),
        ("exporter", exporter),
        ("batch", info["batch"]),
        ("inputs", "; ".join(f"{k} {v['shape']} {v['type']}" for k, v in info["inputs"].items())),
        ("outputs", "; ".join(f"{k} {v['shape']}" for k, v in info["outputs"].items())),
        ("onnxruntime", f"{info['onnxruntime_version']}; providers: "
                        f"{', '.join(info['available_providers'])}"),
        ("openvino", "not installed (pip install 'bossnet-onnx[openvino]')"
         if info.get("openvino") is None else
         f"{info['openvino']['version']}; bf16 on this CPU: "
         f"{'yes' if info['openvino']['bf16'] else 'no'}"),
    ]
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in lines)
