"""Config files: YAML reading, ``${VAR}`` expansion, dotted overrides, resolved dumps.

Nothing here knows the job tree (:mod:`raytag.config`): every function works on any
pydantic model, so job files, search files and serving settings load and report
alike. A bad file is one :class:`ConfigError` line naming the file (and line, for
YAML syntax) or the dotted path of every invalid field. ``${VAR}`` and
``${VAR:-default}`` in strings expand from the environment.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from raytag.errors import ConfigError

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, path: str = "") -> Any:
    """Expand ``${VAR}`` / ``${VAR:-default}`` in every string of a loaded YAML tree.

    An unset variable without a default is a :class:`ConfigError` naming the dotted
    path of the value that uses it.
    """
    if isinstance(value, str):
        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is None:
                where = f"{path}: " if path else ""
                raise ConfigError(f"{where}environment variable {name} is not set and has no default")
            return default

        return _ENV.sub(substitute, value)
    if isinstance(value, dict):
        return {k: expand_env(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(value)]
    return value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides; values are parsed as YAML (``7`` is an int)."""
    result = json.loads(json.dumps(data))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form dotted.key=value")
        parts = key.strip().split(".")
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(parts[: depth + 1])} is not a section")
            node = child
        node[parts[-1]] = yaml.safe_load(raw) if raw != "" else ""
    return result


def format_validation_error(error: ValidationError, source: str) -> str:
    """One line: the file, then every problem as ``dotted.path: reason``."""
    problems = []
    for problem in error.errors():
        path = ".".join(str(p) for p in problem["loc"]) or "(top level)"
        message = problem["msg"].removeprefix("Value error, ")
        problems.append(f"{path}: {message}")
    return f"{source}: " + "; ".join(problems)


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{file}: config file not found")
    try:
        data = yaml.safe_load(file.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = file.read_bytes().count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{file}:{line}: not UTF-8 text (byte offset {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark is not None else str(file)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {' '.join(str(problem).split())}") from None
    except RecursionError:
        raise ConfigError(f"{file}: not valid YAML: nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level")
    return data


def build(model: type[BaseModel], data: Mapping[str, Any], source: str) -> Any:
    try:
        return model.model_validate(expand_env(dict(data)))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def resolved(config: BaseModel) -> dict[str, Any]:
    """The fully resolved config as plain JSON-able data (defaults filled in)."""
    return config.model_dump(mode="json")


def dump_resolved(config: BaseModel, path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    target.write_text(yaml.safe_dump(resolved(config), sort_keys=False), encoding="utf-8")
    return target
