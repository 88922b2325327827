"""What both converters share about the file they write: its metadata and the report.

One home, so that a model built by torch and one built without it differ only in the
`converter` entry of `bossnet.exporter` (and the library versions listed there).
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExportError
from ..model.metadata import PROVENANCES, ModelMetadata, Preprocessing
from ..science.members import MEMBERS, OFFICIAL_STATS, input_grid
from .architecture import reference_grid
from .config import BossNetConfig, load_stats
from .probes import ParityReport

__all__ = ["CONVERTERS", "ExportReport", "model_metadata", "exporter_record"]

#: Who built a model file (`bossnet.exporter["converter"]`, shown by `info`).
CONVERTERS = ("torch", "numpy")


@dataclass
class ExportReport:
    """What was written and how faithful it is."""

    output: Path
    metadata: ModelMetadata
    parity: ParityReport
    n_parameters: int
    file_bytes: int
    seconds: float
    output_spread: float
    quantized: Any = None  # QuantizeReport when --quantize was asked
    converter: str = "torch"

    @property
    def max_abs_diff(self) -> float:
        return self.parity.max_abs_diff

    def summary(self) -> str:
        lines = [
            f"wrote {self.output} ({self.file_bytes / 1e6:.1f} MB, {self.n_parameters:,} "
            f"parameters, opset {self.metadata.opset}, batch "
            f"{self.metadata.batch_size or 'dynamic'}, converter {self.converter}) in "
            f"{self.seconds:.1f} s",
            f"parity: {self.parity.summary()}",
        ]
        if self.quantized is not None:
            lines.append(self.quantized.summary())
        return "\n".join(lines)


def exporter_record(converter: str, route: str, **libraries: Any) -> dict[str, Any]:
    """`bossnet.exporter`: which converter, by which route, with which library versions."""
    from .. import __version__

    return {"package": "bossnet-onnx", "version": __version__, "converter": converter,
            **libraries, "route": route,
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def model_metadata(config: BossNetConfig, *, member: str, weights_sha256: str,
                   exporter: Mapping[str, Any], opset: int,
                   stats: str | Path | Mapping[str, Mapping[str, float]] | None = None,
                   name: str | None = None, batch: int | None = None,
                   provenance: str = "user-weights", description: str = "",
                   n_pixels: int | None = None, source: Mapping[str, Any] | None = None,
                   ) -> ModelMetadata:
    """The metadata of a converted model, its arguments checked (ExportError naming the bad one).

    `member` fixes the input length, grid, output names, default stats and preprocessing
    version; `n_pixels` may differ from the member's only for BOSS Net (which interpolates onto
    whatever grid it was trained on).
    """
    if member not in MEMBERS:
        raise ExportError(f"--member {member!r} is not a family member; choose one of "
                          f"{', '.join(MEMBERS)}")
    recipe = MEMBERS[member]
    if n_pixels is None:
        n_pixels = recipe.n_inputs
    elif member != "boss" and n_pixels != recipe.n_inputs:
        raise ExportError(f"{recipe.title} reads {recipe.n_inputs} inputs, not {n_pixels}")
    if provenance not in PROVENANCES:
        raise ExportError(f"provenance {provenance!r} is not one of {PROVENANCES}")
    if batch is not None and batch < 1:
        raise ExportError(f"--batch is {batch}; expected a positive integer or none (dynamic)")
    if not (isinstance(weights_sha256, str) and len(weights_sha256) == 64):
        raise ExportError(f"weights_sha256 {weights_sha256!r} is not a 64-digit hex sha256")
    names = recipe.parameter_names
    if config.num_targets != len(names):
        raise ExportError(f"the network predicts {config.num_targets} values; {recipe.title} "
                          f"models predict {len(names)} ({', '.join(names)})")
    stats_doc = load_stats(OFFICIAL_STATS[member] if stats is None else stats, names)
    return ModelMetadata(
        model_name=name or "bossnet",
        provenance=provenance,
        parameter_names=names,
        stats=stats_doc,
        grid=reference_grid(n_pixels) if member == "boss" else input_grid(recipe),
        preprocessing=Preprocessing(version=recipe.preprocessing_version),
        weights_sha256=weights_sha256,
        exporter=dict(exporter),
        opset=int(opset),
        input_name="flux",
        input_rank=2,
        batch_size=batch,
        description=description,
        model_config=config.to_dict(),
        source=dict(source) if source is not None else None,
        member=member,
    )


def means_stds(metadata: ModelMetadata) -> tuple[np.ndarray, np.ndarray]:
    """MEAN and STD in the network's output order, float64."""
    names = metadata.parameter_names
    return (np.array([metadata.stats[p]["MEAN"] for p in names], dtype=np.float64),
            np.array([metadata.stats[p]["STD"] for p in names], dtype=np.float64))
