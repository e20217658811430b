"""Which kind of YAML file a path holds: a job, a search over a job, or a bare corpus section.

Kept apart from :mod:`raytag.config` because recognising a search file needs the
search schema of :mod:`raytag.tune`, and the config tree must not depend on tuning.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from raytag.config import CorpusConfig, JobConfig, Section, apply_overrides, build, read_yaml


def load_any(path: str | os.PathLike[str], overrides: Iterable[str] = ()) -> Section:
    """Validate a job file, a search file (top-level ``search``) or a bare corpus file (``format``)."""
    overrides = list(overrides)
    data = apply_overrides(read_yaml(path), overrides)
    if "search" in data and "base" in data:
        from raytag.tune import load_search

        return load_search(path, overrides)[0]
    model: type[Section] = CorpusConfig if "format" in data and "corpus" not in data else JobConfig
    return build(model, data, str(path))
