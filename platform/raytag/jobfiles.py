"""Which kind of YAML file a path holds: a job, a search over a job, a bare corpus section,
or a Serve config (``serve/*.yaml``).

Kept apart from :mod:`raytag.config` because recognising a search file needs the
search schema of :mod:`raytag.tune` (and a Serve config the serving schema), and the
config tree must not depend on tuning or serving.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from raytag.config import CorpusConfig, JobConfig, Section, apply_overrides, build, read_yaml
from raytag.errors import ConfigError
from raytag.serving.deploy import check_config, is_serve_config


def load_any(path: str | os.PathLike[str], overrides: Iterable[str] = ()) -> Section | dict[str, Any]:
    """Validate a job file, a search file (top-level ``search``), a bare corpus file (``format``)
    or a Serve config (top-level ``applications``; returned as its validated data)."""
    overrides = list(overrides)
    raw = read_yaml(path)
    if is_serve_config(raw):
        if overrides:
            raise ConfigError(f"{path}: --set applies to job and search files, not to a Serve config")
        return check_config(raw, str(path))
    data = apply_overrides(raw, overrides)
    if "search" in data and "base" in data:
        from raytag.tune import load_search

        return load_search(path, overrides)[0]
    model: type[Section] = CorpusConfig if "format" in data and "corpus" not in data else JobConfig
    return build(model, data, str(path))
