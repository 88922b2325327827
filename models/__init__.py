"""Bundled model files (installed as package data, so a wheel install finds them too).

`bossnet_onnx.model.session.default_model_path()` locates the default model here via
importlib.resources; see MODEL_CARD.md for what it is (a demonstration model trained on
synthetic spectra; for science, export the published weights).
"""
