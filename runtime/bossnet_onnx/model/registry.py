"""Which published weight sets exist, where they live and how to recognise their bytes.

The published BOSS Net weights (and its three siblings) are plain git files in the reference
repository. Each file is pinned by the commit it is read at and by its git blob id, the SHA-1 of
`blob <size>\\0<bytes>`, taken from the repository's own tree rather than from any download, so
a file fetched from anywhere (GitHub, a site mirror, a local clone) can be verified without
trusting where it came from.

The built-in registry ships as `registry.json` next to this module. `BOSSNET_ONNX_REGISTRY`
names a replacement file in the same format (what `bossnet-onnx models list --json` prints),
for sites that mirror the files elsewhere and for tests.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import RegistryError, first_line
from ..textsafe import shown as _shown

__all__ = ["REGISTRY_ENV", "RegistryFile", "RegistryModel", "Registry", "load_registry",
           "git_blob_id", "NAME_PATTERN"]

REGISTRY_ENV = "BOSSNET_ONNX_REGISTRY"
FORMAT = "bossnet-onnx-registry"
VERSION = 1
#: Registry names become file names (NAME.onnx) and --model values: no paths, no suffixes.
#: Always used with fullmatch: `$` would also match before a final newline ('tiny\n').
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
HEX40 = re.compile(r"[0-9a-f]{40}")
#: Size caps of files the registry does not pin exactly: configs and stats are a few hundred
#: bytes; weight chunks are equal byte-splits (`chop_model.py`) of about approx_bytes in all.
SMALL_FILE_CAP = 1 << 20
CHUNK_MARGIN = 1.05
UNKNOWN_WEIGHTS_CAP = 2 << 30
#: A registry file is a few KB; anything far larger is not one (and is not parsed).
MAX_REGISTRY_BYTES = 16 << 20
ROLES = ("config", "weights", "stats")


def git_blob_id(path: str | os.PathLike) -> str:
    """Git's id of a file's content: SHA-1 of `blob <size>\\0` followed by the bytes.

    The size is part of the hashed text, so a truncated or padded file never matches.
    """
    size = os.path.getsize(path)
    digest = hashlib.sha1(f"blob {size}\0".encode("ascii"))
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class RegistryFile:
    """One file of a published set: repository path, blob id, and what it is for."""

    path: str
    blob: str
    role: str  # "config" (model_args.yaml), "weights" (model_chunk_i) or "stats"
    size: int | None = None  # exact byte count, when the registry pins it

    @property
    def name(self) -> str:
        """File name in the local copy: the repository folder's layout, flattened."""
        return PurePosixPath(self.path).name

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"path": self.path, "blob": self.blob, "role": self.role}
        if self.size is not None:
            doc["size"] = self.size
        return doc


@dataclass(frozen=True)
class RegistryModel:
    """A published weight set: a folder of one repository at one commit."""

    name: str
    member: str
    title: str
    description: str
    repository: str
    commit: str
    folder: str
    files: tuple[RegistryFile, ...]
    approx_bytes: int | None = None

    def role(self, role: str) -> list[RegistryFile]:
        return [f for f in self.files if f.role == role]

    def size_cap(self, item: RegistryFile) -> int:
        """Most bytes `item` may have: its pinned size, else a bound from its role (1 MiB for a
        config or stats file; for a weight chunk its share of approx_bytes plus 5%)."""
        if item.size is not None:
            return item.size
        if item.role != "weights":
            return SMALL_FILE_CAP
        if not self.approx_bytes:
            return UNKNOWN_WEIGHTS_CAP
        share = self.approx_bytes / max(1, len(self.role("weights")))
        return int(share * CHUNK_MARGIN) + SMALL_FILE_CAP

    @property
    def config_file(self) -> RegistryFile | None:
        found = self.role("config")
        return found[0] if found else None

    @property
    def stats_file(self) -> RegistryFile | None:
        found = self.role("stats")
        return found[0] if found else None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "member": self.member, "title": self.title,
            "description": self.description, "repository": self.repository,
            "commit": self.commit, "folder": self.folder, "approx_bytes": self.approx_bytes,
            "files": [f.to_json() for f in self.files],
        }


@dataclass(frozen=True)
class Registry:
    """All known weight sets, in the order they are listed, and where the list came from."""

    models: tuple[RegistryModel, ...]
    source: str

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def get(self, name: str) -> RegistryModel:
        """The set called `name`; RegistryError listing the known names otherwise."""
        for model in self.models:
            if model.name == name:
                return model
        raise RegistryError(
            f"no model called {_shown(name)} in the registry ({self.source}); known: "
            f"{', '.join(self.names) or 'none'}; see `bossnet-onnx models list`"
        )

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION,
                "models": [m.to_json() for m in self.models]}


def _builtin_text() -> tuple[str, str]:
    resource = resources.files(__package__).joinpath("registry.json")
    return resource.read_text(encoding="utf-8"), "built-in registry"


