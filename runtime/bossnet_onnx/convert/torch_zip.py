"""Read what `torch.save` wrote, without torch, trusting none of it.

Layouts: (a) the official directory, `model_args.yaml` + `model_chunk_0..N` (the byte-split of
one `torch.save` file, split so each piece fits GitHub's size limit); (b) one `.pt`/`.pth`
holding the state dict; (c) one file holding a dict with a `state_dict` entry.

The zip format of torch >= 1.6 is `<folder>/data.pkl` (the pickled structure) plus one raw
file per storage, `<folder>/data/<key>`, and `<folder>/byteorder`. A checkpoint is data, and
unpickling arbitrary objects from a downloaded file runs arbitrary code, so the unpickler here
knows only the tensor rebuild functions, the storage types, OrderedDict and plain containers
(the promise of `torch.load(weights_only=True)`), and builds numpy arrays, never objects.

Before a byte of tensor data is read, every member's size is bounded (a zip bomb is refused,
not unpacked; overlapping members, the other zip bomb, too) and each storage's size must be
what the pickle says; each member's CRC is checked as it is read. Chunks are read in place
through one chained file, never joined in memory: the arrays are the only copy of the weights.
"""
from __future__ import annotations

import builtins
import collections
import hashlib
import io
import itertools
import os
import pickle
import re
import struct
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError
from .architecture import DERIVED_KEYS, state_shapes
from .config import BossNetConfig

__all__ = ["CHUNK_NAME", "LoadedState", "chunk_paths", "read_state", "load_tensors", "unwrap_state_dict",
           "check_state_dict_keys", "check_shapes", "MAX_MEMBER_RATIO"]

CHUNK_NAME = re.compile(r"^model_chunk_(\d+)$")
#: A deflated member may expand at most this much (torch stores members uncompressed).
MAX_MEMBER_RATIO = 20
#: No BOSS Net member needs more: the largest published network is ~1.1 GB of float32.
MAX_TOTAL_BYTES = 16 << 30
#: data.pkl of a state dict is a few kB per tensor.
MAX_PICKLE_BYTES = 64 << 20
_BLOCK = 1 << 22

#: torch storage class -> numpy dtype (little-endian; "bfloat16" is widened by hand).
_STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "BFloat16Storage": "bfloat16", "LongStorage": "<i8", "IntStorage": "<i4",
    "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
    "UntypedStorage": "u1",
}


@dataclass
class LoadedState:
    """Named arrays read from a checkpoint, plus where they came from."""

    state: dict[str, np.ndarray]
    weights_sha256: str
    source: Path
    layout: str  # "official-chunks", "state-dict" or "training-dict"
    where: str
    n_bytes: int


# ----------------------------------------------------------------------------- files
def chunk_paths(directory: Path) -> list[Path]:
    """`model_chunk_<i>` in numeric order; a gap is an error naming the chunk."""
    found: dict[int, Path] = {}
    for entry in directory.iterdir():
        match = CHUNK_NAME.match(entry.name)
        if match and entry.is_file():
            found[int(match.group(1))] = entry
    if not found:
        raise CheckpointError(f"{directory}: no model_chunk_<i> files; expected the official "
                              f"layout (model_args.yaml + model_chunk_0..N) or pass a .pt file")
    last = max(found)
    missing = [i for i in range(last + 1) if i not in found]
    if missing:
        names = ", ".join(f"model_chunk_{i}" for i in missing)
        raise CheckpointError(f"{directory}: chunk(s) {names} missing (found {len(found)} of "
                              f"model_chunk_0..{last}); re-download the checkpoint directory")
    return [found[i] for i in range(last + 1)]


class _Chain(io.RawIOBase):
    """The parts of a split file read as one seekable file, without joining them in memory."""

    def __init__(self, parts: list[Path]) -> None:
        super().__init__()
        self._parts = parts
        self._sizes = [p.stat().st_size for p in parts]
        self._starts = [sum(self._sizes[:i]) for i in range(len(parts))]
        self.size = sum(self._sizes)
        self._pos = 0
        self._handles: dict[int, io.BufferedReader] = {}

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self.size:
            i = max(j for j, s in enumerate(self._starts) if s <= self._pos)
            handle = self._handles.get(i)
            if handle is None:
                handle = self._handles[i] = open(self._parts[i], "rb")  # noqa: SIM115
            handle.seek(self._pos - self._starts[i])
            want = min(len(view) - done, self._starts[i] + self._sizes[i] - self._pos)
            got = handle.readinto(view[done:done + want])
            if not got:
                break
            done += got
            self._pos += got
        return done

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()
        super().close()

    def part_at(self, offset: int) -> Path:
        i = max((j for j, s in enumerate(self._starts) if s <= offset), default=0)
        return self._parts[i]


