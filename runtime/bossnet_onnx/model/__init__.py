"""The model: opening a self-describing ONNX file (files, home, metadata, content), the engines
that run it (session, engines, engine_openvino, ort_cache, precision), the loaded model object
that owns a run (loaded), and the published sets (registry, pull, downloads)."""