def load_registry(path: str | os.PathLike | None = None) -> Registry:
    """The registry from `path`, else `$BOSSNET_ONNX_REGISTRY`, else the built-in one."""
    if path is None:
        path = os.environ.get(REGISTRY_ENV) or None
    if path is None:
        text, source = _builtin_text()
    else:
        source = str(path)
        try:
            from ..safe_files import regular_file_size

            if regular_file_size(path) > MAX_REGISTRY_BYTES:
                raise RegistryError(f"{source}: more than {MAX_REGISTRY_BYTES >> 20} MB; not a "
                                    f"registry file (set by {REGISTRY_ENV}?)")
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RegistryError(f"{source}: registry file not found (set by {REGISTRY_ENV}?); "
                                f"unset {REGISTRY_ENV} to use the built-in registry") from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise RegistryError(f"{source}: cannot read the registry file ({reason})") from None
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else first_line(exc, 120)
        raise RegistryError(f"{source}: not valid JSON ({why}); expected the format that "
                            f"`bossnet-onnx models list --json` prints") from None
    return parse_registry(doc, source)


def parse_registry(doc: Any, source: str) -> Registry:
    """Check every field, so that a bad mirror file fails here with its place named."""
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
        raise RegistryError(f"{source}: expected a JSON object with a 'models' list (the format "
                            f"of `bossnet-onnx models list --json`)")
    if doc.get("format", FORMAT) != FORMAT or doc.get("version", VERSION) != VERSION:
        raise RegistryError(f"{source}: format {_shown(doc.get('format'))} version "
                            f"{_shown(doc.get('version'))}; this bossnet-onnx reads {FORMAT!r} "
                            f"version {VERSION}")
    models = []
    seen: set[str] = set()
    for i, entry in enumerate(doc["models"]):
        model = _parse_model(entry, f"{source}: models[{i}]")
        if model.name in seen:
            raise RegistryError(f"{source}: models[{i}]: name {_shown(model.name)} appears twice")
        seen.add(model.name)
        models.append(model)
    return Registry(models=tuple(models), source=source)


def _text(entry: dict, key: str, where: str, optional: bool = False) -> str:
    value = entry.get(key)
    if value is None and optional:
        return ""
    if not isinstance(value, str) or not value:
        raise RegistryError(f"{where}: field '{key}' is {'missing' if value is None else _shown(value)}"
                            f"; expected a non-empty string")
    return value


def _parse_model(entry: Any, where: str) -> RegistryModel:
    if not isinstance(entry, dict):
        raise RegistryError(f"{where}: expected an object, got {type(entry).__name__}")
    name = _text(entry, "name", where)
    where = f"{where} ({_shown(name)})"
    if not NAME_PATTERN.fullmatch(name):
        raise RegistryError(f"{where}: name must be lower-case letters, digits, '-' or '_' "
                            f"(it becomes a file name and a --model value)")
    commit = _text(entry, "commit", where)
    if not HEX40.fullmatch(commit):
        raise RegistryError(f"{where}: commit {_shown(commit)} is not a full 40-digit hex id; pin the "
                            f"full id (`git rev-parse`)")
    files_doc = entry.get("files")
    if not isinstance(files_doc, list) or not files_doc:
        raise RegistryError(f"{where}: field 'files' is missing or empty; expected a list of "
                            f"{{path, blob, role}}")
    files = []
    for j, item in enumerate(files_doc):
        place = f"{where}: files[{j}]"
        if not isinstance(item, dict):
            raise RegistryError(f"{place}: expected an object with path, blob and role")
        path = _text(item, "path", place)
        parts = path.split("/")
        if path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
            raise RegistryError(f"{place}: path {_shown(path)} must be a file's path relative to "
                                f"the repository, without '.', '..' or empty parts")
        blob = _text(item, "blob", place).lower()
        if not HEX40.fullmatch(blob):
            raise RegistryError(f"{place}: blob {_shown(blob)} is not a 40-digit hex git blob id")
        role = _text(item, "role", place)
        if role not in ROLES:
            raise RegistryError(f"{place}: role {_shown(role)}; expected one of {', '.join(ROLES)}")
        size = item.get("size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int)
                                 or size < 0):
            raise RegistryError(f"{place}: size is {_shown(size)}; expected a byte count or "
                                f"null")
        files.append(RegistryFile(path=path, blob=blob, role=role, size=size))
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise RegistryError(f"{where}: two files share a file name; each file of a set needs "
                            f"its own name")
    if not any(f.role == "weights" for f in files):
        raise RegistryError(f"{where}: no file with role 'weights' (model_chunk_i)")
    approx = entry.get("approx_bytes")
    if approx is not None and (isinstance(approx, bool) or not isinstance(approx, int)
                               or approx < 0):
        raise RegistryError(f"{where}: approx_bytes is {_shown(approx)}; expected a byte count or null")
    return RegistryModel(
        name=name, member=_text(entry, "member", where), title=_text(entry, "title", where, True),
        description=_text(entry, "description", where, True),
        repository=_text(entry, "repository", where), commit=commit,
        folder=_text(entry, "folder", where, True), files=tuple(files), approx_bytes=approx,
    )
