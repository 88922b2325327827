"""How the weights behind a model are fingerprinted (`bossnet.weights_sha256`): the one home.

Two recipes exist, for two kinds of source, and each model records which one applies through
its provenance:

- `checkpoint_sha256(payload)`: sha256 of the bytes of one `torch.save` file, the official
  `model_chunk_0..N` joined in order, or a `.pt` file. Anyone holding the published chunks can
  check it with `cat model_chunk_* | sha256sum`. `state_dict_sha256(model)` is the same recipe
  for weights held in memory (torch.save into a buffer, which is what the chunks are).
- `tensors_sha256(state)`: key names and raw tensor bytes in sorted key order, independent of
  torch's pickle format; the training script records it for the bundled demo model (whose
  torch checkpoint is not shipped), so a retrained copy can be compared without pickles.
"""
from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from typing import Any

__all__ = ["checkpoint_sha256", "state_dict_sha256", "tensors_sha256"]


def checkpoint_sha256(payload: bytes) -> str:
    """sha256 of a torch.save file's bytes (the joined official chunks, or a .pt file)."""
    return hashlib.sha256(payload).hexdigest()


def state_dict_sha256(model: Any) -> str:
    """sha256 of `torch.save(state_dict)` into memory, for models exported straight from memory.

    Equals what `load_checkpoint` reports for the same weights in the official chunked layout
    (written via an in-memory buffer too). A .pt file hashes differently: torch names the
    archive folder inside the file after the file name.
    """
    import torch

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return checkpoint_sha256(buffer.getvalue())


def tensors_sha256(state: Mapping[str, Any]) -> str:
    """sha256 over each key name and its tensor's raw bytes, keys sorted (the demo model's)."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
