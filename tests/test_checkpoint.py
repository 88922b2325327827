"""Checkpoint loading: the official chunked layout, plain state dicts, and every clear error."""
from __future__ import annotations

import hashlib
import io
import pickle

import pytest

torch = pytest.importorskip("torch")

from bossnet_export import load_checkpoint, load_config, load_stats  # noqa: E402
from bossnet_export.config import OFFICIAL_BOSS, BossNetConfig  # noqa: E402
from bossnet_export.random_weights import (  # noqa: E402
    SMALL_CONFIG,
    build_random_model,
    save_official_layout,
    save_state_dict,
)
from bossnet_onnx.errors import CheckpointError  # noqa: E402

pytestmark = pytest.mark.export


@pytest.fixture(scope="module")
def model():
    return build_random_model(SMALL_CONFIG, seed=11)


@pytest.fixture
def official(model, tmp_path):
    return save_official_layout(model, tmp_path / "model_boss")


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_official_layout_is_a_byte_split(model, official):
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    payload = buffer.getvalue()
    sizes = [(official / f"model_chunk_{i}").stat().st_size for i in range(10)]
    assert sizes[:9] == [len(payload) // 10] * 9
    assert sizes[9] == len(payload) - 9 * (len(payload) // 10)
    joined = b"".join((official / f"model_chunk_{i}").read_bytes() for i in range(10))
    assert joined == payload
    assert load_config(official / "model_args.yaml") == SMALL_CONFIG


def test_official_layout_loads_strictly(model, official):
    loaded = load_checkpoint(official)
    assert loaded.layout == "official-chunks"
    assert loaded.config == SMALL_CONFIG
    assert _same_weights(loaded.model, model)
    assert not loaded.model.training
    joined = b"".join((official / f"model_chunk_{i}").read_bytes() for i in range(10))
    assert loaded.weights_sha256 == hashlib.sha256(joined).hexdigest()


@pytest.mark.parametrize("n_chunks", [1, 3, 12])
def test_any_number_of_chunks(model, tmp_path, n_chunks):
    save_official_layout(model, tmp_path, n_chunks=n_chunks)
    assert _same_weights(load_checkpoint(tmp_path).model, model)


def test_pt_state_dict_with_config(model, tmp_path, official):
    pt = save_state_dict(model, tmp_path / "weights.pt")
    loaded = load_checkpoint(pt, official / "model_args.yaml")
    assert loaded.layout == "state-dict"
    assert _same_weights(loaded.model, model)
    assert loaded.weights_sha256 == hashlib.sha256(pt.read_bytes()).hexdigest()


def test_pt_without_config_means_official_boss(model, tmp_path):
    pt = save_state_dict(model, tmp_path / "weights.pth")
    # The small network's weights do not fit the official BOSS shapes: a key error, not a crash.
    with pytest.raises(CheckpointError, match=(
            r"weights\.pth: .*missing keys \['linear_sequential\.2\.linear_layer\.bias', .*"
            r"\.\.\. \(34 in all\)\]; unexpected keys \['linear_sequential\.2\.bias'")):
        load_checkpoint(pt)
    big = BossNetConfig(model_dim=2, dim_mults=(1, 2, 4), kernel_size=30,
                        adapt_pool_output_dim=64, num_linear=2, linear_dim=32)
    with pytest.raises(CheckpointError, match=r"tensor shapes do not match.*linear_sequential"):
        load_checkpoint(pt, big)
    assert load_checkpoint(pt, SMALL_CONFIG).config == SMALL_CONFIG
    assert OFFICIAL_BOSS.channels == (4, 8, 16, 32, 64)


def test_training_dict_and_module_prefix(model, tmp_path):
    path = tmp_path / "train.pt"
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 7, "lr": 1e-4}, path)
    loaded = load_checkpoint(path, SMALL_CONFIG)
    assert loaded.layout == "training-dict"
    assert _same_weights(loaded.model, model)


def test_inv_freq_may_be_absent(model, tmp_path):
    state = model.state_dict()
    del state["pos_enc.inv_freq"]
    torch.save(state, tmp_path / "w.pt")
    loaded = load_checkpoint(tmp_path / "w.pt", SMALL_CONFIG)
    assert loaded.model.state_dict()["pos_enc.inv_freq"].tolist() == [1.0]


def test_missing_and_unexpected_keys_are_listed(model, tmp_path):
    state = model.state_dict()
    del state["linear_sequential.2.bias"]
    del state["res_blocks.0.bn1.running_var"]
    state["head.extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match=(
            r"w\.pt: state dict does not match the BOSS Net config: missing keys "
            r"\['linear_sequential\.2\.bias', 'res_blocks\.0\.bn1\.running_var'\]; "
            r"unexpected keys \['head\.extra\.weight'\]")):
        load_checkpoint(tmp_path / "w.pt", SMALL_CONFIG)


def test_missing_chunk_is_named(official):
    (official / "model_chunk_4").unlink()
    with pytest.raises(CheckpointError, match=r"model_boss: chunk\(s\) model_chunk_4 missing "
                                              r"\(found 9 of model_chunk_0\.\.9\)"):
        load_checkpoint(official)