def _sha256(parts: list[Path]) -> str:
    """The weights' identity: sha256 of the torch.save bytes (`cat model_chunk_* | sha256sum`)."""
    digest = hashlib.sha256()
    for part in parts:
        with open(part, "rb") as fh:
            for block in iter(lambda: fh.read(_BLOCK), b""):
                digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- zip
def _check_members(archive: zipfile.ZipFile, chain: _Chain, where: str) -> None:
    """Sizes bounded and members disjoint before anything is decompressed."""
    spans = []
    total = 0
    for info in archive.infolist():
        name = info.filename
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CheckpointError(f"{where}: archive member '{name}' uses compression method "
                                  f"{info.compress_type}; torch.save writes stored members")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise CheckpointError(f"{where}: archive member '{name}' is stored but declares "
                                  f"{info.file_size} bytes in {info.compress_size}; the archive "
                                  f"is corrupted or hostile")
        if info.file_size > MAX_MEMBER_RATIO * info.compress_size + (1 << 20):
            raise CheckpointError(f"{where}: archive member '{name}' would expand "
                                  f"{info.compress_size} bytes to {info.file_size} (a zip "
                                  f"bomb); refused without unpacking")
        total += info.file_size
        chain.seek(info.header_offset)
        header = chain.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise CheckpointError(f"{where}: archive member '{name}' has no local header at "
                                  f"byte {info.header_offset}; the file is truncated or a "
                                  f"chunk is missing or damaged")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        start = info.header_offset
        stop = start + 30 + name_len + extra_len + info.compress_size
        if stop > chain.size:
            raise CheckpointError(f"{where}: archive member '{name}' runs past the end of the "
                                  f"file; the file is truncated or a chunk is missing")
        spans.append((start, stop, name))
    if total > MAX_TOTAL_BYTES:
        raise CheckpointError(f"{where}: archive members declare {total} bytes in all, more "
                              f"than any BOSS Net ({MAX_TOTAL_BYTES} at most); refused")
    spans.sort()
    for (_, stop, first), (start, _, second) in itertools.pairwise(spans):
        if start < stop:
            raise CheckpointError(f"{where}: archive members '{first}' and '{second}' overlap "
                                  f"(a zip bomb's trick); refused without unpacking")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, chain: _Chain, where: str,
                 parts: list[Path]) -> bytes:
    """The member's bytes with its CRC verified (zipfile checks it on reaching the end)."""
    try:
        with archive.open(info) as member:
            data = member.read(info.file_size)
            if len(data) != info.file_size or member.read(1):
                raise zipfile.BadZipFile("size mismatch")
        return data
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error):
        part = chain.part_at(info.header_offset + info.compress_size // 2)
        in_part = f" (in {part.name})" if len(parts) > 1 else ""
        raise CheckpointError(f"{where}: archive member '{info.filename}'{in_part} fails its "
                              f"CRC check; the checkpoint is corrupted, re-download "
                              f"it") from None


# ----------------------------------------------------------------------------- pickle
@dataclass(frozen=True)
class _StorageType:
    name: str


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: str
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_: Any) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError("a tensor without a storage")
    return _TensorRef(storage, int(offset), tuple(int(s) for s in size),
                      tuple(int(s) for s in stride))


def _rebuild_parameter(data: Any, *_: Any) -> Any:
    return data


def _rebuild_from_type(func: Any, new_type: Any, args: Any, state: Any = None) -> Any:
    if func not in (_rebuild_tensor, _rebuild_parameter) or new_type is not _TENSOR_TYPE:
        raise pickle.UnpicklingError("an unexpected tensor type")
    return func(*args)


_TENSOR_TYPE = _StorageType("Tensor")

_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("torch", "Tensor"): _TENSOR_TYPE,
    ("torch.nn.parameter", "Parameter"): _TENSOR_TYPE,
    ("collections", "OrderedDict"): collections.OrderedDict,
    **{(b, n): getattr(builtins, n) for b in ("builtins", "__builtin__")
       for n in ("set", "frozenset", "list", "tuple", "dict")},
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _WeightsOnly(pickle.Unpickler):
    """Only tensor references and plain containers come out; any other global is refused."""

    def __init__(self, data: bytes, where: str) -> None:
        super().__init__(io.BytesIO(data))
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise CheckpointError(f"{self.where}: the pickle asks for the global "
                                  f"{module}.{name}, which a weights-only reader refuses (only "
                                  f"tensors and plain containers are allowed); the file is not a "
                                  f"plain state dict, or was tampered with")
        return found

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)
                and isinstance(pid[4], int) and pid[4] >= 0):
            raise pickle.UnpicklingError(f"unknown persistent id {str(pid)[:80]}")
        return _StorageRef(pid[2], _STORAGE_DTYPES[pid[1].name], pid[4])


