"""Script preludes that make packages unimportable, for subprocess tests: BLOCKER hides torch,
onnx and bossnet_export (the runtime's predict and plotting never need them); TORCH_BLOCKER
hides only torch and what needs it (a `pip install '.[cpu]'` environment, where `models pull`
converts checkpoints itself with onnx)."""
from __future__ import annotations

import textwrap


def blocker(*names: str) -> str:
    """A prelude raising ImportError for every module under the top-level `names`."""
    return textwrap.dedent(
        f"""
        import sys
        class _Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in {names!r}:
                    raise ImportError('blocked for the torch-free test: ' + name)
                return None
        sys.meta_path.insert(0, _Block())
        """
    )


BLOCKER = blocker("torch", "onnx", "onnxscript", "bossnet_export")
TORCH_BLOCKER = blocker("torch", "onnxscript", "bossnet_export")
