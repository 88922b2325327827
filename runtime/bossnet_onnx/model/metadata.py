"""The contract between export and runtime: what a BOSS Net ONNX file says about itself.

The export step (which has torch) writes these keys into the ONNX `metadata_props`, each value a
JSON document; the runtime (which has no torch) reads them and refuses a model that lacks one,
naming the key. Keeping the contract in one torch-free module means both sides share it.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ModelMetadataError
from ..science.members import (
    BOSS_GRID_POINTS,
    BOSS_GRID_START,
    BOSS_GRID_STOP,
    DEFAULT_MEMBER,
    MEMBERS,
    OFFICIAL_STATS,
    Member,
    member_named,
)

__all__ = [
    "FORMAT_VERSION",
    "PREPROCESSING_VERSION",
    "REQUIRED_KEYS",
    "DEFAULT_PARAMETER_NAMES",
    "DEFAULT_STATS",
    "Preprocessing",
    "ModelMetadata",
    "KeySpec",
    "KEY_SPECS",
    "MAX_ENTRY_CHARS",
    "MAX_JSON_DEPTH",
    "validate_props",
    "reference_grid_numpy",
]

FORMAT_VERSION = 1
PREPROCESSING_VERSION = MEMBERS[DEFAULT_MEMBER].preprocessing_version
PREFIX = "bossnet."

#: Output order of the network (official BOSS Net; stated in science/members.py).
DEFAULT_PARAMETER_NAMES = MEMBERS[DEFAULT_MEMBER].parameter_names

#: Official BOSS normalisation statistics (stats/boss.yaml of the reference; members.py).
DEFAULT_STATS: dict[str, dict[str, float]] = OFFICIAL_STATS[DEFAULT_MEMBER]

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


def reference_grid_numpy(start: float = BOSS_GRID_START, stop: float = BOSS_GRID_STOP,
                         n: int = BOSS_GRID_POINTS) -> np.ndarray:
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


@dataclass(frozen=True, eq=False)  # holds the grid array: == would be ambiguous
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
    #: Which published set the weights are (registry name, repository, commit, blob ids);
    #: None for weights that did not come through `models pull`.
    source: Mapping[str, Any] | None = None
    #: family member (members.MEMBERS): boss, apogee, gaia-rvs or gaia-xp; models exported
    #: before the key existed are BOSS Net
    member: str = "boss"

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
    def family_member(self) -> Member:
        """This model's entry in the family table (input function, columns, flags)."""
        return member_named(self.member)

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
                "unit": "Angstrom" if self.family_member.input_axis == "wavelength"
                        else "coefficient",
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
            "member": self.member,
            "input": self._input_description(grid),
        }
        if self.source is not None:
            doc["source"] = dict(self.source)
        return {PREFIX + k: json.dumps(v, sort_keys=True) for k, v in doc.items()}

    def _input_description(self, grid: np.ndarray) -> dict[str, Any]:
        """What the input row is, for people reading the file (the runtime uses `member`)."""
        family = self.family_member
        return {"n": int(grid.shape[0]), "axis": family.input_axis,
                "reads": family.reads, **dict(family.input_layout),
                "outputs": list(self.parameter_names)}

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: str = "model") -> ModelMetadata:
        """Parse and check metadata_props; raise ModelMetadataError naming the file and key."""
        doc = validate_props(props, source)
        prov, io, pre_doc = doc["provenance"], doc["io"], doc["preprocessing"]
        return cls(
            model_name=doc["model_name"],
            provenance=prov["kind"],
            description=str(prov.get("description", "")),
            parameter_names=tuple(doc["parameter_names"]),
            stats=doc["stats"],
            grid=np.asarray(doc["grid"]["values"], dtype=np.float32),
            preprocessing=Preprocessing(**pre_doc),
            weights_sha256=doc["weights_sha256"],
            exporter=doc["exporter"],
            opset=doc["opset"],
            input_name=io["input"],
            input_rank=int(io.get("input_rank", 2)),
            normalized_output=io["normalized_output"],
            physical_output=io["physical_output"],
            batch_size=io.get("batch_size"),
            model_config=doc.get("model_config", {}),
            source=doc.get("source"),
            member=doc.get("member", DEFAULT_MEMBER),
        )

    @property
    def source_text(self) -> str:
        """'NAME: repository@commit' of a pulled published set, '' otherwise."""
        if not self.source:
            return ""
        return (f"{self.source['registry_name']}: {self.source['repository']}@"
                f"{self.source['commit']}")

    def index(self, name: str) -> int:
        """Column of parameter `name` in the model's output."""
        return self.parameter_names.index(name)


