"""Tagger models. Submodules import their framework (TensorFlow, PyTorch) when imported,
so nothing here is imported by the rest of raytag at import time."""
