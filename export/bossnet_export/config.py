"""The network's hyper-parameters live in the runtime (`bossnet_onnx.convert.config`), which
converts checkpoints without torch; this name is kept for the export package's callers."""
from __future__ import annotations

from bossnet_onnx.convert.config import (
    LIMITS,
    MAX_YAML_BYTES,
    MAX_YAML_NODES,
    OFFICIAL_BOSS,
    BossNetConfig,
    check_member,
    infer_member,
    load_config,
    load_stats,
    read_yaml,
)

__all__ = ["BossNetConfig", "OFFICIAL_BOSS", "load_config", "load_stats", "infer_member",
           "check_member", "read_yaml", "MAX_YAML_BYTES", "MAX_YAML_NODES", "LIMITS"]
