"""Load BOSS Net weights from the layouts people actually have.

(a) the official directory: `model_args.yaml` + `model_chunk_0..N`, the byte-split of a single
    `torch.save` file (split so each piece fits GitHub's size limit);
(b) one `.pt`/`.pth` file holding the state dict;
(c) one file holding a dict with a `state_dict` entry (training scripts save this).

Everything is read with `torch.load(weights_only=True)`: a checkpoint is data, and unpickling
arbitrary objects from a downloaded file would run arbitrary code.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bossnet_onnx.convert import resolve_config
from bossnet_onnx.convert.architecture import DERIVED_KEYS
from bossnet_onnx.convert.torch_zip import (
    CHUNK_NAME,
    check_shapes,
    check_state_dict_keys,
    chunk_paths,
    unwrap_state_dict,
)
from bossnet_onnx.errors import CheckpointError, first_line

from .config import BossNetConfig
from .weights_hash import checkpoint_sha256

__all__ = ["LoadedCheckpoint", "load_checkpoint", "read_chunked_bytes", "check_state_dict_keys",
           "CHUNK_NAME", "DERIVED_KEYS"]

@dataclass
class LoadedCheckpoint:
    """A network with weights loaded strictly, plus where they came from."""

    model: Any  # BossNet, typed loosely so this module imports without torch at type-check time
    config: BossNetConfig
    weights_sha256: str
    source: Path
    layout: str  # "official-chunks", "state-dict" or "training-dict"


def read_chunked_bytes(directory: Path) -> tuple[bytes, list[Path]]:
    """Concatenate `model_chunk_<i>` in numeric order; a gap is an error naming the chunk."""
    paths = chunk_paths(directory)
    return b"".join(p.read_bytes() for p in paths), paths


def _part_at(offset: int, parts: list[Path]) -> Path | None:
    """The chunk file holding byte `offset` of the concatenation."""
    position = 0
    for part in parts:
        position += part.stat().st_size
        if offset < position:
            return part
    return parts[-1] if parts else None


def _check_archive(payload: bytes, where: str, parts: list[Path]) -> None:
    """Verify every member's CRC: torch itself reads flipped tensor bytes without complaint."""
    import zipfile

    if not payload.startswith(b"PK\x03\x04"):
        return  # legacy (pre-1.6) torch.save format: no checksums to verify
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            for info in archive.infolist():
                try:
                    with archive.open(info) as member:
                        while member.read(1 << 24):
                            pass
                except (zipfile.BadZipFile, OSError, EOFError, ValueError):
                    part = _part_at(info.header_offset + info.compress_size // 2, parts)
                    in_part = f" (in {part.name})" if part is not None and len(parts) > 1 else ""
                    raise CheckpointError(f"{where}: archive member '{info.filename}'{in_part} "
                                          f"fails its CRC check; the checkpoint is corrupted, "
                                          f"re-download it") from None
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{where}: the torch zip archive is unreadable ({exc}); the file "
                              f"is truncated or a chunk is missing or damaged") from None


def _torch_load(payload: bytes, where: str, parts: list[Path]) -> Any:
    import pickle
    import zipfile

    import torch

    _check_archive(payload, where, parts)
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{where}: holds Python objects that a weights-only load refuses, "
                              f"or is not a torch checkpoint; expected a state dict of tensors "
                              f"(or a dict with 'state_dict')") from None
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile, OSError, KeyError,
            IndexError, AttributeError, TypeError) as exc:
        raise CheckpointError(f"{where}: not a readable torch checkpoint ({first_line(exc, 160)}); the "
                              f"file is truncated, corrupted or not a state dict") from None


def _state_dict_of(obj: Any, where: str) -> tuple[dict[str, Any], str]:
    import torch

    return unwrap_state_dict(obj, where, lambda v: isinstance(v, torch.Tensor))


def load_checkpoint(path: str | Path, config: str | Path | BossNetConfig | None = None,
                    ) -> LoadedCheckpoint:
    """Build the network and load the weights strictly; shapes and names must all match.

    `config` overrides `model_args.yaml`; without either the official BOSS config is used.
    """

    from .network import BossNet

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found; pass the official model directory "
                              f"(model_args.yaml + model_chunk_*) or a .pt/.pth file")
    if path.is_dir():
        payload, parts = read_chunked_bytes(path)
        where = f"{path} (model_chunk_* concatenated)"
    else:
        try:
            payload = path.read_bytes()
        except OSError as exc:
            raise CheckpointError(f"{path}: cannot read checkpoint ({exc.strerror})") from None
        where = str(path)
        parts = [path]
    cfg = resolve_config(path, config)
    state, layout = _state_dict_of(_torch_load(payload, where, parts), where)
    if path.is_dir():
        layout = "official-chunks"
    model = BossNet(cfg)
    expected = model.state_dict()
    check_state_dict_keys(set(expected), set(state), where)
    check_shapes({k: tuple(v.shape) for k, v in state.items()},
                 {k: tuple(v.shape) for k, v in expected.items()}, where)
    for key in DERIVED_KEYS:
        state.setdefault(key, expected[key])
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
    model.eval()
    digest = checkpoint_sha256(payload)
    return LoadedCheckpoint(model=model, config=cfg, weights_sha256=digest, source=path,
                            layout=layout)