def _itemsize(dtype: str) -> int:
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def _storage_array(raw: bytes, dtype: str, big_endian: bool) -> np.ndarray:
    if dtype == "bfloat16":
        halves = np.frombuffer(raw, dtype=">u2" if big_endian else "<u2").astype(np.uint32)
        return (halves << 16).view(np.float32)
    array = np.frombuffer(raw, dtype=np.dtype(dtype))
    if big_endian and array.dtype.itemsize > 1:
        array = array.byteswap().view(array.dtype)  # bytes were big-endian, now native order
    return array


def _tensor(ref: _TensorRef, storage: np.ndarray, where: str, key: str) -> np.ndarray:
    size, stride = ref.size, ref.stride
    if len(size) != len(stride) or ref.offset < 0 or any(s < 0 for s in (*size, *stride)):
        raise CheckpointError(f"{where}: tensor '{key}' has size {size} / stride {stride}; the "
                              f"pickle is corrupted")
    if 0 not in size:
        last = ref.offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= storage.size:
            raise CheckpointError(f"{where}: tensor '{key}' reaches element {last} of a "
                                  f"{storage.size}-element storage; the checkpoint is corrupted")
    item = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(storage[ref.offset:] if storage.size else storage,
                                           shape=size, strides=[s * item for s in stride],
                                           writeable=False)
    return view if view.flags.c_contiguous else view.copy()  # ascontiguousarray makes 0-d 1-d


def _read_zip(chain: _Chain, where: str, parts: list[Path]) -> Any:
    head = chain.read(4)
    chain.seek(0)
    if head != b"PK\x03\x04":
        if head[:1] == b"\x80":
            raise CheckpointError(f"{where}: the legacy (pre-1.6) torch.save format, which "
                                  f"this reader does not read; re-save it with torch >= 1.6 "
                                  f"(torch.save(torch.load(f), g)) or use --converter torch")
        raise CheckpointError(f"{where}: not a torch checkpoint (no zip archive); expected "
                              f"what torch.save writes")
    try:
        archive = zipfile.ZipFile(chain)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(f"{where}: the torch zip archive is unreadable ({exc}); the file "
                              f"is truncated or a chunk is missing or damaged") from None
    with archive:
        _check_members(archive, chain, where)
        infos = {i.filename: i for i in archive.infolist()}
        pickles = [n for n in infos if n == "data.pkl" or n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(f"{where}: expected one data.pkl in the torch archive, found "
                                  f"{len(pickles)}; not a torch.save file")
        folder = pickles[0][:-len("data.pkl")]
        if infos[pickles[0]].file_size > MAX_PICKLE_BYTES:
            raise CheckpointError(f"{where}: data.pkl declares {infos[pickles[0]].file_size} "
                                  f"bytes; a state dict's is a few MB at most")
        big_endian = False
        order = infos.get(f"{folder}byteorder")
        if order is not None:
            text = _read_member(archive, order, chain, where, parts)
            if text not in (b"little", b"big"):
                raise CheckpointError(f"{where}: byteorder is {text[:20]!r}, expected little "
                                      f"or big")
            big_endian = text == b"big"
        pkl = _read_member(archive, infos[pickles[0]], chain, where, parts)
        try:
            obj = _WeightsOnly(pkl, where).load()
        except CheckpointError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError,
                IndexError, AttributeError, struct.error, RecursionError) as exc:
            raise CheckpointError(f"{where}: data.pkl is not a readable weights-only pickle "
                                  f"({type(exc).__name__}: {str(exc)[:120]}); the file is "
                                  f"corrupted or not a state dict") from None
        storages: dict[str, np.ndarray] = {}

        def materialise(value: Any, key: str) -> Any:
            if isinstance(value, _TensorRef):
                ref = value.storage
                if ref.key not in storages:
                    member = infos.get(f"{folder}data/{ref.key}")
                    if member is None:
                        raise CheckpointError(f"{where}: storage data/{ref.key} of '{key}' is "
                                              f"missing from the archive")
                    expected = ref.numel * _itemsize(ref.dtype)
                    if member.file_size != expected:
                        raise CheckpointError(f"{where}: storage data/{ref.key} of '{key}' holds "
                                              f"{member.file_size} bytes, the pickle says "
                                              f"{expected}; the checkpoint is corrupted")
                    raw = _read_member(archive, member, chain, where, parts)
                    storages[ref.key] = _storage_array(raw, ref.dtype, big_endian)
                return _tensor(value, storages[ref.key], where, key)
            if isinstance(value, dict):  # dict or OrderedDict: the only mappings unpickled
                return type(value)((k, materialise(v, f"{key}.{k}" if key else str(k)))
                                   for k, v in value.items())
            if isinstance(value, (list, tuple)):
                return type(value)(materialise(v, f"{key}[{i}]") for i, v in enumerate(value))
            return value

        result = materialise(obj, "")
        # Every other member's CRC too: a flipped byte anywhere means a damaged download.
        for name, info in infos.items():
            if name != pickles[0] and not name.startswith(f"{folder}data/"):
                _read_member(archive, info, chain, where, parts)
        return result


