"""The torch-free converter (bossnet_onnx.convert): same files as the torch export, hostile
checkpoints refused in one line with nothing installed.

The parity tests build random He-initialised checkpoints at the published sizes with torch
(the full test environment has it), convert them both ways and compare the two models on real
spectra from ../shared/data (synthetic RVS-like spectra for Gaia RVS Net: no RVS file there):
the largest |difference| of the normalised outputs, i.e. in units of each parameter's STD,
must stay below 1e-5.
"""
from __future__ import annotations

import os
import pickle
import re
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from bossnet_onnx.convert import convert_checkpoint
from bossnet_onnx.convert.architecture import reference_grid, state_shapes
from bossnet_onnx.convert.config import BossNetConfig
from bossnet_onnx.convert.torch_zip import read_state
from bossnet_onnx.errors import CheckpointError, ExportError, ParityError
from bossnet_onnx.science.members import MEMBERS, OFFICIAL_CONFIGS

SMALL = dict(model_dim=2, dim_mults=[1, 2, 4], kernel_size=30, adapt_pool_output_dim=64,
             num_linear=2, linear_dim=64)


def _torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory) -> Path:
    """The official layout of a small random BOSS Net (10 chunks)."""
    _torch()
    from bossnet_export.random_weights import (
        SMALL_CONFIG,
        build_random_model,
        save_official_layout,
    )

    return save_official_layout(build_random_model(SMALL_CONFIG, seed=5),
                                tmp_path_factory.mktemp("ckpt") / "model_small")


def _nothing_left(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.suffix in (".onnx", ".tmp")
                or ".onnx" in p.name]


def _refused(checkpoint: Path, out_dir: Path, match: str, **kw) -> str:
    out_dir.mkdir(exist_ok=True)
    with pytest.raises((CheckpointError, ExportError)) as info:
        convert_checkpoint(checkpoint, out_dir / "m.onnx", **kw)
    text = str(info.value)
    assert "\n" not in text, text
    assert re.search(match, text), text
    _nothing_left(out_dir)
    return text


# --------------------------------------------------------------------------- facts
@pytest.mark.parametrize("n", [3900, 8575, 2401, 512, 110, 7])
def test_reference_grid_is_torch_linspace_bit_for_bit(n):
    torch = _torch()
    expected = torch.linspace(3800.0, 8900.0, n, dtype=torch.float32).numpy()
    np.testing.assert_array_equal(reference_grid(n), expected)


@pytest.mark.parametrize("member", list(OFFICIAL_CONFIGS))
def test_state_shapes_are_the_torch_networks(member):
    _torch()
    from bossnet_export.network import BossNet

    config = BossNetConfig.from_mapping(OFFICIAL_CONFIGS[member])
    with _torch().device("meta"):
        net = BossNet(config)
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == state_shapes(config)


# --------------------------------------------------------------------------- reader
def test_dtypes_strides_offsets_and_byte_order(tmp_path):
    torch = _torch()
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    state = {"t": base.t(), "slice": base[1:3, 2:5], "half": torch.randn(3).half(),
             "bf16": torch.tensor([1.5, -2.25], dtype=torch.bfloat16),
             "long": torch.arange(5)[2:], "bool": torch.tensor([True, False])}
    path = tmp_path / "x.pt"
    torch.save(state, path)
    from bossnet_onnx.convert.torch_zip import load_tensors

    got = load_tensors(path)
    for key, tensor in state.items():
        np.testing.assert_array_equal(got[key], tensor.float().numpy() if key == "bf16"
                                      else tensor.numpy())
    # The same float32 tensors written big-endian (as a big-endian machine's torch.save does).
    little = {"a": torch.randn(3, 4), "b": torch.randn(5)}
    torch.save(little, path)
    big = tmp_path / "big.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(big, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/byteorder"):
                data = b"big"
            elif "/data/" in info.filename:
                data = np.frombuffer(data, "<f4").astype(">f4").tobytes()
            dst.writestr(info.filename, data)
    got = load_tensors(big)
    for key, tensor in little.items():
        np.testing.assert_array_equal(got[key], tensor.numpy())


