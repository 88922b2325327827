"""What bytes a model consists of, and one content hash over all of them.

An ONNX model is its `.onnx` file plus any external-data files its tensors point to (large
models are often saved that way). Anything that stands in for the model (the ORT-format copy in
`ort_cache`) must be keyed on all of those bytes: a key from path, size or mtime keeps running
old weights after `cp -p` / `rsync -a` of a re-exported model or a change to an external file.

The external files are found by walking the protobuf wire format directly (graph initializers,
sparse initializers, node attributes and their subgraphs), so the runtime needs no `onnx`
package; the tensor payloads are skipped by length, never parsed, so the walk costs
milliseconds even for the 290 MB network. A file this walk cannot read is reported as None:
callers then do not cache (they load the `.onnx` directly), they never guess.

External data is read only from regular files inside the model's folder (links resolved),
each at most MAX_EXTERNAL_BYTES and read to its stat size, never to EOF: a location naming
`/dev/zero`, a FIFO or a file outside the folder is refused in one line by
`check_external_data` before onnxruntime or the content hash opens it (either would read
forever or block).
"""
from __future__ import annotations

import hashlib
import json
import mmap
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..hashing import file_sha256

__all__ = ["external_data_files", "metadata_entry_sizes", "read_metadata_props",
           "model_content_sha256", "check_external_data", "MAX_EXTERNAL_BYTES"]

#: Largest external-data file a model may reference (the whole BOSS network is 290 MB).
MAX_EXTERNAL_BYTES = 16 << 30

# Field numbers of onnx.proto3 that can hold a TensorProto (directly or through a subgraph).
_MODEL_GRAPH = 7
_MODEL_METADATA_PROPS = 14
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE_INITIALIZER = 1, 5, 15
_NODE_ATTRIBUTE = 5
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS = 5, 6, 10, 11
_ATTR_SPARSE_TENSOR, _ATTR_SPARSE_TENSORS = 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_EXTERNAL_DATA = 13
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_MAX_DEPTH = 32  # nested subgraphs deeper than this are not a BOSS Net model


class _Malformed(Exception):
    """The protobuf bytes do not parse; the caller treats the model as unprovable."""


