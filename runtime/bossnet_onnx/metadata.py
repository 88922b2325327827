"""The contract between export and runtime: what a BOSS Net ONNX file says about itself.

The export step (which has torch) writes these keys into the ONNX `metadata_props`, each value a
JSON document; the runtime (which has no torch) reads them and refuses a model that lacks one,
naming the key. Keeping the contract in one torch-free module means both sides share it.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ModelMetadataError

__all__ = [
    "FORMAT_VERSION",
    "PREPROCESSING_VERSION",
    "REQUIRED_KEYS",
    "DEFAULT_PARAMETER_NAMES",
    "DEFAULT_STATS",
    "Preprocessing",
    "ModelMetadata",
    "reference_grid_numpy",
]

FORMAT_VERSION = 1
PREPROCESSING_VERSION = "bossnet-log95-v1"
PREFIX = "bossnet."

#: Output order of the network (official BOSS Net).
DEFAULT_PARAMETER_NAMES = ("logg", "logTeff", "FeH", "rv")

#: Official BOSS normalisation statistics (stats/boss.yaml of the reference).
DEFAULT_STATS: dict[str, dict[str, float]] = {
    "logTeff": {"MEAN": 3.8, "STD": 0.1, "PNMIN": -6.324908332532, "PNMAX": 12.000000000000002},
    "logg": {"MEAN": 3.9, "STD": 0.9, "PNMIN": -4.403565883333333, "PNMAX": 6.584444444444444},
    "FeH": {"MEAN": -0.4, "STD": 0.5, "PNMIN": -7.496200000000001, "PNMAX": 4.4496842},
    "rv": {"MEAN": -7.4, "STD": 60.9, "PNMIN": -9.116415791127874, "PNMAX": 9.074319773706897},
}

REQUIRED_KEYS = (
    "format_version",
    "model_name",
    "provenance",
    "parameter_names",
    "stats",
    "grid",
    "preprocessing",
    "weights_sha256",
    "exporter",
    "opset",
    "io",
)

PROVENANCES = ("published-weights", "synthetic-demo", "random-weights", "user-weights")


def reference_grid_numpy(start: float = 3800.0, stop: float = 8900.0, n: int = 3900) -> np.ndarray:
    """A numpy approximation of the reference grid, for when no exact grid is available.

    The reference uses `torch.linspace` in float32, which differs from this in a few hundred
    points by < 1e-3 A; exported models carry the exact values, so this is only a fallback
    for building synthetic metadata in tests.
    """
    return np.linspace(start, stop, n, dtype=np.float64).astype(np.float32)


@dataclass(frozen=True)
class Preprocessing:
    """Constants of the reference preprocessing recipe, stored in the model."""

    version: str = PREPROCESSING_VERSION
    flux_floor: float = 1e-6
    clip_quantile: float = 0.95
    clip_offset: float = 1.0
    sigma_clip_factor: float = 5.0
    default_sigma_fraction: float = 0.1

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ModelMetadata:
    """Everything the runtime needs to know about a model, parsed and checked."""

    model_name: str
    provenance: str
    parameter_names: tuple[str, ...]
    stats: Mapping[str, Mapping[str, float]]
    grid: np.ndarray
    preprocessing: Preprocessing
    weights_sha256: str
    exporter: Mapping[str, Any]
    opset: int
    input_name: str = "flux"
    input_rank: int = 2
    normalized_output: str = "normalized"
    physical_output: str = "physical"
    batch_size: int | None = None
    description: str = ""
    model_config: Mapping[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    # ----------------------------------------------------------------- derived
    @property
    def n_pixels(self) -> int:
        return int(self.grid.shape[0])

    @property
    def means(self) -> np.ndarray:
        return np.array([self.stats[p]["MEAN"] for p in self.parameter_names], dtype=np.float64)

    @property
    def stds(self) -> np.ndarray:
        return np.array([self.stats[p]["STD"] for p in self.parameter_names], dtype=np.float64)

    @property
    def is_demo(self) -> bool:
        return self.provenance != "published-weights"

    def unnormalize(self, normalized: np.ndarray) -> np.ndarray:
        """x * STD + MEAN per parameter, in the model's output order."""
        return np.asarray(normalized, dtype=np.float64) * self.stds + self.means

    # ------------------------------------------------------------ serialise
    def to_props(self) -> dict[str, str]:
        """The metadata_props entries (all values JSON)."""
        grid = np.asarray(self.grid, dtype=np.float32)
        doc = {
            "format_version": self.format_version,
            "model_name": self.model_name,
            "provenance": {"kind": self.provenance, "description": self.description},
            "parameter_names": list(self.parameter_names),
            "stats": {p: dict(v) for p, v in self.stats.items()},
            "grid": {
                "start": float(grid[0]),
                "stop": float(grid[-1]),
                "n": int(grid.shape[0]),
                "dtype": "float32",
                "unit": "Angstrom",
                "values": [float(v) for v in grid],
            },
            "preprocessing": self.preprocessing.to_json(),
            "weights_sha256": self.weights_sha256,
            "exporter": dict(self.exporter),
            "opset": int(self.opset),
            "io": {
                "input": self.input_name,
                "input_rank": self.input_rank,
                "normalized_output": self.normalized_output,
                "physical_output": self.physical_output,
                "batch_size": self.batch_size,
            },
            "model_config": dict(self.model_config),
        }
        return {PREFIX + k: json.dumps(v, sort_keys=True) for k, v in doc.items()}

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: str = "model") -> ModelMetadata:
        """Parse and check metadata_props; raise ModelMetadataError naming the bad key."""

        def get(key: str) -> Any:
            full = PREFIX + key
            if full not in props:
                raise ModelMetadataError(
                    f"{source}: metadata key '{full}' is missing; this is not a bossnet-onnx "
                    f"model or it was exported by an older tool: re-export it with "
                    f"`bossnet-onnx export`"
                )
            try:
                return json.loads(props[full])
            except (TypeError, ValueError) as exc:
                raise ModelMetadataError(
                    f"{source}: metadata key '{full}' is not valid JSON ({exc})"
                ) from None

        def bad(key: str, why: str) -> ModelMetadataError:
            return ModelMetadataError(f"{source}: metadata key '{PREFIX}{key}' {why}")

        for key in REQUIRED_KEYS:
            get(key)
        version = get("format_version")
        if version != FORMAT_VERSION:
            raise bad("format_version", f"is {version!r}; this runtime reads {FORMAT_VERSION}")
        names = get("parameter_names")
        if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
            raise bad("parameter_names", "must be a non-empty list of strings")
        for required in ("logg", "logTeff", "FeH", "rv"):
            if required not in names:
                raise bad("parameter_names", f"lacks '{required}' (has {names})")
        stats = get("stats")
        if not isinstance(stats, dict):
            raise bad("stats", "must be an object of per-parameter MEAN/STD")
        for name in names:
            entry = stats.get(name)
            if not isinstance(entry, dict) or not {"MEAN", "STD"} <= set(entry):
                raise bad("stats", f"has no MEAN/STD for '{name}'")
            for k in ("MEAN", "STD"):
                value = entry[k]
                if not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise bad("stats", f"'{name}.{k}' is {value!r}, expected a finite number")
            if entry["STD"] <= 0:
                raise bad("stats", f"'{name}.STD' is {entry['STD']!r}, expected > 0")
        grid_doc = get("grid")
        try:
            grid = np.asarray(grid_doc["values"], dtype=np.float32)
            n = int(grid_doc["n"])
        except (TypeError, KeyError, ValueError):
            raise bad("grid", "must hold 'values' (list of Angstrom) and 'n'") from None
        if grid.ndim != 1 or grid.shape[0] != n or n < 2:
            raise bad("grid", f"has {grid.shape} values but n={n}")
        if not np.all(np.isfinite(grid)) or not np.all(np.diff(grid) > 0):
            raise bad("grid", "values must be finite and strictly increasing")
        pre_doc = get("preprocessing")
        if not isinstance(pre_doc, dict) or pre_doc.get("version") != PREPROCESSING_VERSION:
            found = pre_doc.get("version") if isinstance(pre_doc, dict) else pre_doc
            raise bad("preprocessing", f"version is {found!r}; this runtime implements "
                      f"{PREPROCESSING_VERSION!r}")
        try:
            pre = Preprocessing(**pre_doc)
        except TypeError as exc:
            raise bad("preprocessing", f"has unexpected fields ({exc})") from None
        sha = get("weights_sha256")
        if not (isinstance(sha, str) and len(sha) == 64):
            raise bad("weights_sha256", f"is {sha!r}, expected 64 hex digits")
        prov = get("provenance")
        if not isinstance(prov, dict) or prov.get("kind") not in PROVENANCES:
            raise bad("provenance", f"kind must be one of {PROVENANCES}")
        io = get("io")
        if not isinstance(io, dict) or not {"input", "normalized_output", "physical_output"} <= set(io):
            raise bad("io", "must name 'input', 'normalized_output' and 'physical_output'")
        opset = get("opset")
        if not isinstance(opset, int):
            raise bad("opset", f"is {opset!r}, expected an integer")
        exporter = get("exporter")
        if not isinstance(exporter, dict):
            raise bad("exporter", "must be an object")
        model_name = get("model_name")
        if not isinstance(model_name, str) or not model_name:
            raise bad("model_name", "must be a non-empty string")
        config = json.loads(props.get(PREFIX + "model_config", "{}"))
        return cls(
            model_name=model_name,
            provenance=prov["kind"],
            description=str(prov.get("description", "")),
            parameter_names=tuple(names),
            stats=stats,
            grid=grid,
            preprocessing=pre,
            weights_sha256=sha,
            exporter=exporter,
            opset=opset,
            input_name=str(io["input"]),
            input_rank=int(io.get("input_rank", 2)),
            normalized_output=str(io["normalized_output"]),
            physical_output=str(io["physical_output"]),
            batch_size=io.get("batch_size"),
            model_config=config if isinstance(config, dict) else {},
        )

    def index(self, name: str) -> int:
        """Column of parameter `name` in the model's output."""
        return self.parameter_names.index(name)
