"""`bossnet-onnx models list` and `models pull`: the published weights, fetched and trusted.

A pull is: take the registry entry, fetch each file (from the network through `downloads`, or
from a local clone with `--from`), verify every git blob id, then convert them (strict load,
fatal parity check; torch's exporter when torch is installed, `bossnet_onnx.convert`
otherwise) and install `NAME.onnx` by an atomic rename, with a receipt of its sha256 (an
installed model is trusted only while its bytes match the receipt: its metadata alone can be
copied onto other weights). Each step leaves either its finished result or nothing: a verified
file is kept for the next try whatever fails
later, an unverified one never stays, and `NAME.onnx` exists only once it passed the parity
check. No step needs torch.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import write_atomically
from ..errors import BossNetError, DownloadError, PullError
from ..hashing import file_sha256
from ..safe_files import open_file
from .downloads import (
    ByteProgress,
    RetryPolicy,
    copy_verified,
    fetch_verified,
    file_url,
    models_url,
)
from .home import (
    download_folder,
    installed_models,
    installed_path,
    models_home,
    pull_lock,
    receipt_path,
)
from .registry import Registry, RegistryModel, git_blob_id, load_registry

__all__ = ["PullResult", "pull_model", "list_models", "EXPORT_HINT", "CONVERT_HINT", "DR19_NOTE",
           "source_record", "format_model_list"]

EXPORT_HINT = "pip install 'bossnet-onnx[cpu,export]'"
CONVERT_HINT = "pip install --force-reinstall 'bossnet-onnx[cpu]'"
#: Said wherever the BOSS sets are listed: users must not assume either is DR19's.
DR19_NOTE = ("Which BOSS set SDSS DR19 ran is not public: 'boss' is the set the reference code "
             "loads today, 'boss-2023-05' the first release.")


@dataclass
class PullResult:
    """What a pull did: where the model is, and what it fetched or found already there."""

    name: str
    path: Path
    status: str  # "installed", "already-installed"
    fetched: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    bytes_transferred: int = 0
    resumed: list[str] = field(default_factory=list)
    source: str = ""
    parity: str = ""
    converter: str = ""

    def summary(self) -> str:
        if self.status == "already-installed":
            return (f"{self.name} is already installed: {self.path} (use --force to fetch, "
                    f"verify and export it again)")
        parts = [f"{len(self.fetched)} files verified from {self.source}"]
        if self.reused:
            parts.append(f"{len(self.reused)} verified files reused")
        if self.resumed:
            parts.append(f"resumed {', '.join(self.resumed)}")
        return (f"installed {self.name} -> {self.path} ({'; '.join(parts)}; "
                f"{self.bytes_transferred / 1e6:.1f} MB transferred)"
                + (f"\nparity ({self.converter} converter): {self.parity}"
                   if self.parity else ""))


def source_record(model: RegistryModel, fetched_from: str) -> dict[str, Any]:
    """Provenance stored in the exported model (`bossnet.source`): which published set."""
    return {
        "registry_name": model.name,
        "member": model.member,
        "repository": model.repository,
        "commit": model.commit,
        "folder": model.folder,
        "files": [{"path": f.path, "blob": f.blob} for f in model.files],
        "fetched_from": fetched_from,
    }


def _local_source(clone: Path, path: str) -> Path | None:
    """A file of the set in a clone (repository layout) or in a copy of just the folder."""
    for candidate in (clone / path, clone / Path(path).name):
        if candidate.is_file():
            return candidate
    return None


def _fetch_files(model: RegistryModel, folder: Path, clone: Path | None, progress: bool,
                 policy: RetryPolicy, result: PullResult) -> None:
    """Every file of the set verified into `folder`; already-verified files are kept."""
    folder.mkdir(parents=True, exist_ok=True)
    root = models_url()
    if clone is not None:
        if not clone.is_dir():
            raise DownloadError(f"{clone}: --from folder not found; give a clone of "
                                f"https://github.com/{model.repository}")
        missing = [f.path for f in model.files if _local_source(clone, f.path) is None]
        if missing:
            raise DownloadError(
                f"{clone}: lacks {missing[0]}" + (f" (and {len(missing) - 1} more files)"
                                                  if len(missing) > 1 else "")
                + f"; in the clone run `git checkout {model.commit[:7]} -- {model.folder}`"
                  f" (the set {model.name} is read at commit {model.commit[:7]})")
        result.source = f"local clone {clone}"
    else:
        result.source = root
    with ByteProgress(progress) as bar:
        for item in model.files:
            dest = folder / item.name
            cap = model.size_cap(item)
            if dest.is_symlink() or dest.exists():
                if _verified_copy(dest, item.blob, cap):
                    result.reused.append(item.name)
                    continue
                dest.unlink()
            if clone is not None:
                source = _local_source(clone, item.path)
                assert source is not None
                copy_verified(source, dest, item.blob, bar, max_bytes=cap)
            else:
                got = fetch_verified(file_url(root, model.commit, item.path), dest, item.blob,
                                     policy=policy, progress=bar, max_bytes=cap)
                result.bytes_transferred += got.transferred
                if got.resumed_from:
                    result.resumed.append(f"{item.name} at byte {got.resumed_from}")
            result.fetched.append(item.name)


def _verified_copy(dest: Path, blob: str, cap: int) -> bool:
    """A file kept from an earlier pull is reused only if it is a plain file within its size
    cap holding the pinned bytes (a planted link or FIFO is removed, never read)."""
    try:
        with open_file(dest, "rb") as handle:
            if os.fstat(handle.fileno()).st_size > cap:
                return False
    except OSError:
        return False
    return git_blob_id(dest) == blob


def _receipt(model: RegistryModel, target: Path, fetched_from: str) -> dict[str, Any]:
    return {"name": model.name, "sha256": file_sha256(target),
            "source": source_record(model, fetched_from)}


def _write_receipt(model: RegistryModel, target: Path, fetched_from: str, home: Path) -> None:
    text = json.dumps(_receipt(model, target, fetched_from), indent=1)

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)

    write_atomically(receipt_path(model.name, home), write)


def _read_receipt(path: Path) -> dict[str, Any] | None:
    try:
        with open_file(path, "rb") as handle:
            doc = json.loads(handle.read(1 << 16).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _converter(model: RegistryModel, folder: Path, converter: str) -> str:
    """The converter that will build the model ("torch" or "numpy"), or a PullError saying
    what to install; the verified files stay either way."""
    from ..convert.choose import torch_available
    from ..science.members import MEMBERS

    kept = f"the {len(model.files)} verified files are kept in {folder}"
    if model.member not in MEMBERS:
        raise PullError(f"{model.name}: {kept}; this version of bossnet-onnx converts and runs "
                        f"only {', '.join(MEMBERS)} models, not the {model.member} member "
                        f"(a newer bossnet-onnx may know it)")
    if converter == "torch" or (converter == "auto" and torch_available()):
        if not torch_available():
            raise PullError(f"{model.name}: {kept}; --converter torch needs torch: "
                            f"{EXPORT_HINT} (or pull with --converter numpy, which needs no "
                            f"torch)")
        return "torch"
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise PullError(f"{model.name}: {kept}; converting them needs the onnx package, part "
                        f"of every bossnet-onnx install: {CONVERT_HINT}, then run "
                        f"`bossnet-onnx models pull {model.name}` again") from None
    return "numpy"


def _check_installed(model: RegistryModel, target: Path, home: Path) -> None:
    """An installed model must load, be the set the registry names, and still be the bytes
    pull installed (its receipt's sha256), else say --force."""
    from .session import open_model

    try:
        installed = open_model(target, provider="cpu", threads=1).metadata.source
    except BossNetError as exc:
        raise PullError(f"{model.name}: the installed {target} cannot be used ({exc}); "
                        f"run `bossnet-onnx models pull {model.name} --force` to replace "
                        f"it") from None
    wanted = source_record(model, "")
    found = {k: (installed or {}).get(k) for k in ("repository", "commit", "files")}
    if found != {k: wanted[k] for k in ("repository", "commit", "files")}:
        was = (f"{installed.get('repository')}@{str(installed.get('commit'))[:12]}"
               if installed else "weights of unknown origin")
        raise PullError(f"{model.name}: the installed {target} holds {was}, not the registry's "
                        f"{model.repository}@{model.commit[:12]} (files and blob ids must "
                        f"match); run `bossnet-onnx models pull {model.name} --force` to "
                        f"replace it")
    again = f"run `bossnet-onnx models pull {model.name} --force` to replace it"
    receipt = _read_receipt(receipt_path(model.name, home))
    wanted_source = {k: wanted[k] for k in ("repository", "commit", "files")}
    if receipt is None:
        raise PullError(f"{model.name}: the installed {target} has no readable receipt "
                        f"({receipt_path(model.name, home).name}), so its weights cannot be "
                        f"proven to be the registry's; {again}")
    receipt_source = receipt.get("source")
    if not isinstance(receipt_source, dict):
        receipt_source = {}
    if {k: receipt_source.get(k) for k in wanted_source} != wanted_source:
        raise PullError(f"{model.name}: the receipt of {target} names another weight set than "
                        f"the registry's {model.repository}@{model.commit[:12]}; {again}")
    if file_sha256(target) != receipt.get("sha256"):
        raise PullError(f"{model.name}: the installed {target} is not the file pull installed "
                        f"(its sha256 differs from the receipt's: other weights, or changed "
                        f"since); {again}")


def pull_model(name: str, *, source_dir: str | os.PathLike | None = None, force: bool = False,
               progress: bool = False, registry: Registry | None = None,
               policy: RetryPolicy = RetryPolicy(), converter: str = "auto") -> PullResult:
    """Fetch, verify, convert and install the published set NAME (see the module doc).

    `source_dir` takes the files from a local clone of the repository (or a copy of the set's
    folder) instead of the network. A model already installed is left alone unless `force`.
    `converter` is auto (torch when installed, else the torch-free converter), torch or numpy;
    the file records which one built it.
    """
    from ..convert import CONVERTER_CHOICES

    if converter not in CONVERTER_CHOICES:
        raise PullError(f"--converter {converter!r}; choose one of {', '.join(CONVERTER_CHOICES)}")
    registry = registry or load_registry()
    model = registry.get(name)
    home = models_home()
    target = installed_path(model.name, home)
    with pull_lock(model.name, home):
        if target.is_file() and not force:
            _check_installed(model, target, home)
            return PullResult(name=model.name, path=target, status="already-installed")
        folder = download_folder(model.name, model.commit, home)
        result = PullResult(name=model.name, path=target, status="installed")
        clone = Path(source_dir).expanduser() if source_dir is not None else None
        _fetch_files(model, folder, clone, progress, policy, result)
        chosen = _converter(model, folder, converter)
        stats = folder / model.stats_file.name if model.stats_file else None
        config: Any
        if model.config_file is not None:
            config = folder / model.config_file.name
        else:
            from ..convert.config import OFFICIAL_BOSS

            config = OFFICIAL_BOSS  # the set was built with the network's defaults
        target.parent.mkdir(parents=True, exist_ok=True)
        from ..convert.choose import export_checkpoint

        try:
            report = export_checkpoint(
                folder, target, converter=chosen, config=config, stats=stats, name=model.name,
                provenance="published-weights",
                description=f"{model.title or model.name}: {model.repository} "
                            f"{model.folder} at {model.commit[:7]}",
                source=source_record(model, result.source), member=model.member,
            )
        except OSError as exc:
            raise PullError(f"{target.parent}: cannot write the model ({exc.strerror or exc}); "
                            f"free some space or point BOSSNET_ONNX_HOME elsewhere; the "
                            f"verified files are kept in {folder}") from None
        try:
            _write_receipt(model, target, result.source, home)
        except OSError as exc:
            target.unlink(missing_ok=True)
            raise PullError(f"{target.parent}: cannot write the receipt of {target.name} "
                            f"({exc.strerror or exc}); nothing was installed; the verified "
                            f"files are kept in {folder}") from None
        result.parity = report.parity.summary()
        result.converter = report.converter
        shutil.rmtree(folder, ignore_errors=True)
        return result


def list_models(registry: Registry | None = None) -> dict[str, Any]:
    """The registry (format of BOSSNET_ONNX_REGISTRY files) plus each model's install state."""
    registry = registry or load_registry()
    home = models_home()
    installed = installed_models(home)
    doc = registry.to_json()
    doc["registry"] = registry.source
    doc["home"] = str(home)
    doc["note"] = DR19_NOTE
    for entry in doc["models"]:
        path = installed.get(entry["name"])
        entry["installed"] = ({"path": str(path), "bytes": path.stat().st_size}
                              if path is not None else None)
    return doc


def format_model_list(doc: dict[str, Any]) -> str:
    """The `models list` text: one block per model, the DR19 note, where models go."""
    lines = []
    for entry in doc["models"]:
        installed = entry.get("installed")
        state = (f"installed: {installed['path']} ({installed['bytes'] / 1e6:.1f} MB)"
                 if installed
                 else f"not installed: bossnet-onnx models pull {entry['name']}")
        size = (f"about {entry['approx_bytes'] / 1e6:.0f} MB to download"
                if entry.get("approx_bytes") else "size unknown")
        lines.append(f"{entry['name']}  ({entry['member']}) {entry.get('title', '')}")
        lines.append(f"    {entry['repository']} {entry['folder']} @ {entry['commit']}")
        lines.append(f"    {len(entry['files'])} files, {size}; {state}")
        if entry.get("description"):
            lines.append(f"    {entry['description']}")
    lines.append("")
    lines.append(doc["note"])
    lines.append(f"registry: {doc['registry']}; models home: {doc['home']}")
    return "\n".join(lines)
