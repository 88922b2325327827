"""bossnet_export: official BOSS Net checkpoints -> verified, fixed-shape ONNX files.

The only package of the distribution that imports torch (install the `export` extra). The
runtime (`bossnet_onnx`) reads what this writes through `bossnet_onnx.model.metadata`.
"""
from __future__ import annotations

from bossnet_onnx.science.members import MEMBERS

from .checkpoint import LoadedCheckpoint, load_checkpoint
from .config import OFFICIAL_BOSS, BossNetConfig, load_config, load_stats
from .exporter import ExportReport, export_model, export_module, reference_grid
from .network import BossNet, adaptive_pool_gather
from .parity import PARITY_ATOL, ParityReport, check_parity
from .weights_hash import checkpoint_sha256, state_dict_sha256, tensors_sha256

#: Family members this exporter can turn into a runnable model (`models pull` checks it).
SUPPORTED_MEMBERS = tuple(MEMBERS)

__all__ = [
    "SUPPORTED_MEMBERS",
    "BossNet",
    "BossNetConfig",
    "OFFICIAL_BOSS",
    "ExportReport",
    "LoadedCheckpoint",
    "ParityReport",
    "PARITY_ATOL",
    "adaptive_pool_gather",
    "check_parity",
    "export_model",
    "export_module",
    "load_checkpoint",
    "load_config",
    "load_stats",
    "reference_grid",
    "state_dict_sha256",
    "checkpoint_sha256",
    "tensors_sha256",
]
