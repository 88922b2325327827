"""A memory-mapped ORT-format copy of a model, for lean and instant session start on CPU.

Loading a .onnx file makes onnxruntime hold the parsed protobuf and the initializer tensors at
the same time (~1.9x the weights at peak) and copy every weight. The ORT format can instead be
memory-mapped and its initializers used in place: a session starts in milliseconds, its weights
are file-backed pages shared by every process on the node that uses the same model (SLURM
arrays, Dask workers), and peak memory is the weights once plus activations.

The copy stands in for the model, so it must provably hold the model's weights:

* **Key = content.** An entry is named by a sha256 over the `.onnx` bytes and every
  external-data file it references (`model_content`), the onnxruntime version and this cache's
  format version. Path, size and mtime play no part: `cp -p` or `rsync -a` of a re-exported
  model (same size and mtime) gets a new key. Hashing the 290 MB BOSS network costs 0.23 s in
  memory (SHA-NI CPU; ~0.9 s on a loaded shared machine), so the hash is memoised per user
  with each file's (dev, inode, size, mtime_ns, ctime_ns) and recomputed whenever any differs
  (`content_sha256` says why that is a proof, and where it is not taken).
* **Entries are proven, never trusted by name.** Each `<key>.ort` has a `<key>.json` manifest
  written after it, recording the model hash, the onnxruntime version, the `.ort` file's sha256
  and its (dev, inode, size, mtime_ns, ctime_ns). Any write to the `.ort` changes its ctime, any
  replacement its inode, so an entry whose stat still matches is the file that was written;
  otherwise its bytes are hashed against the manifest. An entry that is planted, truncated,
  empty, unreadable, owned by another user (in a private cache), or from another onnxruntime
  version is rebuilt (or, where it cannot be replaced, bypassed: the `.onnx` is loaded
  directly). A cache problem is never fatal and never reported as a fault of the model.
* **Private by default.** `$BOSSNET_ONNX_CACHE` or `$XDG_CACHE_HOME/bossnet-onnx`
  (`~/.cache/bossnet-onnx`) is created 0700, must be owned by the user and not writable by
  others; entries are 0600. `BOSSNET_ONNX_CACHE=off` switches caching off.
* **Shared on purpose.** `$BOSSNET_ONNX_SHARED_CACHE=/dir` (takes precedence) shares copies
  between the users of a node: the folder is created setgid + sticky and group-writable
  (3775), entries are written 0644 so every user can map them, and nobody but their owner can
  replace them. Entries are used only if not writable by group or others, and the folder only if
  it is sticky whenever group/others may write to it.
* **Bounded.** After each new entry, the user's own least-recently-used entries are deleted
  until the folder holds at most `$BOSSNET_ONNX_CACHE_MAX_MB` (default 2048 MB, ~7 copies of the
  BOSS network); using an entry marks it used. A model larger than the bound is not cached.
* **The copy holds the bytes hashed.** The model's files are stat'ed (dev, inode, size,
  mtime_ns, ctime_ns) before hashing and again after the conversion; any difference (a
  rewrite changes ctime, a swap the inode) discards the copy, so a model replaced mid-build
  never leaves its weights under another model's key.
* **Only for the CPU provider**: the conversion applies CPU-specific fusions.
* **The faster formulation of the graph for onnxruntime's CPU kernels** (formulation.py): the
  model's wide convolutions as tiled DFT products (spectral.py; `$BOSSNET_ONNX_SPECTRAL=0`
  keeps them direct), its other 1-D convolutions written as 2-D ones, which onnxruntime runs
  with its blocked NCHWc kernels, and the pool's gather channel-last. The copy is saved with the layout already
  transformed for this CPU. This is the default (`$BOSSNET_ONNX_FORMULATION` unset or `conv2d`);
  `plain` keeps the graph as exported; `auto` builds both and keeps the 2-D one only if its
  outputs are within FORMULATION_RTOL of the plain one (relative to each output's scale) and it
  is at least 5 % faster (alternating rounds, one session mapped at a time, so peak memory stays
  the weights once). The setting is part of the key (with the CPU's instruction sets, since the
  blocked layout depends on them) and the choice is recorded in the manifest. Without the cache
  (`off`, or a model over the bound) session.py applies the same rewrite to a temporary file,
  so a run gives the same bits with and without the cache.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import time
from pathlib import Path

from ..hashing import file_sha256
from .content import external_data_files, model_content_sha256
from .spectral import spectral_setting

__all__ = ["cache_dir", "cache_limit_bytes", "cached_ort_model", "content_sha256", "discard_ort_copy",
           "mmap_session_options", "remember", "remembered", "formulation_setting",
           "ort_copy_formulation", "DEFAULT_MAX_MB", "DEFAULT_FORMULATION"]

#: 4: the 2-D form lists the large fully connected weights as graph inputs (used in place).
#: 5: the 2-D form's Elus between blocked convolutions run on the blocked tensors.
#: 6: the wide convolutions in the spectral form (spectral.py) before the 2-D form, and the
#: large linear layer as W @ x.T (formulation._weight_first).
CACHE_FORMAT = 6
#: Largest |conv2d - plain| over the probe outputs, relative to each output's largest magnitude
#: (at least 1), for the 2-D form to be kept (measured on the official network: 2e-6, the
#: float32 reassociation of another kernel; a wrong rewrite moves outputs by ~0.1-1).
FORMULATION_RTOL = 1e-5
#: The 2-D form must be at least this much faster (time ratio) to be kept.
FORMULATION_GAIN = 0.95
DEFAULT_MAX_MB = 2048
_OFF = ("", "0", "off", "no", "false")
_PRIVATE_DIR_MODE, _PRIVATE_FILE_MODE = 0o700, 0o600
_SHARED_DIR_MODE, _SHARED_FILE_MODE = 0o3775, 0o644
_STALE_TMP_S = 3600
MEMO_DIR = "content-memo"
#: A file changed this recently before hashing is hashed again next time, not memoised: a
#: second write within one ctime tick could otherwise keep the same (size, mtime, ctime).
RACY_NS = 3_000_000_000


def _shared_setting() -> Path | None:
    env = os.environ.get("BOSSNET_ONNX_SHARED_CACHE")
    if env is None or env.strip().lower() in _OFF:
        return None
    return Path(env)


def cache_dir() -> Path | None:
    """Where ORT-format copies live; None when caching is switched off."""
    shared = _shared_setting()
    if shared is not None:
        return shared
    env = os.environ.get("BOSSNET_ONNX_CACHE")
    if env is not None and env.strip().lower() in _OFF:
        return None
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bossnet-onnx"


def cache_limit_bytes() -> int:
    """The size bound of the cache folder (`$BOSSNET_ONNX_CACHE_MAX_MB`, default 2048 MB)."""
    env = os.environ.get("BOSSNET_ONNX_CACHE_MAX_MB", "").strip()
    try:
        mb = float(env) if env else DEFAULT_MAX_MB
    except ValueError:
        mb = DEFAULT_MAX_MB
    return max(0, int(mb * 1e6))


def _stat_tuple(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _safe_folder(folder: Path, shared: bool) -> bool:
    """Create the folder with the right mode; False if it cannot be trusted with copies."""
    mode = _SHARED_DIR_MODE if shared else _PRIVATE_DIR_MODE
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, mode)
    st = folder.stat()
    uid = os.getuid()
    if not shared:
        if st.st_uid != uid:
            return False
        if stat.S_IMODE(st.st_mode) != _PRIVATE_DIR_MODE:
            os.chmod(folder, _PRIVATE_DIR_MODE)  # tighten a folder made by an older version
        return True
    others_write = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    # A writable shared folder without the sticky bit lets any member swap another's entry.
    return not others_write or bool(st.st_mode & stat.S_ISVTX)


def _trusted_file(st: os.stat_result, shared: bool) -> bool:
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return False
    return shared or st.st_uid == os.getuid()


#: /proc/cpuinfo flag prefixes a CPUID that hides AVX-512 hides with it (benchmarks/avx2_only.c).
HIDDEN_WITH_AVX512 = ("avx512", "amx", "avx_vnni")


def cpu_tag() -> str:
    """CPU features that change the kernels' arithmetic (AVX-512, BF16, AMX, VNNI): the blocked
    layout of a formulation and the reduced-precision verdicts depend on them."""
    import platform

    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    if "avx512f" in flags and _process_lacks_avx512():  # hidden from CPUID, e.g. avx2_only.c
        flags = {f for f in flags if not f.startswith(HIDDEN_WITH_AVX512)}
    wanted = ("avx512_bf16", "amx_bf16", "amx_int8", "avx512_vnni", "avx_vnni", "avx512f")
    return platform.machine() + ":" + ",".join(f for f in wanted if f in flags)


def _process_lacks_avx512() -> bool:
    """True when this process's CPUID hides the AVX-512 that /proc/cpuinfo (the kernel's view)
    lists: onnxruntime then runs its AVX2 kernels and blocked layouts, whose copies must not be
    shared with the AVX-512 ones. numpy read CPUID at import as onnxruntime does; a hypervisor
    or a CPUID mask (benchmarks/avx2_only.c) can make the two views differ."""
    seen = cpu_features_seen()
    return seen is not None and seen.get("AVX512F") is False


def cpu_features_seen() -> dict[str, bool] | None:
    """The CPU features this process's CPUID shows, as numpy read them at import (its names:
    AVX2, AVX512F, ...); None where numpy does not say."""
    import importlib

    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):  # 2.x, 1.x
        try:
            return dict(importlib.import_module(module).__cpu_features__)
        except (ImportError, AttributeError):
            continue
    return None


#: The formulation used when `$BOSSNET_ONNX_FORMULATION` is unset.
DEFAULT_FORMULATION = "conv2d"


def elus_on_blocks_setting() -> bool:
    """`$BOSSNET_ONNX_ELU_ON_BLOCKS=0` builds the 2-D form's copy as onnxruntime optimises it,
    Elus between layout reorders (the benchmark's ort-reorders side; same bits either way)."""
    return os.environ.get("BOSSNET_ONNX_ELU_ON_BLOCKS", "").strip() != "0"


def formulation_setting() -> str:
    """`$BOSSNET_ONNX_FORMULATION`: conv2d (the default), plain (as exported) or auto (measure);
    anything else is the default."""
    value = os.environ.get("BOSSNET_ONNX_FORMULATION", "").strip().lower()
    return value if value in ("auto", "plain", "conv2d") else DEFAULT_FORMULATION


def _key(content_sha: str) -> str:
    import onnxruntime as ort

    ident = (f"{content_sha}|onnxruntime {ort.__version__}|cache {CACHE_FORMAT}|"
             f"formulation {formulation_setting()}|{cpu_tag()}"
             + ("" if elus_on_blocks_setting() else "|elu reorders")
             + ("" if spectral_setting() else "|direct convolutions"))
    return hashlib.sha256(ident.encode()).hexdigest()[:32]


def _proven(ort_path: Path, manifest_path: Path, content_sha: str, shared: bool) -> bool:
    """True if `ort_path` is provably the copy built from the model with `content_sha`."""
    import onnxruntime as ort

    try:
        m_st = manifest_path.stat()
        o_st = ort_path.stat()
        if not (_trusted_file(m_st, shared) and _trusted_file(o_st, shared)):
            return False
        if m_st.st_size > 1 << 16:
            return False
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if not (isinstance(manifest, dict) and manifest.get("cache_format") == CACHE_FORMAT
                and manifest.get("model_sha256") == content_sha
                and manifest.get("onnxruntime") == ort.__version__
                and isinstance(manifest.get("ort_sha256"), str)):
            return False
        if o_st.st_size == 0 or o_st.st_size != manifest.get("ort_size"):
            return False
        if _stat_tuple(o_st) != manifest.get("ort_stat"):
            # Copied, restored or rewritten since it was built: prove it by its bytes.
            if file_sha256(ort_path) != manifest["ort_sha256"]:
                return False
            if m_st.st_uid == os.getuid():
                manifest["ort_stat"] = _stat_tuple(ort_path.stat())
                _write_atomic(manifest_path, json.dumps(manifest).encode(), m_st.st_mode & 0o777)
        with open(ort_path, "rb") as fh:  # readable (mode 000 passes stat but not open)
            fh.read(1)
        return True
    except (OSError, ValueError, TypeError, KeyError):
        return False


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _save_ort(model: Path, target: str, level) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = level
    options.optimized_model_filepath = target
    options.add_session_config_entry("session.save_model_format", "ORT")
    options.log_severity_level = 3
    ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def _conv2d_copy(model: Path, folder: Path, threads: int = 1,
                 call_rows: int = 32) -> tuple[str, int, int] | None:
    """(an ORT-format copy of the model's CPU form (spectral and 2-D convolutions) with this
    CPU's blocked layout already applied, a temporary file in `folder`; how many Elus run on
    blocked tensors; how many convolutions are in the spectral form), or None when the rewrite
    does not apply."""
    import onnxruntime as ort

    from .cpu_form import cpu_form

    fd, target = tempfile.mkstemp(prefix=".conv2d.", suffix=".ort.tmp", dir=folder)
    os.close(fd)
    try:
        counts: dict = {}
        with cpu_form(model, folder, counts=counts) as rewritten:
            if rewritten is not None:
                moved = (_save_elu_on_blocks(rewritten, target, folder, threads, call_rows)
                         if elus_on_blocks_setting() else 0)
                if not moved:
                    _save_ort(rewritten, target, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
                return target, moved, counts.get("spectral", 0)
    except Exception:  # an engine that cannot build it: keep the plain form  # noqa: BLE001
        pass
    if os.path.exists(target):
        os.unlink(target)
    return None


def _save_elu_on_blocks(rewritten: Path, target: str, folder: Path, threads: int,
                        call_rows: int) -> int:
    """Save `rewritten` optimised for this CPU as an ORT-format `target` with its Elus moved
    onto the blocked tensors (formulation.elu_on_blocks), if that gives the same bits as the
    graph onnxruntime optimised: the number of Elus moved, or 0 (nothing usable written).

    Measured on the official network (Xeon, AVX-512, 2 threads, calls of 32 rows, best of 12
    alternating calls): 5.52 -> 5.20 and 5.62 -> 5.30 ms per row, outputs equal to the bit."""
    import onnxruntime as ort

    from .formulation import elu_on_blocks

    temps = []
    try:
        for suffix in (".optimized.onnx.tmp", ".elu.onnx.tmp"):
            fd, name = tempfile.mkstemp(prefix=".conv2d.", suffix=suffix, dir=folder)
            os.close(fd)
            temps.append(name)
        optimized, moved_path = temps
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = optimized
        options.log_severity_level = 3
        ort.InferenceSession(str(rewritten), options, providers=["CPUExecutionProvider"])
        moved = elu_on_blocks(optimized, moved_path)
        if not moved:
            return 0
        _save_ort(Path(moved_path), target, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        os.unlink(moved_path)
        check = ort.SessionOptions()
        check.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        check.intra_op_num_threads = threads
        check.log_severity_level = 3
        session = ort.InferenceSession(optimized, check, providers=["CPUExecutionProvider"])
        first = session.get_inputs()[0]
        rows = _sample_rows(first.shape, call_rows)
        want = session.run(None, {first.name: rows})
        del session
        _, got = _time_copy(target, rows, threads)
        same = len(want) == len(got) and all(
            a.shape == b.shape and a.tobytes() == b.tobytes() for a, b in zip(want, got))
        return moved if same else 0
    except Exception:  # an engine that cannot build or run it: keep the optimiser's graph  # noqa: BLE001
        return 0
    finally:
        for name in temps:
            if os.path.exists(name):
                os.unlink(name)


def _time_copy(path: str, rows, threads: int) -> tuple[float, list]:
    """(seconds of one call on `rows`, outputs), a session mapping `path` opened just for it
    and released before returning (one copy resident at a time)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.load_model_format", "ORT")  # a .tmp name
    mmap_session_options(options)
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: rows}
    session.run(None, feed)  # warm-up
    t0 = time.perf_counter()
    outputs = session.run(None, feed)
    return time.perf_counter() - t0, outputs


def _sample_rows(shape: list, call_rows: int):
    """Model inputs for comparing two copies of a model whose input has `shape`: spectrum-like
    log-flux rows, the same every build; the graph's fixed batch, else `call_rows` of them."""
    import numpy as np

    batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else call_rows
    n = int(shape[-1])
    wave = np.linspace(0.0, 1.0, n)
    rng = np.random.default_rng(20240173)
    rows = np.asarray([1.6 + 1.8 * ((0.618034 * i) % 1.0) + 0.3 * np.sin(2 * np.pi * (3 + i) * wave)
                       + 0.05 * rng.standard_normal(n) for i in range(batch)], np.float32)
    return rows.reshape([batch, *([1] * (len(shape) - 2)), n])


def _choose(plain: str, conv2d: str, threads: int, call_rows: int) -> tuple[str, dict]:
    """"plain" or "conv2d", with the figures: the 2-D form must give the same outputs (within
    FORMULATION_RTOL) and be at least 1/FORMULATION_GAIN times faster, in alternating rounds."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.load_model_format", "ORT")
    mmap_session_options(options)
    rows = _sample_rows(ort.InferenceSession(plain, options, providers=["CPUExecutionProvider"]
                                             ).get_inputs()[0].shape, call_rows)
    batch = rows.shape[0]
    times: dict[str, float] = {"plain": float("inf"), "conv2d": float("inf")}
    outputs: dict[str, list] = {}
    for _ in range(3):
        for name, path in (("plain", plain), ("conv2d", conv2d)):
            seconds, outputs[name] = _time_copy(path, rows, threads)
            times[name] = min(times[name], seconds)
    worst = max(float(np.max(np.abs(a - b) / np.maximum(1.0, np.max(np.abs(a), axis=0))))
                for a, b in zip(outputs["plain"], outputs["conv2d"]))
    exact = bool(np.isfinite(worst) and worst <= FORMULATION_RTOL)
    faster = times["conv2d"] <= FORMULATION_GAIN * times["plain"]
    figures = {"plain_s": times["plain"], "conv2d_s": times["conv2d"], "max_rel_diff": worst,
               "rows": batch}
    return ("conv2d" if exact and faster else "plain"), figures


def _build(model: Path, ort_path: Path, manifest_path: Path, content_sha: str,
           file_mode: int, threads: int = 1, call_rows: int = 32) -> None:
    import onnxruntime as ort

    fd, tmp = tempfile.mkstemp(prefix=f".{ort_path.name}.", suffix=".tmp", dir=ort_path.parent)
    os.close(fd)
    conv2d = None
    setting = formulation_setting()
    formulation, figures = "plain", dict[str, float]()
    elus_on_blocks = spectral_convs = 0
    try:
        _save_ort(model, tmp, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
        if setting != "plain":
            made = _conv2d_copy(model, ort_path.parent, threads, call_rows)
            if made is not None:
                conv2d, elus_on_blocks, spectral_convs = made
        if conv2d is not None:
            if setting == "conv2d":
                formulation = "conv2d"
            else:
                try:
                    formulation, figures = _choose(tmp, conv2d, threads, call_rows)
                except Exception:  # measuring failed: keep the plain form  # noqa: BLE001
                    formulation = "plain"
            if formulation == "conv2d":
                os.replace(conv2d, tmp)
        os.chmod(tmp, file_mode)
        ort_sha = file_sha256(tmp)
        os.replace(tmp, ort_path)
    finally:
        for leftover in (tmp, conv2d):
            if leftover and os.path.exists(leftover):
                os.unlink(leftover)
    st = ort_path.stat()
    manifest = {
        "cache_format": CACHE_FORMAT, "model_sha256": content_sha, "model_path": str(model),
        "onnxruntime": ort.__version__, "ort_sha256": ort_sha, "ort_size": st.st_size,
        "ort_stat": _stat_tuple(st), "built_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "formulation": formulation, "formulation_setting": setting,
        "formulation_figures": figures,
        "elus_on_blocks": elus_on_blocks if formulation == "conv2d" else 0,
        "spectral_convs": spectral_convs if formulation == "conv2d" else 0,
    }
    _write_atomic(manifest_path, json.dumps(manifest).encode(), file_mode)


def ort_copy_formulation(ort_path: str | os.PathLike) -> str:
    """The formulation recorded in an entry's manifest: "plain", "conv2d", or "spectral" (the
    2-D form with its wide convolutions in the spectral form)."""
    try:
        manifest = json.loads(Path(ort_path).with_suffix(".json").read_text(encoding="utf-8"))
        value = manifest.get("formulation", "plain")
        if value == "conv2d" and manifest.get("spectral_convs"):
            return "spectral"
        return value if value in ("plain", "conv2d") else "plain"
    except (OSError, ValueError, AttributeError):
        return "plain"


def _entries(folder: Path) -> list[tuple[float, int, Path]]:
    """(last use, bytes, manifest) of the entries this user may delete, oldest first."""
    uid = os.getuid()
    found = []
    for manifest in folder.glob("*.json"):
        try:
            st = manifest.stat()
            if st.st_uid != uid:
                continue
            ort_file = manifest.with_suffix(".ort")
            size = st.st_size + (ort_file.stat().st_size if ort_file.exists() else 0)
        except OSError:
            continue
        found.append((st.st_mtime, size, manifest))
    return sorted(found)


def _folder_bytes(folder: Path) -> int:
    total = 0
    for path in folder.iterdir():
        try:
            if path.is_file():
                total += path.stat().st_size
        except OSError:
            continue
    return total


def _file_states(model: Path) -> list[list] | None:
    """(real path, dev, inode, size, mtime_ns, ctime_ns) of the model and its external files."""
    externals = external_data_files(model)
    if externals is None:
        return None
    states = []
    for path in [model, *externals]:
        st = os.stat(path)
        states.append([os.path.realpath(path), *_stat_tuple(st)])
    return states


def _memo_path(folder: Path, model: Path) -> Path:
    name = hashlib.sha256(os.path.realpath(model).encode()).hexdigest()[:32]
    return folder / MEMO_DIR / f"{os.getuid()}-{name}.json"


def content_sha256(model: Path, folder: Path, shared: bool = False) -> str | None:
    """The model's content hash, from a memo when no file of the model changed since hashing.

    Hashing the 290 MB network costs ~0.25-0.5 s, every start. The memo (one per model path and
    user, only trusted if owned by the user and not writable by others) records the hash with
    the (dev, inode, size, mtime_ns, ctime_ns) of the `.onnx` and every external-data file. An
    in-place rewrite changes ctime even when mtime is put back (`cp -p`, `os.utime`); a
    replacement (`rsync -a`, a re-export) changes the inode and ctime; users cannot set ctime.
    Any difference re-hashes. A file whose ctime was within RACY_NS of the hashing is not
    memoised (a second write in the same clock tick could leave every field equal), nor one that
    changed while it was being hashed. On a file system that does not keep ctime (some FUSE and
    FAT mounts) set BOSSNET_ONNX_CACHE=off or accept one hash per start by removing the memo.
    """
    memo = _memo_path(folder, model)
    try:
        states = _file_states(model)
    except OSError:
        return None
    if states is None:
        return None
    try:
        st = memo.stat()
        if st.st_uid == os.getuid() and not st.st_mode & 0o022 and st.st_size < 1 << 16:
            doc = json.loads(memo.read_text(encoding="utf-8"))
            if doc.get("files") == states and isinstance(doc.get("sha256"), str):
                return doc["sha256"]
    except (OSError, ValueError, AttributeError):
        pass
    started = time.time_ns()
    sha = model_content_sha256(model)
    if sha is None:
        return None
    try:
        after = _file_states(model)
        settled = all(s[5] < started - RACY_NS for s in states)  # s[5]: ctime_ns
        if after == states and settled:
            if not memo.parent.is_dir():  # shared: every member keeps own memos there
                memo.parent.mkdir()
                os.chmod(memo.parent, _SHARED_DIR_MODE if shared else _PRIVATE_DIR_MODE)
            _write_atomic(memo, json.dumps({"files": states, "sha256": sha}).encode(), 0o600)
    except OSError:
        pass  # no memo: the next start hashes again
    return sha


def _evict(folder: Path, keep: Path, limit: int) -> None:
    """Delete this user's least-recently-used entries until the folder fits in `limit`."""
    now = time.time()
    uid = os.getuid()
    for path in folder.iterdir():  # leftovers of killed builds, and .ort without a manifest
        try:
            st = path.stat()
            orphan = path.suffix == ".ort" and not path.with_suffix(".json").exists()
            stale = path.name.startswith(".") and path.suffix == ".tmp"
            if st.st_uid == uid and (orphan or stale) and now - st.st_mtime > _STALE_TMP_S:
                path.unlink()
        except OSError:
            continue
    total = _folder_bytes(folder)
    for _, size, manifest in _entries(folder):
        if total <= limit:
            break
        if manifest == keep:
            continue
        discard_ort_copy(manifest.with_suffix(".ort"))
        total -= size


def cached_ort_model(model: str | os.PathLike, threads: int = 1,
                     call_rows: int = 32) -> Path | None:
    """Path of the proven ORT-format copy of `model`, building it if needed; None to load the
    `.onnx` directly (caching off, folder untrusted or unwritable, model unprovable).
    `threads` and `call_rows` (the session's) are what a formulation is timed with."""
    folder = cache_dir()
    if folder is None:
        return None
    shared = _shared_setting() is not None
    model = Path(model)
    try:
        limit = cache_limit_bytes()
        if model.stat().st_size > limit or not _safe_folder(folder, shared):
            return None
        before = _file_states(model)  # the files as they were before hashing
        content_sha = content_sha256(model, folder, shared)
        if content_sha is None or before is None:
            return None
        key = _key(content_sha)
        ort_path, manifest_path = folder / f"{key}.ort", folder / f"{key}.json"
        if _proven(ort_path, manifest_path, content_sha, shared):
            try:
                os.utime(manifest_path)  # last use, for eviction (only works on own files)
            except OSError:
                pass
            return ort_path
        _build(model, ort_path, manifest_path, content_sha,
               _SHARED_FILE_MODE if shared else _PRIVATE_FILE_MODE, threads, call_rows)
        if _file_states(model) != before:
            # A file was rewritten or swapped while it was hashed or converted: the copy may
            # hold other bytes than the key says. Never keep it; load the .onnx directly.
            discard_ort_copy(ort_path)
            return None
        if not _proven(ort_path, manifest_path, content_sha, shared):
            return None
        _evict(folder, manifest_path, limit)
        return ort_path if ort_path.exists() else None
    except Exception:  # a read-only home, a full disk, another user's entry: load the .onnx  # noqa: BLE001
        return None


def discard_ort_copy(ort_path: str | os.PathLike) -> None:
    """Remove an entry (its `.ort` and manifest) if this user may; never raises."""
    ort_path = Path(ort_path)
    for path in (ort_path.with_suffix(".json"), ort_path):
        try:
            path.unlink()
        except OSError:
            pass


def mmap_session_options(options) -> None:
    """Session entries that map the ORT file and use its weights in place.

    Prepacking stays on for the convolutions: without it MLAS's convolution results depend on
    the thread count (a small BOSS Net: 32 of 32 rows differ between 1 and 2 threads) and
    differ from a plain session of the .onnx (full network: 32 of 32 rows), so the same
    spectrum would get other labels on a Dask worker, a resumed run or another machine's
    thread count. The large fully connected weights (the official network's 268 MB first
    layer, most of its bytes) are not prepacked in the default 2-D form (formulation.py lists
    them as overridable graph inputs), so they are held once, in the mapped file (full BOSS
    network, 2 threads, session alone: peak RSS 494 MB against 750 MB with it prepacked). Rows
    are equal to the last bit for 1, 2 and 4 threads (3 threads split some operators
    differently: official network, 8 of 32 rows differ by up to 8.6e-7, normalised).
    """
    options.add_session_config_entry("session.use_memory_mapped_ort_model", "1")
    options.add_session_config_entry("session.use_ort_model_bytes_directly", "1")
    options.add_session_config_entry("session.use_ort_model_bytes_for_initializers", "1")


#: Sub-folder of the cache for remembered verdicts (e.g. the load probe's), one file per key.
VERDICTS_DIR = "verdicts"


def _verdict_path(kind: str, key: dict[str, str]) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    digest = hashlib.sha256(json.dumps([kind, key], sort_keys=True).encode()).hexdigest()[:32]
    return folder / VERDICTS_DIR / f"{kind}-{os.getuid()}-{digest}.json"


def remembered(kind: str, key: dict[str, str]) -> bool:
    """True if a passed `kind` verdict for exactly `key` was stored by this user.

    `key` must hold the model's content hash (`content_sha256`) and whatever else the verdict
    depends on. Only a file owned by this user and writable by nobody else counts, so a verdict
    planted in a shared cache cannot switch a check off; anything unreadable is "not
    remembered" (the check runs again).
    """
    path = _verdict_path(kind, key)
    if path is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if st.st_uid != os.getuid() or st.st_mode & 0o022 or st.st_size > 1 << 16:
                return False
            doc = json.loads(fh.read().decode("utf-8"))
        return isinstance(doc, dict) and doc.get("kind") == kind and doc.get("key") == key \
            and doc.get("passed") is True
    except (OSError, ValueError):
        return False


def remember(kind: str, key: dict[str, str]) -> None:
    """Store a passed `kind` verdict for `key` (atomically, 0600); never raises."""
    path = _verdict_path(kind, key)
    if path is None:
        return
    try:
        folder = path.parent
        if not folder.is_dir():
            shared = _shared_setting() is not None
            if not _safe_folder(folder.parent, shared):
                return
            folder.mkdir(exist_ok=True)
            os.chmod(folder, _SHARED_DIR_MODE if shared else _PRIVATE_DIR_MODE)
        if folder.is_symlink():
            return
        doc = {"kind": kind, "key": key, "passed": True,
               "stored_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        _write_atomic(path, json.dumps(doc, sort_keys=True).encode(), _PRIVATE_FILE_MODE)
    except OSError:
        pass  # not remembered: the check runs again next start
