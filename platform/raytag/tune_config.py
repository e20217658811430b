"""The search file of ``raytag tune``: its schema, the search space, and the job each trial runs.

A search file names a base job, fixed overrides and a search space of dotted job keys
(one distribution each). Everything here is plain Python: :func:`load_search` checks
that the bounds (every choice) of each dimension make a valid job before any Ray work starts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from raytag.config import JobConfig, Section, apply_overrides, build, read_yaml
from raytag.errors import ConfigError

__all__ = ["DISTRIBUTIONS", "Dimension", "SchedulerConfig", "SearchConfig", "TuneJobConfig", "base_job_data",
           "job_for_trial", "load_search", "parse_dimension"]

DISTRIBUTIONS = ("uniform", "loguniform", "choice", "randint", "quniform")
TUNED_ALIAS = "tuned"
PROMOTED_ALIASES = ("latest", "best")


class SchedulerConfig(Section):
    kind: Literal["asha", "fifo"] = "asha"
    # Epochs every trial runs before ASHA may stop it, and the halving rate.
    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(2.0, gt=1)


class SearchConfig(Section):
    space: dict[str, dict[str, Any]]
    metric: str = "dev_score"
    mode: Literal["max", "min"] = "max"
    num_samples: int = Field(8, ge=1)
    # None: as many as the cluster's CPUs allow (see trial_resources).
    max_concurrent_trials: int | None = Field(None, ge=1)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    seed: int = 0

    @field_validator("space")
    @classmethod
    def _space(cls, space: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if not space:
            raise ValueError("the search space is empty")
        for key, spec in space.items():
            parse_dimension(key, spec)
        return space


class TuneJobConfig(Section):
    """A search file: ``jobs/tune_*.yaml``."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    # The job every trial starts from (a path relative to the working directory).
    base: str
    # Fixed dotted overrides applied to the base job for every trial (e.g. a shorter budget).
    set: dict[str, Any] = Field(default_factory=dict)
    search: SearchConfig
    # Where Tune keeps trials (local path or URI); default <base workdir>/<name>/tune.
    storage_path: str | None = None
    register_best: bool = True
    # The registry alias the best trial is published under, beside the base job's model.
    alias: str = Field(TUNED_ALIAS, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    # Also move the model's `latest` (and `best`, if it scores higher) to the tuned version.
    # Off by default: a Serve config or a client that loads `<model>` or `<model>@latest`
    # must not switch to a tuned model behind its back.
    promote: bool = False

    @field_validator("alias")
    @classmethod
    def _own_alias(cls, alias: str) -> str:
        if alias in PROMOTED_ALIASES:
            raise ValueError(f"{alias!r} is moved only by promote: true (or --promote); choose another alias")
        if re.fullmatch(r"[vV]?[0-9]+", alias):
            raise ValueError(f"{alias!r} looks like a version number; choose another alias")
        return alias

    def registry_aliases(self) -> tuple[str, ...]:
        """The aliases the best trial's version gets: its own, plus ``latest`` when promoted."""
        return (self.alias, "latest") if self.promote else (self.alias,)


@dataclass(frozen=True)
class Dimension:
    key: str
    kind: str
    args: tuple[Any, ...]


def parse_dimension(key: str, spec: Any) -> Dimension:
    """``{loguniform: [1e-4, 1e-2]}``, ``{choice: [a, b]}``, ``{randint: [lo, hi]}``, ..."""
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ValueError(f"{key}: give one distribution, e.g. {{loguniform: [0.0001, 0.01]}} or {{choice: [a, b]}}")
    kind, args = next(iter(spec.items()))
    if kind not in DISTRIBUTIONS:
        raise ValueError(f"{key}: unknown distribution {kind!r} (known: {', '.join(DISTRIBUTIONS)})")
    if not isinstance(args, list) or not args:
        raise ValueError(f"{key}: {kind} takes a non-empty list")
    if kind == "choice":
        return Dimension(key, kind, tuple(args))
    expected = 3 if kind == "quniform" else 2
    if len(args) != expected or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        raise ValueError(f"{key}: {kind} takes {expected} numbers")
    low, high = args[0], args[1]
    if not low < high:
        raise ValueError(f"{key}: {kind} needs low < high, got {low} and {high}")
    if kind == "loguniform" and low <= 0:
        raise ValueError(f"{key}: loguniform needs a positive lower bound")
    return Dimension(key, kind, tuple(args))


def load_search(path: str | Path, overrides: list[str] | None = None) -> tuple[TuneJobConfig, JobConfig]:
    """Load a search file and its base job; check every point of the space makes a valid job."""
    data = apply_overrides(read_yaml(path), overrides or [])
    search: TuneJobConfig = build(TuneJobConfig, data, str(path))
    base_data = base_job_data(search)
    base = job_for_trial(search, {}, base_data=base_data)
    for dimension in (parse_dimension(k, v) for k, v in search.search.space.items()):
        for value in _corner_values(dimension):
            try:
                job_for_trial(search, {dimension.key: value}, base_data=base_data)
            except ConfigError as exc:
                raise ConfigError(f"{path}: search.space.{dimension.key}={value!r} makes an invalid job: {exc}") from None
    return search, base


def _corner_values(dimension: Dimension) -> list[Any]:
    if dimension.kind == "choice":
        return list(dimension.args)
    low, high = dimension.args[0], dimension.args[1]
    return [low, high - 1] if dimension.kind == "randint" else [low, high]


def base_job_data(search: TuneJobConfig) -> dict[str, Any]:
    """The base job file as read (not yet validated), with the search's fixed overrides applied."""
    data = read_yaml(search.base)
    return apply_overrides(data, [f"{key}={json.dumps(value)}" for key, value in _flatten(search.set).items()])


def job_for_trial(search: TuneJobConfig, params: dict[str, Any], trial_name: str | None = None,
                  base_data: dict[str, Any] | None = None) -> JobConfig:
    """The base job with the fixed overrides and one point of the space applied.

    ``base_data`` (from :func:`base_job_data`) saves reading the base file again.
    """
    data = base_job_data(search) if base_data is None else base_data
    data = apply_overrides(data, [f"{key}={json.dumps(value)}" for key, value in params.items()])
    if trial_name is not None:
        data["name"] = trial_name
    return build(JobConfig, data, f"{search.base} (trial {trial_name or 'base'})")


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    # ``--set set.train.epochs=2`` nests where the file writes ``train.epochs: 2``; both mean the same.
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
