"""Corpus readers, tag schemes and vocabularies: plain Python, no Ray."""