def test_three_layouts_read_like_torch(small_dir, tmp_path):
    torch = _torch()
    from bossnet_export import load_checkpoint

    loaded = load_checkpoint(small_dir)
    config = loaded.config
    state = dict(loaded.model.state_dict())
    torch.save(state, tmp_path / "plain.pt")
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3},
               tmp_path / "train.pth")
    for path, layout in ((small_dir, "official-chunks"), (tmp_path / "plain.pt", "state-dict"),
                         (tmp_path / "train.pth", "training-dict")):
        got = read_state(path, config)
        assert got.layout == layout
        for key, value in got.state.items():
            np.testing.assert_array_equal(value, state[key].numpy())
    assert read_state(small_dir, config).weights_sha256 == loaded.weights_sha256


# --------------------------------------------------------------------------- hostile files
class _Shell:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


def _zip_with_pickle(path: Path, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/byteorder", b"little")
    return path


def test_pickle_calling_os_system_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = _zip_with_pickle(tmp_path / "evil.pt", pickle.dumps({"w": _Shell()}, protocol=2))
    text = _refused(bad, tmp_path / "out", r"the global (posix|nt|os)\.system, which a "
                                           r"weights-only reader refuses")
    assert str(bad) in text
    assert not (tmp_path / "pwned-by-pickle").exists()


def test_unknown_global_is_refused_by_name(tmp_path):
    payload = pickle.dumps({"w": np.zeros(3)}, protocol=2)  # numpy's reconstructor: not allowed
    bad = _zip_with_pickle(tmp_path / "np.pt", payload)
    _refused(bad, tmp_path / "out", r"the global numpy\.\S+, which a weights-only reader refuses")


def test_zip_bomb_is_refused_without_unpacking(tmp_path):
    bad = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bad, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({}, protocol=2))
        with archive.open("archive/data/0", "w", force_zip64=True) as member:
            block = bytes(1 << 20)
            for _ in range(64):
                member.write(block)
    assert bad.stat().st_size < 1 << 20
    _refused(bad, tmp_path / "out", r"would expand \d+ bytes to 67108864 \(a zip bomb\)")


def test_overlapping_members_are_refused(tmp_path):
    good = tmp_path / "two.pt"
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({}, protocol=2))
        archive.writestr("archive/data/0", bytes(4000))
    raw = bytearray(good.read_bytes())
    # Point the second central-directory entry at the first member's local header.
    first = raw.find(b"PK\x01\x02")
    second = raw.find(b"PK\x01\x02", first + 4)
    struct.pack_into("<I", raw, second + 42, 0)
    bad = tmp_path / "overlap.pt"
    bad.write_bytes(bytes(raw))
    _refused(bad, tmp_path / "out", r"overlap \(a zip bomb's trick\)")


def test_truncated_missing_and_flipped_chunks(small_dir, tmp_path):
    cut = tmp_path / "model_cut"
    shutil.copytree(small_dir, cut)
    last = cut / "model_chunk_9"
    last.write_bytes(last.read_bytes()[:-200])
    _refused(cut, tmp_path / "o1", r"truncated or a chunk is missing")

    gone = tmp_path / "model_gone"
    shutil.copytree(small_dir, gone)
    (gone / "model_chunk_4").unlink()
    _refused(gone, tmp_path / "o2", r"model_chunk_4 missing")

    flipped = tmp_path / "model_flip"
    shutil.copytree(small_dir, flipped)
    chunk = flipped / "model_chunk_5"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    _refused(flipped, tmp_path / "o3", r"fails its CRC check")


def test_shapes_disagreeing_with_model_args_are_refused(small_dir, tmp_path):
    other = tmp_path / "model_shapes"
    shutil.copytree(small_dir, other)
    doc = yaml.safe_load((other / "model_args.yaml").read_text())
    doc["linear_dim"] = 32
    (other / "model_args.yaml").write_text(yaml.safe_dump(doc))
    _refused(other, tmp_path / "out", r"tensor shapes do not match the config: "
                                      r"linear_sequential\.0\.linear_layer\.weight")


def test_legacy_format_named(tmp_path):
    torch = _torch()
    old = tmp_path / "old.pt"
    torch.save({"w": torch.zeros(2)}, old, _use_new_zipfile_serialization=False)
    _refused(old, tmp_path / "out", r"legacy \(pre-1\.6\) torch\.save format")


