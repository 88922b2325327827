"""A script prelude that makes torch, onnx and bossnet_export unimportable, for subprocess tests
proving the runtime (predict, plotting) never needs them."""
from __future__ import annotations

import textwrap

BLOCKER = textwrap.dedent(
    """
    import sys
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in ('torch', 'onnx', 'onnxscript', 'bossnet_export'):
                raise ImportError('blocked for the torch-free test: ' + name)
            return None
    sys.meta_path.insert(0, _Block())
    """
)