# ----------------------------------------------------------------------------- state dicts
def unwrap_state_dict(obj: Any, where: str, is_tensor: Callable[[Any], bool],
                      ) -> tuple[dict[str, Any], str]:
    """(state dict, layout) of what a checkpoint file held: a state dict or a training dict."""
    layout = "state-dict"
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj, layout = obj["state_dict"], "training-dict"
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{where}: holds {type(obj).__name__}, expected a state dict "
                              f"(parameter name -> tensor) or a dict with 'state_dict'")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not is_tensor(v)]
    if bad:
        raise CheckpointError(f"{where}: entries {bad[:5]} are not named tensors; expected a "
                              f"state dict (parameter name -> tensor)")
    # Checkpoints saved from DataParallel/DistributedDataParallel prefix every key.
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj), layout


def check_state_dict_keys(expected: set[str], found: set[str], where: str) -> None:
    """Strict key check: only the derived positional-encoding buffer may be absent."""
    missing = sorted(expected - found - DERIVED_KEYS)
    unexpected = sorted(found - expected)
    if missing or unexpected:
        def listed(keys: list[str]) -> str:
            shown = str(keys[:10])
            return shown if len(keys) <= 10 else f"{shown[:-1]}, ... ({len(keys)} in all)]"

        problems = []
        if missing:
            problems.append(f"missing keys {listed(missing)}")
        if unexpected:
            problems.append(f"unexpected keys {listed(unexpected)}")
        raise CheckpointError(f"{where}: state dict does not match the BOSS Net config: "
                              f"{'; '.join(problems)}; check --config (model_args.yaml)")


def check_shapes(found: Mapping[str, tuple[int, ...]], expected: Mapping[str, tuple[int, ...]],
                 where: str) -> None:
    """Every tensor's shape must be the config's: a wrong model_args.yaml fails here."""
    wrong = [f"{k} {tuple(v)} (expected {tuple(expected[k])})"
             for k, v in found.items() if tuple(v) != tuple(expected[k])]
    if wrong:
        raise CheckpointError(f"{where}: tensor shapes do not match the config: "
                              f"{'; '.join(wrong[:4])}; check --config (model_args.yaml)")


def _open(path: Path) -> tuple[list[Path], str]:
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found; pass the official model directory "
                              f"(model_args.yaml + model_chunk_*) or a .pt/.pth file")
    if path.is_dir():
        return chunk_paths(path), f"{path} (model_chunk_* concatenated)"
    return [path], str(path)


def _load(parts: list[Path], where: str) -> tuple[Any, int]:
    try:
        chain = _Chain(parts)
    except OSError as exc:
        raise CheckpointError(f"{where}: cannot read checkpoint ({exc.strerror})") from None
    with chain:
        return _read_zip(chain, where, parts), chain.size


def load_tensors(path: str | Path) -> Any:
    """What a torch.save file (or the official chunks) holds, tensors as numpy arrays, read
    with the same restrictions as `read_state` (weights-only, bounded, CRC-checked)."""
    path = Path(path)
    parts, where = _open(path)
    return _load(parts, where)[0]


def read_state(path: str | Path, config: BossNetConfig) -> LoadedState:
    """The float32 state dict of a checkpoint in any of the three layouts, checked strictly
    against `config` (names and shapes); the derived buffers are filled in when absent."""
    path = Path(path)
    parts, where = _open(path)
    obj, n_bytes = _load(parts, where)
    state, layout = unwrap_state_dict(obj, where, lambda v: isinstance(v, np.ndarray))
    if path.is_dir():
        layout = "official-chunks"
    expected = state_shapes(config)
    check_state_dict_keys(set(expected), set(state), where)
    check_shapes({k: v.shape for k, v in state.items()}, expected, where)
    if config.pos_enc:
        state.setdefault("pos_enc.inv_freq", np.ones(1, dtype=np.float32))
    floats = {k: (v if v.dtype == np.float32 else v.astype(np.float32))
              for k, v in state.items() if not k.endswith("num_batches_tracked")}
    return LoadedState(state=floats, weights_sha256=_sha256(parts), source=path,
                       layout=layout, where=where, n_bytes=n_bytes)