# ------------------------------------------------------------------ validation
#: Longest accepted value of any `bossnet.*` entry, in characters. The largest real entry is the
#: grid (3900 float32 values, ~80 kB); a 400 MB entry would cost gigabytes to parse.
MAX_ENTRY_CHARS = 1_000_000
#: Deepest accepted JSON nesting. Real entries nest at most 3 levels; deep nesting is refused
#: before parsing because Python's json recurses once per level.
MAX_JSON_DEPTH = 8
MAX_NAME_CHARS = 256
MAX_PARAMETERS = 64
MAX_GRID_POINTS = 100_000
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class KeySpec:
    """How one `bossnet.<key>` entry is checked: `check(value, doc)` returns what is wrong
    (completing "metadata key 'bossnet.<key>' ...") or None; `doc` holds the keys checked
    before it, so later keys can be checked against earlier ones (stats against names)."""

    key: str
    check: Callable[[Any, Mapping[str, Any]], str | None]
    required: bool = True
    max_chars: int = MAX_ENTRY_CHARS


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _name_problem(v: Any, what: str) -> str | None:
    if not isinstance(v, str) or not v:
        return f"{what} must be a non-empty string, got {v!r:.80}"
    if len(v) > MAX_NAME_CHARS or _CONTROL.search(v):
        return f"{what} must be at most {MAX_NAME_CHARS} printable characters"
    return None


def _check_format_version(v: Any, doc: Mapping[str, Any]) -> str | None:
    if v != FORMAT_VERSION or not _is_int(v):
        return f"is {v!r:.80}; this runtime reads {FORMAT_VERSION}"
    return None


def _check_model_name(v: Any, doc: Mapping[str, Any]) -> str | None:
    return _name_problem(v, "must name the model:")


def _check_provenance(v: Any, doc: Mapping[str, Any]) -> str | None:
    if not isinstance(v, dict) or v.get("kind") not in PROVENANCES:
        return f"kind must be one of {PROVENANCES}"
    if not isinstance(v.get("description", ""), str):
        return "description must be a string"
    return None


def _check_parameter_names(v: Any, doc: Mapping[str, Any]) -> str | None:
    if not (isinstance(v, list) and v and all(isinstance(n, str) and n for n in v)):
        return "must be a non-empty list of strings"
    if len(v) > MAX_PARAMETERS or any(_name_problem(n, "") for n in v):
        return f"must hold at most {MAX_PARAMETERS} names of printable characters"
    if len(set(v)) != len(v):
        return f"repeats a name ({v})"
    family = _family(doc)
    for required in family.parameter_names:
        if required not in v:
            return f"lacks '{required}' (has {v}), which {family.title} predicts"
    return None


def _check_stats(v: Any, doc: Mapping[str, Any]) -> str | None:
    if not isinstance(v, dict) or len(v) > MAX_PARAMETERS:
        return "must be an object of per-parameter MEAN/STD"
    for name in doc["parameter_names"]:
        entry = v.get(name)
        if not isinstance(entry, dict) or not {"MEAN", "STD"} <= set(entry):
            return f"has no MEAN/STD for '{name}'"
        for k, value in entry.items():
            if not _is_number(value):
                return f"'{name}.{k}' is {value!r:.80}, expected a finite number"
        if entry["STD"] <= 0:
            return f"'{name}.STD' is {entry['STD']!r}, expected > 0"
    return None


def _check_grid(v: Any, doc: Mapping[str, Any]) -> str | None:
    if not isinstance(v, dict) or not isinstance(v.get("values"), list) or not _is_int(v.get("n")):
        return "must hold 'values' (list of Angstrom) and 'n'"
    values, n = v["values"], v["n"]
    if not 2 <= n <= MAX_GRID_POINTS:
        return f"has n={n}, expected 2..{MAX_GRID_POINTS}"
    if len(values) != n:
        return f"has ({len(values)},) values but n={n}"
    if not all(_is_number(x) for x in values):
        return "values must be finite and strictly increasing (found a non-number)"
    grid = np.asarray(values, dtype=np.float32)
    if not np.all(np.isfinite(grid)) or not np.all(np.diff(grid) > 0):
        return "values must be finite and strictly increasing"
    family = _family(doc)
    unit = "Angstrom" if family.input_axis == "wavelength" else "coefficient"
    if v.get("unit", "Angstrom") not in (unit, "Angstrom"):
        return f"unit is {v.get('unit')!r:.40}, expected {unit!r}"
    if family.name != DEFAULT_MEMBER and n != family.n_inputs:
        # only BOSS Net interpolates onto whatever grid it was trained on
        return f"has {n} points but {family.title} reads {family.n_inputs}"
    return None