def test_a_graph_that_disagrees_with_numpy_is_fatal(small_dir, tmp_path, monkeypatch):
    from bossnet_onnx.convert import architecture, graph

    # A wrong batch-norm epsilon in the graph only: the numpy pass keeps the right one.
    monkeypatch.setattr(graph, "BN_EPSILON", 0.5)
    assert architecture.BN_EPSILON == 1e-5
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ParityError, match=r"differs from the numpy forward pass by \S+ > atol "
                                          r"1e-04 \(largest: case \S+, row \d+, output \d+"):
        convert_checkpoint(small_dir, out / "m.onnx")
    _nothing_left(out)


# --------------------------------------------------------------------------- parity
def _real_rows(member: str, meta, shared: Path) -> np.ndarray:
    """Model rows of real spectra (the runtime's own readers and preprocessing)."""
    from bossnet_onnx.readers import read_spectra
    from bossnet_onnx.science.member_inputs import member_rows
    from bossnet_onnx.spectrum import Spectrum

    patterns = {"boss": "sdss-spec-*.fits", "apogee": "apogee-apstar-*.fits",
                "gaia-xp": "gaia-xp-continuous-*.csv"}
    if member == "gaia-rvs":
        rng = np.random.default_rng(4)
        wave = np.linspace(8460.0, 8700.0, 2401)
        rows = np.ones((6, 2401))
        for r in range(6):
            for centre in (8498.0, 8542.0, 8662.0, *rng.uniform(8470, 8690, 30)):
                rows[r] -= rng.uniform(0.05, 0.6) * np.exp(-0.5 * ((wave - centre) / 1.2) ** 2)
        return (rows + rng.normal(0, 0.02, rows.shape)).astype(np.float32)
    out = [member_rows(spec, meta, draws=0, seed=0)[0]
           for path in sorted(shared.glob(patterns[member]))[:8]
           for spec in read_spectra(path, kind=MEMBERS[member].spectrum_kind)
           if isinstance(spec, Spectrum)]
    return np.concatenate(out).astype(np.float32)


@pytest.mark.slow
@pytest.mark.export
@pytest.mark.parametrize("member", ["boss", "apogee", "gaia-rvs", "gaia-xp"])
def test_both_converters_agree_at_published_sizes(member, tmp_path, shared_data):
    _torch()
    pytest.importorskip("onnxscript")
    from bossnet_export import export_model
    from bossnet_export.random_weights import build_random_model, save_official_layout
    from bossnet_onnx.model.session import open_model

    config = BossNetConfig.from_mapping(OFFICIAL_CONFIGS[member])
    checkpoint = tmp_path / f"model_{member.replace('-', '_')}"
    model = build_random_model(config, seed=41)
    save_official_layout(model, checkpoint)
    del model
    by_torch = export_model(checkpoint, tmp_path / "torch.onnx", member=member)
    by_numpy = convert_checkpoint(checkpoint, tmp_path / "numpy.onnx", member=member)
    assert by_numpy.converter == "numpy" and by_torch.converter == "torch"
    assert by_numpy.n_parameters == by_torch.n_parameters
    a = open_model(tmp_path / "torch.onnx", provider="cpu", threads=2)
    b = open_model(tmp_path / "numpy.onnx", provider="cpu", threads=2)
    props_a, props_b = a.metadata.to_props(), b.metadata.to_props()
    assert {k for k in props_a if props_a[k] != props_b[k]} == {"bossnet.exporter"}
    assert b.metadata.exporter["converter"] == "numpy"
    assert a.metadata.exporter["converter"] == "torch"
    real = _real_rows(member, a.metadata, shared_data)
    out_a, out_b = a.run_normalized(real), b.run_normalized(real)
    # Normalised outputs are in units of each parameter's STD (the stats), so |difference|
    # here is the difference over STD; it is also shown against the outputs' spread over the
    # spectra. What remains is torch's float32 sin: its positional channel differs from the
    # correctly rounded one by 1 ulp in ~5% of the pixels (the folded weights, pool and
    # everything else are bit-identical).
    normalised = float(np.max(np.abs(out_a - out_b)))
    spread = out_a.std(axis=0)
    assert np.all(spread > 0)
    relative = float(np.max(np.abs(out_a - out_b) / spread))
    print(f"{member}: {real.shape[0]} rows, max |torch - numpy| / STD = {normalised:.2e} "
          f"(/ spread over the spectra: {relative:.2e})")
    assert normalised < 1e-5
    assert relative < 1e-4
