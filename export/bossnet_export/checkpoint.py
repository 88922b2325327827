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
import itertools
import struct
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
from bossnet_onnx.textsafe import shown

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


#: Uncompressed bytes the members of an archive may declare, per byte of the archive: torch
#: stores tensors uncompressed, so a real checkpoint declares about 1x.
MAX_EXPANSION = 4
_EOCD = b"PK\x05\x06"
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # 30 bytes; the last two: name and extra lengths


def _archive_end(payload: bytes) -> int | None:
    """Offset just past the end-of-central-directory record (and its comment), or None."""
    pos = payload.rfind(_EOCD, max(0, len(payload) - (1 << 16) - 22))
    if pos < 0 or pos + 22 > len(payload):
        return None
    (comment,) = struct.unpack_from("<H", payload, pos + 20)
    return pos + 22 + comment


def _check_extent(payload: bytes, where: str, parts: list[Path]) -> None:
    """Bytes after the archive's end are not part of the checkpoint: a stray extra chunk
    (`model_chunk_10` beside a 10-chunk set) would otherwise be appended without a word."""
    end = _archive_end(payload)
    if end is None or end >= len(payload):
        return  # no end record: zipfile reports the archive unreadable
    extra = len(payload) - end
    position, stray = 0, []
    for part in parts:
        size = part.stat().st_size
        if position >= end:
            stray.append(f"{part.name} ({size:,} bytes)")
        position += size
    named = (f"{', '.join(stray)} lie(s) wholly past the archive's end: not part of this "
             f"checkpoint, remove" if stray else "the last chunk holds them: re-download")
    raise CheckpointError(f"{where}: {extra:,} bytes follow the end of the torch archive; "
                          f"{named} (a checkpoint's chunks end exactly with its archive)")


def _check_members(archive, payload: bytes, where: str) -> None:
    """Refuse, before anything is decompressed, members that overlap (several directory
    entries pointing into the same bytes make a small file decompress to gigabytes) or that
    declare far more bytes than the archive could hold."""
    spans = []
    declared = 0
    for info in archive.infolist():
        start = info.header_offset
        if start + _LOCAL_HEADER.size > len(payload):
            raise CheckpointError(f"{where}: archive member {shown(info.filename)} starts past "
                                  f"the end of the file; the checkpoint is damaged")
        fields = _LOCAL_HEADER.unpack_from(payload, start)
        end = start + _LOCAL_HEADER.size + fields[-2] + fields[-1] + info.compress_size
        spans.append((start, end, info.filename))
        declared += info.file_size
    spans.sort()
    for (_, end, name), (start, _, other) in itertools.pairwise(spans):
        if start < end:
            raise CheckpointError(f"{where}: archive members {shown(name)} and {shown(other)} "
                                  f"overlap ({len(spans)} members); a damaged or hostile zip, "
                                  f"not a torch checkpoint")
    if declared > MAX_EXPANSION * len(payload) + (1 << 20):
        raise CheckpointError(f"{where}: archive members declare {declared:,} bytes, more than "
                              f"{MAX_EXPANSION}x the {len(payload):,}-byte file; a damaged or "
                              f"hostile zip, not a torch checkpoint")


def _check_archive(payload: bytes, where: str, parts: list[Path]) -> None:
    """Verify every member's CRC: torch itself reads flipped tensor bytes without complaint.
    Before that, the archive must end where the file ends and its members must not overlap."""
    import zipfile

    if not payload.startswith(b"PK\x03\x04"):
        return  # legacy (pre-1.6) torch.save format: no checksums to verify
    _check_extent(payload, where, parts)
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            _check_members(archive, payload, where)
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
    import torch

    # Names and shapes are checked on a network without memory (meta device): a config far
    # larger than the weights (`linear_dim: 1e9`) is a one-line mismatch, not a failed
    # allocation; once they match, the real network is exactly as large as the checkpoint.
    with torch.device("meta"):
        expected = BossNet(cfg).state_dict()
    check_state_dict_keys(set(expected), set(state), where)
    check_shapes({k: tuple(v.shape) for k, v in state.items()},
                 {k: tuple(v.shape) for k, v in expected.items()}, where)
    model = BossNet(cfg)
    expected = model.state_dict()
    for key in DERIVED_KEYS:
        state.setdefault(key, expected[key])
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
    model.eval()
    digest = checkpoint_sha256(payload)
    return LoadedCheckpoint(model=model, config=cfg, weights_sha256=digest, source=path,
                            layout=layout)