_PREPROCESSING_RANGES = {  # field: (lowest, highest, lowest allowed too)
    "flux_floor": (0.0, math.inf, False),
    "clip_quantile": (0.0, 1.0, False),
    "clip_offset": (-math.inf, math.inf, True),
    "sigma_clip_factor": (0.0, math.inf, False),
    "default_sigma_fraction": (0.0, math.inf, False),
}


def _check_preprocessing(v: Any, doc: Mapping[str, Any]) -> str | None:
    family = _family(doc)
    wanted = family.preprocessing_version
    if not isinstance(v, dict) or v.get("version") != wanted:
        found = v.get("version") if isinstance(v, dict) else v
        return f"version is {found!r:.80}; this runtime implements {wanted!r} for {family.title}"
    unknown = set(v) - set(_PREPROCESSING_RANGES) - {"version"}
    if unknown:
        return f"has unexpected fields {sorted(unknown)}"
    for name, (low, high, closed) in _PREPROCESSING_RANGES.items():
        if name not in v:
            continue
        x = v[name]
        if not _is_number(x) or x > high or x < low or (x == low and not closed):
            return f"'{name}' is {x!r:.80}, expected a number in ({low}, {high}]"
    return None


def _check_sha(v: Any, doc: Mapping[str, Any]) -> str | None:
    if not (isinstance(v, str) and _HEX64.fullmatch(v)):
        return f"is {v!r:.80}, expected 64 hex digits"
    return None


def _check_exporter(v: Any, doc: Mapping[str, Any]) -> str | None:
    return None if isinstance(v, dict) else "must be an object"


def _check_opset(v: Any, doc: Mapping[str, Any]) -> str | None:
    return None if _is_int(v) and 1 <= v <= 1000 else f"is {v!r:.80}, expected an integer"


def _check_io(v: Any, doc: Mapping[str, Any]) -> str | None:
    if not isinstance(v, dict) or not {"input", "normalized_output", "physical_output"} <= set(v):
        return "must name 'input', 'normalized_output' and 'physical_output'"
    for k in ("input", "normalized_output", "physical_output"):
        problem = _name_problem(v[k], f"'{k}'")
        if problem:
            return problem
    if v.get("input_rank", 2) not in (2, 3) or not _is_int(v.get("input_rank", 2)):
        return f"'input_rank' is {v.get('input_rank')!r:.40}, expected 2 or 3"
    batch = v.get("batch_size")
    if batch is not None and not (_is_int(batch) and 1 <= batch <= 65536):
        return f"'batch_size' is {batch!r:.40}, expected null or an integer 1..65536"
    return None


def _check_model_config(v: Any, doc: Mapping[str, Any]) -> str | None:
    return None if isinstance(v, dict) else "must be an object"


def _family(doc: Mapping[str, Any]) -> Member:
    """The family member the file declares (checked first), BOSS Net when it declares none."""
    return MEMBERS.get(doc.get("member", DEFAULT_MEMBER), MEMBERS[DEFAULT_MEMBER])


def _check_member(v: Any, doc: Mapping[str, Any]) -> str | None:
    if not isinstance(v, str) or v not in MEMBERS:
        return (f"is {v!r:.80}, a family member this runtime does not know (known: "
                f"{', '.join(MEMBERS)}); upgrade bossnet-onnx or re-export")
    return None


def _check_input(v: Any, doc: Mapping[str, Any]) -> str | None:
    """The human-readable input description: an object whose `n` is the grid's length."""
    if not isinstance(v, dict):
        return "must be an object describing the input (n, axis, layout)"
    grid = doc.get("grid")
    if isinstance(grid, dict) and v.get("n") != grid.get("n"):
        return f"says n={v.get('n')!r:.40} but the grid has {grid.get('n')!r:.40} points"
    return None


#: Fields of the optional `bossnet.source` key (written by `models pull`) and their checks.
SOURCE_TEXT_FIELDS = ("registry_name", "repository", "commit")