def _varint(buf, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Malformed("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf):
    """(field number, wire type, value) of one message; length-delimited values as memoryview."""
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = None, pos + 8
        elif wire == 5:
            value, pos = None, pos + 4
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise _Malformed("length runs past the end")
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise _Malformed(f"wire type {wire}")
        if pos > end:
            raise _Malformed("field runs past the end")
        yield number, wire, value


def _tensor_locations(buf, out: set[str]) -> None:
    for number, wire, value in _fields(buf):
        if number == _TENSOR_EXTERNAL_DATA and wire == 2:
            entry = {n: bytes(v).decode("utf-8", "replace") for n, w, v in _fields(value) if w == 2}
            if entry.get(_ENTRY_KEY) == "location" and _ENTRY_VALUE in entry:
                out.add(entry[_ENTRY_VALUE])


def _sparse_locations(buf, out: set[str]) -> None:
    for number, wire, value in _fields(buf):
        if number in (_SPARSE_VALUES, _SPARSE_INDICES) and wire == 2:
            _tensor_locations(value, out)


def _graph_locations(buf, out: set[str], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _Malformed("subgraphs nested too deeply")
    for number, wire, value in _fields(buf):
        if wire != 2:
            continue
        if number == _GRAPH_INITIALIZER:
            _tensor_locations(value, out)
        elif number == _GRAPH_SPARSE_INITIALIZER:
            _sparse_locations(value, out)
        elif number == _GRAPH_NODE:
            for n_num, n_wire, attr in _fields(value):
                if n_num == _NODE_ATTRIBUTE and n_wire == 2:
                    _attribute_locations(attr, out, depth)


def _attribute_locations(buf, out: set[str], depth: int) -> None:
    for number, wire, value in _fields(buf):
        if wire != 2:
            continue
        if number in (_ATTR_T, _ATTR_TENSORS):
            _tensor_locations(value, out)
        elif number in (_ATTR_SPARSE_TENSOR, _ATTR_SPARSE_TENSORS):
            _sparse_locations(value, out)
        elif number in (_ATTR_G, _ATTR_GRAPHS):
            _graph_locations(value, out, depth + 1)


def _walk_model(model: str | os.PathLike, visit: Callable[[int, int, Any], None]) -> bool:
    """Call `visit(field number, wire type, value)` for each top-level field of the ModelProto,
    reading the file through a read-only mapping (payloads are skipped by length, never
    copied); False if the file is empty or not readable as ONNX protobuf."""
    try:
        with open(model, "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return False
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                view = memoryview(mapped)
                try:
                    for number, wire, value in _fields(view):
                        visit(number, wire, value)
                        if isinstance(value, memoryview):
                            value.release()
                finally:
                    view.release()
    except (OSError, ValueError, _Malformed):
        return False
    return True


def external_data_files(model: str | os.PathLike) -> list[Path] | None:
    """The external-data files `model` references (resolved next to it), sorted; None if the
    file is not readable as ONNX protobuf."""
    model = Path(model)
    locations: set[str] = set()

    def visit(number: int, wire: int, value: Any) -> None:
        if number == _MODEL_GRAPH and wire == 2:
            _graph_locations(value, locations, 0)

    if not _walk_model(model, visit):
        return None
    return sorted(model.parent / loc for loc in locations)


def _metadata_entries(model: str | os.PathLike, values: bool = True
                      ) -> list[tuple[str, bytes | int]] | None:
    """(key, value bytes) of every metadata_props entry, the graph skipped by length; None if
    the file is empty or not readable as ONNX protobuf. With `values=False` each value is only
    its length: a hostile 400 MB entry is measured without being copied out of the mapping."""
    entries: list[tuple[str, bytes | int]] = []

    def visit(number: int, wire: int, value: Any) -> None:
        if number == _MODEL_METADATA_PROPS and wire == 2:
            entry = {n: v for n, w, v in _fields(value) if w == 2}
            key = bytes(entry.get(_ENTRY_KEY, b"")).decode("utf-8", "replace")
            raw = entry.get(_ENTRY_VALUE, b"")
            entries.append((key, bytes(raw) if values else len(raw)))
            for v in entry.values():
                v.release()

    return entries if _walk_model(model, visit) else None


def metadata_entry_sizes(model: str | os.PathLike) -> dict[str, int] | None:
    """{metadata_props key: value length in bytes}, read without loading the model; None if the
    file is not readable as ONNX protobuf.

    Lets the runtime refuse a model with a huge metadata entry before onnxruntime parses it and
    Python copies it (a 400 MB entry would otherwise cost gigabytes).
    """
    entries = _metadata_entries(model, values=False)
    return None if entries is None else {key: int(size) for key, size in entries}


def read_metadata_props(model: str | os.PathLike) -> dict[str, str]:
    """The model's metadata_props as a dict, without parsing its graph or importing onnx.

    An engine that compiles from its own cache (OpenVINO) never parses the 290 MB protobuf, but
    the runtime still checks the model's self-description. ModelError if the file is not a
    readable ONNX protobuf or an entry is not UTF-8.
    """
    from ..errors import ModelError

    entries = _metadata_entries(model)
    if entries is None:
        raise ModelError(f"{model}: not a loadable ONNX model (not an ONNX protobuf)")
    try:
        return {key: bytes(value).decode("utf-8") for key, value in entries
                if isinstance(value, bytes)}
    except UnicodeDecodeError as exc:
        raise ModelError(f"{model}: not a loadable ONNX model ({exc})") from None


def check_external_data(model: str | os.PathLike) -> list[tuple[Path, int]]:
    """(path, size) of each external-data file of `model`; ModelError naming the first one
    that is not a regular file inside the model's folder within MAX_EXTERNAL_BYTES. Nothing
    is opened (a FIFO would block the open). A file the walk cannot read gives [] here:
    onnxruntime then reports it."""
    from ..errors import ModelError
    from ..safe_files import inside, regular_file_size
    from ..textsafe import printable

    model = Path(model)
    found = []
    for path in external_data_files(model) or []:
        where = f"{printable(model)}: external data {printable(os.path.relpath(path, model.parent))}"
        if not inside(path, model.parent):
            raise ModelError(f"{where} lies outside the model's folder; external data must sit "
                             f"beside the .onnx (re-save the model with relative locations)")
        try:
            size = regular_file_size(path)
        except FileNotFoundError:
            raise ModelError(f"{where} not found; copy it beside the .onnx") from None
        except OSError as exc:
            raise ModelError(f"{where} {exc.strerror or exc}; external data must be a regular "
                             f"file beside the .onnx") from None
        if size > MAX_EXTERNAL_BYTES:
            raise ModelError(f"{where} holds {size:,} bytes, more than the "
                             f"{MAX_EXTERNAL_BYTES:,} allowed; not a BOSS Net model")
        found.append((path, size))
    return found


def _bounded_sha256(path: Path, size: int) -> str:
    """sha256 of the first `size` bytes; OSError if the file is shorter (it changed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        left = size
        while left:
            block = fh.read(min(left, 1 << 20))
            if not block:
                raise OSError(f"{path}: shorter than its size")
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def model_content_sha256(model: str | os.PathLike) -> str | None:
    """One sha256 over the `.onnx` bytes and every external-data file it references.

    None when the model cannot be proven (unreadable, not protobuf, a referenced file missing,
    not a regular file inside the model's folder): the caller must then not cache anything.
    """
    from ..errors import ModelError

    model = Path(model)
    if external_data_files(model) is None:
        return None
    try:
        externals = check_external_data(model)
        parts = {"onnx": file_sha256(model)}
        for path, size in externals:
            parts[os.path.relpath(path, model.parent)] = _bounded_sha256(path, size)
    except (OSError, ModelError):
        return None
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
