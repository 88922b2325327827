"""`python -m bossnet_onnx ...` runs the same command line as `bossnet-onnx ...`."""
from .cli import main

if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in the tests
    main()