def _check_source(v: Any, doc: Mapping[str, Any]) -> str | None:
    """The optional provenance of a pulled published set."""
    if not isinstance(v, dict):
        return "must be an object (registry_name, repository, commit, files)"
    for key in SOURCE_TEXT_FIELDS:
        if not isinstance(v.get(key), str) or not v[key]:
            return f"lacks the text field '{key}'"
        if len(v[key]) > MAX_NAME_CHARS or _CONTROL.search(v[key]):
            return f"'{key}' must be at most {MAX_NAME_CHARS} printable characters"
    commit = v["commit"]
    if len(commit) != 40 or any(c not in "0123456789abcdef" for c in commit):
        return f"commit {commit[:60]!r} is not a 40-digit hex id"
    files = v.get("files")
    if not isinstance(files, list) or not all(
            isinstance(f, dict) and isinstance(f.get("path"), str)
            and isinstance(f.get("blob"), str) and len(f["blob"]) == 40 for f in files):
        return "'files' must list {path, blob} with 40-digit blob ids"
    return None


#: One row per known key, checked in this order. A new key (e.g. the family member, the
#: provenance of pulled weights) is one more row; unknown `bossnet.*` keys still get the size,
#: depth and JSON checks, so a newer exporter's extra keys load but cannot be hostile.
KEY_SPECS: tuple[KeySpec, ...] = (
    KeySpec("member", _check_member, required=False),  # first: the checks below depend on it
    KeySpec("format_version", _check_format_version),
    KeySpec("model_name", _check_model_name),
    KeySpec("provenance", _check_provenance),
    KeySpec("parameter_names", _check_parameter_names),
    KeySpec("stats", _check_stats),
    KeySpec("grid", _check_grid),
    KeySpec("preprocessing", _check_preprocessing),
    KeySpec("weights_sha256", _check_sha),
    KeySpec("exporter", _check_exporter),
    KeySpec("opset", _check_opset),
    KeySpec("io", _check_io),
    KeySpec("model_config", _check_model_config, required=False),
    KeySpec("source", _check_source, required=False),
    KeySpec("input", _check_input, required=False),
)


def _json_depth(text: str) -> int:
    """Deepest [ / { nesting of a JSON text, without parsing it (strings ignored)."""
    bare = _STRINGS.sub('""', text).encode("utf-8", "replace")
    codes = np.frombuffer(bare, dtype=np.uint8)
    step = (np.isin(codes, (0x5B, 0x7B)).astype(np.int32)
            - np.isin(codes, (0x5D, 0x7D)).astype(np.int32))
    return int(np.cumsum(step).max()) if step.size else 0


def validate_props(props: Mapping[str, str], source: str = "model") -> dict[str, Any]:
    """Every `bossnet.*` entry parsed and checked: {key without prefix: value}.

    Raises ModelMetadataError, one line naming `source` and the key, for a missing required
    key, an entry over its size or nesting limit, invalid JSON, or a value of the wrong type,
    range or length.
    """
    specs = {spec.key: spec for spec in KEY_SPECS}

    def bad(key: str, why: str) -> ModelMetadataError:
        return ModelMetadataError(f"{source}: metadata key '{PREFIX}{key}' {why}")

    parsed: dict[str, Any] = {}
    for full, text in props.items():
        if not full.startswith(PREFIX):
            continue
        key = full[len(PREFIX):]
        limit = specs[key].max_chars if key in specs else MAX_ENTRY_CHARS
        if not isinstance(text, str):
            raise bad(key, "is not text")
        if len(text) > limit:
            raise bad(key, f"holds {len(text):,} characters, more than the {limit:,} allowed; "
                           f"the model file is damaged or hostile")
        depth = _json_depth(text)
        if depth > MAX_JSON_DEPTH:
            raise bad(key, f"nests JSON {depth} levels deep, more than the {MAX_JSON_DEPTH} "
                           f"allowed")
        try:
            parsed[key] = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise bad(key, f"is not valid JSON ({str(exc)[:120]})") from None
    for spec in KEY_SPECS:
        if spec.key not in parsed:
            if spec.required:
                raise ModelMetadataError(
                    f"{source}: metadata key '{PREFIX}{spec.key}' is missing; this is not a "
                    f"bossnet-onnx model or it was exported by an older tool: re-export it with "
                    f"`bossnet-onnx export`"
                )
            continue
        problem = spec.check(parsed[spec.key], parsed)
        if problem:
            raise bad(spec.key, problem)
    return parsed