def test_missing_last_chunk_is_truncation(official):
    (official / "model_chunk_9").unlink()
    with pytest.raises(CheckpointError, match=r"model_boss .*unreadable.*truncated"):
        load_checkpoint(official)


def test_stray_chunk_after_a_gap(official):
    (official / "model_chunk_12").write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"model_chunk_10, model_chunk_11 missing"):
        load_checkpoint(official)


def test_no_chunks_and_no_model_args(tmp_path, official):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"empty: no model_chunk_<i> files"):
        load_checkpoint(tmp_path / "empty")
    (official / "model_args.yaml").unlink()
    with pytest.raises(CheckpointError, match=r"model_boss: model_args.yaml missing"):
        load_checkpoint(official)
    assert load_checkpoint(official, SMALL_CONFIG).config == SMALL_CONFIG
    with pytest.raises(CheckpointError, match=r"nowhere: checkpoint not found"):
        load_checkpoint(tmp_path / "nowhere")


def test_corrupted_chunk_is_named(official):
    chunk = official / "model_chunk_5"
    data = bytearray(chunk.read_bytes())
    data[100:4100] = bytes(range(256)) * 15 + bytes(160)
    chunk.write_bytes(bytes(data))
    # torch alone would load these flipped tensor bytes silently; the zip CRCs catch them.
    with pytest.raises(CheckpointError, match=r"\(in model_chunk_5\) fails its CRC check"):
        load_checkpoint(official)


def test_truncated_pt_file(model, tmp_path):
    pt = save_state_dict(model, tmp_path / "w.pt")
    pt.write_bytes(pt.read_bytes()[: pt.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"w\.pt: the torch zip archive is unreadable"):
        load_checkpoint(pt, SMALL_CONFIG)


@pytest.mark.parametrize("content", [b"hello, not a checkpoint\n", b"",
                                     pickle.dumps({"a": 1}, protocol=2)])
def test_non_checkpoint_file(tmp_path, content):
    path = tmp_path / "notes.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"notes\.pt: "):
        load_checkpoint(path)


def test_weights_only_refuses_objects(tmp_path):
    path = tmp_path / "obj.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "optimizer": object.__new__(BossNetConfig)},
               path)
    with pytest.raises(CheckpointError, match=r"obj\.pt: holds Python objects that a "
                                              r"weights-only load refuses"):
        load_checkpoint(path)


def test_non_tensor_state(tmp_path):
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match=r"list\.pt: holds list, expected a state dict"):
        load_checkpoint(tmp_path / "list.pt")
    torch.save({"a": 1}, tmp_path / "ints.pt")
    with pytest.raises(CheckpointError, match=r"ints\.pt: entries \['a'\] are not named tensors"):
        load_checkpoint(tmp_path / "ints.pt")


def test_config_errors(tmp_path):
    bad = tmp_path / "model_args.yaml"
    bad.write_text("model_dim: 4\nkernel_sise: 30\n")
    with pytest.raises(CheckpointError, match=r"unknown hyper-parameter\(s\) \['kernel_sise'\]"):
        load_config(bad)
    bad.write_text("pos_enc: 1\n")
    with pytest.raises(CheckpointError, match=r"'pos_enc' is 1; expected true or false"):
        load_config(bad)
    bad.write_text("dim_mults: [1, 0]\n")
    with pytest.raises(CheckpointError, match=r"'dim_mults' .*list of positive integers"):
        load_config(bad)
    bad.write_text("in_channels: 2\n")
    with pytest.raises(CheckpointError, match=r"in_channels is 2"):
        load_config(bad)
    bad.write_text("a: [unclosed\n")
    with pytest.raises(CheckpointError, match=r"model_args\.yaml: cannot read model config"):
        load_config(bad)
    assert load_config(None) == OFFICIAL_BOSS


def test_stats_override_and_errors(tmp_path):
    assert load_stats(None)["rv"] == {"MEAN": -7.4, "STD": 60.9,
                                      "PNMIN": pytest.approx(-9.116415791127874),
                                      "PNMAX": pytest.approx(9.074319773706897)}
    path = tmp_path / "stats.yaml"
    path.write_text("logg: {MEAN: 4.0, STD: 1.0}\nlogTeff: {MEAN: 3.7, STD: 0.2}\n"
                    "FeH: {MEAN: 0.0, STD: 0.4}\nrv: {MEAN: 0.0, STD: 50.0}\n")
    assert load_stats(path)["logTeff"] == {"MEAN": 3.7, "STD": 0.2}
    path.write_text("logg: {MEAN: 4.0, STD: 1.0}\n")
    with pytest.raises(CheckpointError, match=r"stats\.yaml: no MEAN/STD for 'logTeff'"):
        load_stats(path)
    path.write_text("logg: {MEAN: 4.0, STD: 0}\nlogTeff: {MEAN: 3.7, STD: 0.2}\n"
                    "FeH: {MEAN: 0.0, STD: 0.4}\nrv: {MEAN: 0.0, STD: 50.0}\n")
    with pytest.raises(CheckpointError, match=r"'logg\.STD' is 0\.0, expected > 0"):
        load_stats(path)


