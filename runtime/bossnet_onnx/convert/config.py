"""Hyper-parameters of a BOSS Net network and the normalisation statistics of its outputs.

The official checkpoints describe their network in `model_args.yaml`; a bare state dict carries
no such description, so the official BOSS values are the default. Statistics are kept apart from
the network because the same weights are published with one `stats/*.yaml` per survey.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, first_line
from ..model.metadata import DEFAULT_PARAMETER_NAMES, DEFAULT_STATS
from ..textsafe import shown

__all__ = ["BossNetConfig", "OFFICIAL_BOSS", "load_config", "load_stats", "infer_member",
           "check_member", "read_yaml", "MAX_YAML_BYTES", "MAX_YAML_NODES", "LIMITS"]

#: model_args.yaml and stats files are a few hundred bytes and a few dozen nodes. The node
#: bound counts every alias as the nodes it expands to, so a 432-byte anchor bomb (a billion
#: nodes once expanded) is refused before it is constructed or quoted.
MAX_YAML_BYTES = 1 << 20
MAX_YAML_NODES = 10_000
#: Largest value of each integer hyper-parameter (the published networks use at most 1024):
#: beyond these, building the network would need more memory than any machine has.
LIMITS = {"in_channels": 16, "model_dim": 1024, "kernel_size": 1024, "num_targets": 64,
          "adapt_pool_output_dim": 1 << 16, "num_linear": 64, "linear_dim": 1 << 16}
MAX_DIM_MULTS, MAX_DIM_MULT = 16, 1024


@dataclass(frozen=True)
class BossNetConfig:
    """The nine keys of an official `model_args.yaml`; defaults are the published BOSS model."""

    in_channels: int = 1
    model_dim: int = 4
    dim_mults: tuple[int, ...] = (1, 2, 4, 8, 16)
    kernel_size: int = 30
    num_targets: int = 4
    adapt_pool_output_dim: int = 1024
    num_linear: int = 6
    linear_dim: int = 1024
    pos_enc: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "dim_mults", tuple(int(m) for m in self.dim_mults))

    @property
    def channels(self) -> tuple[int, ...]:
        """Feature channels after the first block and after each residual block."""
        return tuple(self.model_dim * m for m in self.dim_mults)

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["dim_mults"] = list(self.dim_mults)
        return doc

    @classmethod
    def from_mapping(cls, doc: Mapping[str, Any], source: str = "config") -> BossNetConfig:
        """Check types and ranges so that a typo fails here, not deep inside torch."""
        if not isinstance(doc, Mapping):
            raise CheckpointError(f"{source}: expected a mapping of BOSS Net hyper-parameters "
                                  f"(model_args.yaml layout), got {type(doc).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise CheckpointError(f"{source}: unknown hyper-parameter(s) {shown(unknown)}; "
                                  f"expected only {sorted(known)}")
        values: dict[str, Any] = {}
        for key, raw in doc.items():
            try:
                if key == "pos_enc":
                    if not isinstance(raw, bool):
                        raise TypeError
                    values[key] = raw
                elif key == "dim_mults":
                    if len(raw) > MAX_DIM_MULTS:
                        raise ValueError
                    mults = [int(m) for m in raw]
                    if not mults or any(not 1 <= m <= MAX_DIM_MULT for m in mults):
                        raise ValueError
                    values[key] = tuple(mults)
                else:
                    if isinstance(raw, bool) or int(raw) != raw or not 1 <= int(raw) <= LIMITS[key]:
                        raise ValueError
                    values[key] = int(raw)
            except (TypeError, ValueError, OverflowError):
                expected = {"pos_enc": "true or false",
                            "dim_mults": f"a list of positive integers (at most {MAX_DIM_MULTS}, "
                                         f"each up to {MAX_DIM_MULT})"}.get(
                    key, f"an integer from 1 to {LIMITS.get(key)}")
                raise CheckpointError(f"{source}: hyper-parameter '{key}' is {shown(raw)}; "
                                      f"expected {expected}") from None
        config = cls(**values)
        if config.in_channels != 1:
            raise CheckpointError(f"{source}: in_channels is {config.in_channels}; BOSS Net "
                                  f"spectra have one flux channel (in_channels: 1)")
        return config


#: The published BOSS model (model_boss/model_args.yaml of the reference).
OFFICIAL_BOSS = BossNetConfig()


def _expanded_nodes(node: Any, memo: dict[int, int]) -> int:
    """Nodes `node` stands for once every alias is expanded; shared nodes are sized once."""
    import yaml

    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a recursive alias counts once instead of looping
    total = 1
    if isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_nodes(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total += sum(_expanded_nodes(k, memo) + _expanded_nodes(v, memo) for k, v in node.value)
    memo[key] = min(total, MAX_YAML_NODES + 1)
    return memo[key]


def read_yaml(path: str | Path, what: str) -> Any:
    """A small YAML file (model_args.yaml, stats) with the safe loader, bounded: at most
    MAX_YAML_BYTES, MAX_YAML_NODES nodes with aliases expanded; CheckpointError otherwise."""
    import yaml

    from ..safe_files import regular_file_size

    path = Path(path)
    try:
        size = regular_file_size(path)
        if size > MAX_YAML_BYTES:
            raise CheckpointError(f"{path}: {size:,} bytes; a {what} file is a few hundred "
                                  f"bytes (at most {MAX_YAML_BYTES:,})")
        with open(path, encoding="utf-8") as handle:
            loader = yaml.SafeLoader(handle.read(MAX_YAML_BYTES + 1))
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            if _expanded_nodes(node, {}) > MAX_YAML_NODES:
                raise CheckpointError(f"{path}: {what} expands to more than {MAX_YAML_NODES:,} "
                                      f"YAML nodes through its aliases (&/*); a {what} file is a "
                                      f"few dozen values: write them out without aliases")
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: {what} file not found") from None
    except RecursionError:
        raise CheckpointError(f"{path}: cannot read {what} as YAML (nested too deeply)") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else first_line(exc)
        raise CheckpointError(f"{path}: cannot read {what} as YAML "
                              f"({shown(reason, 200)})") from None


def load_config(path: str | Path | None) -> BossNetConfig:
    """`model_args.yaml` (or any YAML with those keys) -> config; None -> official BOSS."""
    if path is None:
        return OFFICIAL_BOSS
    path = Path(path)
    return BossNetConfig.from_mapping(read_yaml(path, "model config"), source=str(path))


def load_stats(source: str | Path | Mapping[str, Mapping[str, float]] | None,
               parameter_names: tuple[str, ...] = DEFAULT_PARAMETER_NAMES,
               ) -> dict[str, dict[str, float]]:
    """Per-parameter MEAN/STD (PNMIN/PNMAX kept when given) in the `stats/boss.yaml` layout.

    The network predicts `(x - MEAN) / STD`; wrong statistics silently shift every catalogue
    value, so each parameter must be present with a finite MEAN and a positive STD.
    """
    if source is None:
        doc: Any = DEFAULT_STATS
        where = "default BOSS stats"
    elif isinstance(source, Mapping):
        doc, where = source, "stats"
    else:
        where = str(source)
        doc = read_yaml(Path(source), "stats")
    if not isinstance(doc, Mapping):
        raise CheckpointError(f"{where}: expected per-parameter MEAN/STD entries "
                              f"(stats/boss.yaml layout), got {type(doc).__name__}")
    stats: dict[str, dict[str, float]] = {}
    for name in parameter_names:
        entry = doc.get(name)
        if not isinstance(entry, Mapping) or not {"MEAN", "STD"} <= set(entry):
            raise CheckpointError(f"{where}: no MEAN/STD for '{name}'; expected entries for "
                                  f"{list(parameter_names)}")
        clean: dict[str, float] = {}
        for key in ("MEAN", "STD", "PNMIN", "PNMAX"):
            if key not in entry:
                continue
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise CheckpointError(f"{where}: '{name}.{key}' is {shown(value)}, expected a "
                                      f"finite number")
            clean[key] = float(value)
        if clean["STD"] <= 0:
            raise CheckpointError(f"{where}: '{name}.STD' is {clean['STD']!r}, expected > 0")
        stats[name] = clean
    return stats


#: Name fragments of the published checkpoints and registry entries, per member.
_MEMBER_NAMES = (("gaia-xp", ("gaia_xp", "gaia-xp", "gaiaxp")),
                 ("gaia-rvs", ("gaia_rvs", "gaia-rvs", "gaiarvs")),
                 ("apogee", ("apogee",)),
                 ("boss", ("boss",)))


def infer_member(source: str | Path | None, config: BossNetConfig) -> str:
    """The family member a checkpoint is, from its name, else from its model_args.yaml.

    The published directories are `model_boss`, `model_apogee`, `model_gaia_rvs` and
    `model_gaia_xp` (registry names carry the same words); a config equal to one published
    network's model_args.yaml identifies it too. Anything else is BOSS Net, as before members.
    """
    from ..science.members import OFFICIAL_CONFIGS

    text = Path(str(source)).name.lower() if source is not None else ""
    for member, fragments in _MEMBER_NAMES:
        if any(f in text for f in fragments):
            return member
    for member, official in OFFICIAL_CONFIGS.items():
        if config.to_dict() == official:
            return member
    return "boss"


def check_member(member: str, config: BossNetConfig, where: str) -> None:
    """CheckpointError when the weights cannot be `member`'s network.

    The state dict (loaded strictly against `config`) fixes the number of outputs; a config
    that is exactly another member's published one is also refused, since exporting APOGEE Net
    weights as Gaia RVS Net would silently feed them the wrong input.
    """
    from ..science.members import MEMBERS, OFFICIAL_CONFIGS

    recipe = MEMBERS.get(member)
    if recipe is None:
        raise CheckpointError(f"--member {member!r} is not a family member; choose one of "
                              f"{', '.join(MEMBERS)}")
    wanted = len(recipe.parameter_names)
    if config.num_targets != wanted:
        raise CheckpointError(f"{where}: the network predicts {config.num_targets} values but "
                              f"{recipe.title} (member {member}) predicts {wanted} "
                              f"({', '.join(recipe.parameter_names)}); check --member")
    for other, official in OFFICIAL_CONFIGS.items():
        if other != member and config.to_dict() == official \
                and config.to_dict() != OFFICIAL_CONFIGS[member]:
            raise CheckpointError(f"{where}: model_args.yaml is the published {other} "
                                  f"network's, not {member}'s; check --member")