def test_weights_hash_recipes_are_public_and_documented(tmp_path):
    """The demo model's recorded hash recipe (tensors_sha256) is reproducible by a public helper;
    the chunk recipe equals `cat model_chunk_* | sha256sum`."""
    import hashlib

    from bossnet_export import checkpoint_sha256, state_dict_sha256, tensors_sha256

    model = build_random_model(SMALL_CONFIG, seed=3)
    state = model.state_dict()
    manual = hashlib.sha256()
    for key in sorted(state):
        manual.update(key.encode())
        manual.update(state[key].numpy().tobytes())
    assert tensors_sha256(state) == manual.hexdigest()
    folder = save_official_layout(model, tmp_path / "m")
    joined = b"".join((folder / f"model_chunk_{i}").read_bytes() for i in range(10))
    assert checkpoint_sha256(joined) == hashlib.sha256(joined).hexdigest()
    assert load_checkpoint(folder).weights_sha256 == checkpoint_sha256(joined)
    assert state_dict_sha256(model) == checkpoint_sha256(joined)


BOMB = "\n".join(
    ["dim_mults:", "  - &a [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    + [f"  - &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")]
) + "\n"


def test_yaml_anchor_bomb_is_refused_in_one_short_line(tmp_path):
    """~430 bytes that expand to 9^9 values: refused before construction, quoted briefly."""
    import time

    assert len(BOMB) < 500
    config = tmp_path / "model_args.yaml"
    config.write_text(BOMB)
    stats = tmp_path / "stats.yaml"
    stats.write_text(BOMB.replace("dim_mults:", "logg:"))
    started = time.monotonic()
    for load, path in ((load_config, config), (load_stats, stats)):
        with pytest.raises(CheckpointError, match=r"expands to more than 10,000 YAML nodes") as err:
            load(path)
        assert len(str(err.value)) < 400 and "\n" not in str(err.value)
    took = time.monotonic() - started
    assert took < 5, took
    # A short alias chain is fine (anchors are legal YAML), and a bad value is quoted briefly.
    config.write_text("dim_mults: &m [1, 2]\nmodel_dim: [*m, *m, " + ", ".join(["x" * 500] * 50)
                      + "]\n")
    with pytest.raises(CheckpointError, match=r"'model_dim' is \[\[1, 2\], \[1, 2\], 'xxx") as err:
        load_config(config)
    assert len(str(err.value)) < 400


@pytest.mark.parametrize("value", ["1000000000", "1.0e+9", "65536"])
def test_huge_linear_dim_is_one_line_not_an_allocation(official, value):
    import yaml

    doc = {k: v for k, v in SMALL_CONFIG.to_dict().items() if k != "linear_dim"}
    (official / "model_args.yaml").write_text(yaml.safe_dump(doc) + f"linear_dim: {value}\n")
    expected = (r"tensor shapes do not match the config" if value == "65536"
                else r"'linear_dim' is .*; expected an integer from 1 to 65536")
    with pytest.raises(CheckpointError, match=expected) as err:
        load_checkpoint(official)
    assert "\n" not in str(err.value)


def test_extra_chunk_past_the_archive_is_refused(official):
    (official / "model_chunk_10").write_bytes(b"8 bytes!")
    with pytest.raises(CheckpointError, match=r"8 bytes follow the end of the torch archive; "
                                              r"model_chunk_10 \(8 bytes\) lie\(s\) wholly past"):
        load_checkpoint(official)
    (official / "model_chunk_10").unlink()
    with open(official / "model_chunk_9", "ab") as fh:  # garbage appended to the last chunk
        fh.write(b"junk")
    with pytest.raises(CheckpointError, match=r"4 bytes follow the end .*last chunk holds them"):
        load_checkpoint(official)


def test_zip_with_overlapping_members_is_refused_before_decompressing(tmp_path):
    """40 directory entries pointing at one deflated 8 MB member: 320 MB of CRC work before,
    accepted as far as the CRC pass goes; now refused from the directory alone."""
    import struct
    import time
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data/0", bytes(8 << 20))
    data = buf.getvalue()
    start, end = data.index(b"PK\x01\x02"), data.index(b"PK\x05\x06")
    directory = data[start:end] * 40
    bomb = (data[:start] + directory
            + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 40, 40, len(directory), start, 0))
    path = tmp_path / "bomb.pt"
    path.write_bytes(bomb)
    began = time.monotonic()
    with pytest.raises(CheckpointError, match=r"bomb\.pt: archive members 'archive/data/0' and "
                                              r"'archive/data/0' overlap \(40 members\)"):
        load_checkpoint(path)
    took = time.monotonic() - began
    print(f"{len(bomb):,}-byte zip with 40 overlapping entries refused in {took:.3f} s")
    assert took < 1.0
