"""Job configs, good and bad, through the loader and `raytag validate`; CLI exit codes.

Bad input exits with 2 and one ``error:`` line naming the file and the dotted field
(or line); a failure of raytag itself exits with 1, one line, the traceback only
with ``--verbose``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from raytag.cli import app
from raytag.errors import ConfigError
from raytag.jobfiles import load_any

UNSET = "RAYTAG_TEST_SURELY_UNSET"
JOB = "name: t\ncorpus:\n  format: conll\n  path: data.txt\n"


@dataclass(frozen=True)
class ConfigCase:
    id: str
    text: str | bytes | None  # None: the file does not exist
    # The error with "{file}" for the config's path, or None when the file is valid.
    error: str | None
    overrides: tuple[str, ...] = ()
    # For valid files: dotted attribute → expected value of the loaded config.
    check: dict[str, object] = field(default_factory=dict)


def _corpus(extra: str) -> str:
    return JOB + "".join(f"  {line}\n" for line in extra.splitlines())


NOT_ASCII = "{file}: corpus.encoding: encoding '%s' is not ASCII-compatible; re-encode the file as UTF-8"

CONFIG_CASES = [
    ConfigCase("encoding-utf-16", _corpus("encoding: utf-16"), NOT_ASCII % "utf-16"),
    ConfigCase("encoding-utf-32", _corpus("encoding: utf-32"), NOT_ASCII % "utf-32"),
    ConfigCase("encoding-utf-7", _corpus("encoding: utf-7"), NOT_ASCII % "utf-7"),
    ConfigCase("encoding-klingon", _corpus("encoding: klingon"), "{file}: corpus.encoding: unknown encoding 'klingon'"),
    ConfigCase("encoding-empty", _corpus("encoding: ''"), "{file}: corpus.encoding: unknown encoding ''"),
    ConfigCase("encoding-rot13", _corpus("encoding: rot13"), "{file}: corpus.encoding: 'rot13' is not a text encoding"),
    ConfigCase("encoding-utf-8-sig", _corpus("encoding: utf-8-sig"),
               "{file}: corpus.encoding: use encoding 'utf-8': it already skips a byte-order mark"),
    ConfigCase("encoding-latin-1", _corpus("encoding: latin-1"), None, check={"corpus.encoding": "latin-1"}),
    ConfigCase("encoding-override", JOB, "{file}: corpus.encoding: unknown encoding 'klingon'",
               overrides=("corpus.encoding=klingon",)),
    ConfigCase("bare-corpus-encoding", "format: jsonl\npath: a.jsonl\nencoding: utf-16\n",
               "{file}: encoding: encoding 'utf-16' is not ASCII-compatible; re-encode the file as UTF-8"),
    ConfigCase("env-unset", JOB.replace("data.txt", f"${{{UNSET}}}/a.txt"),
               f"{{file}}: corpus.path: environment variable {UNSET} is not set and has no default"),
    ConfigCase("env-unset-in-list", "name: t\ncorpus:\n  format: conll\n  splits:\n"
               f"    train: [a.txt, '${{{UNSET}}}']\n",
               f"{{file}}: corpus.splits.train.1: environment variable {UNSET} is not set and has no default"),
    ConfigCase("env-unset-with-default", JOB.replace("data.txt", f"${{{UNSET}:-/corpora}}/a.txt"), None,
               check={"corpus.path": "/corpora/a.txt"}),
    ConfigCase("unknown-key", _corpus("encodng: latin-1"), "{file}: corpus.encodng: Extra inputs are not permitted"),
    ConfigCase("unknown-format", JOB.replace("conll", "xml"),
               "{file}: corpus.format: Input should be 'conll', 'gmb_csv' or 'jsonl'"),
    ConfigCase("path-and-splits", _corpus("splits: {train: a.txt}"),
               "{file}: corpus: give exactly one of 'path' (split by split.ratios) or 'splits' (a file per split)"),
    ConfigCase("untagged", _corpus("tagged: false"), None, check={"corpus.tagged": False}),
    ConfigCase("untagged-with-tag-column", _corpus("tagged: false\ntag_column: 1"),
               "{file}: corpus.tag_column: set, but tagged is false; drop one of them"),
    ConfigCase("untagged-with-entity-scheme", _corpus("tagged: false\nscheme: iob2"),
               "{file}: corpus.scheme: 'iob2' needs tags, but tagged is false"),
    ConfigCase("tagged-not-a-bool", _corpus("tagged: maybe"),
               "{file}: corpus.tagged: Input should be a valid boolean, unable to interpret input"),
    ConfigCase("two-problems-one-line", _corpus("encoding: klingon\non_error: ignore"),
               "{file}: corpus.encoding: unknown encoding 'klingon'; "
               "corpus.on_error: Input should be 'raise' or 'skip'"),
    ConfigCase("yaml-syntax", "name: [t\n", "{file}:2: not valid YAML: expected ',' or ']', but got '<stream end>'"),
    ConfigCase("yaml-not-utf8", b"name: t\ncorpus: \xff\n", "{file}:2: not UTF-8 text (byte offset 16)"),
    ConfigCase("yaml-deep-nesting", "name: " + "[" * 1500 + "]" * 1500 + "\n",
               "{file}: not valid YAML: nested too deeply"),
    ConfigCase("yaml-top-level-list", "- a\n", "{file}: expected a mapping at the top level"),
    ConfigCase("missing-file", None, "{file}: config file not found"),
]


def _write(case: ConfigCase, tmp_path: Path) -> Path:
    path = tmp_path / f"{case.id}.yaml"
    if isinstance(case.text, bytes):
        path.write_bytes(case.text)
    elif case.text is not None:
        path.write_text(case.text, encoding="utf-8")
    return path


def _attribute(config: object, dotted: str) -> object:
    for part in dotted.split("."):
        config = getattr(config, part)
    return config


@pytest.fixture(autouse=True)
def _unset(monkeypatch):
    monkeypatch.delenv(UNSET, raising=False)


@pytest.mark.parametrize("case", CONFIG_CASES, ids=lambda c: c.id)
def test_config_case_loads_or_names_file_and_field(case: ConfigCase, tmp_path: Path):
    path = _write(case, tmp_path)
    if case.error is None:
        config = load_any(path, case.overrides)
        for dotted, value in case.check.items():
            assert _attribute(config, dotted) == value
        return
    with pytest.raises(ConfigError) as info:
        load_any(path, case.overrides)
    assert str(info.value) == case.error.format(file=path)


@pytest.mark.parametrize("case", CONFIG_CASES, ids=lambda c: c.id)
def test_config_case_through_raytag_validate(case: ConfigCase, tmp_path: Path):
    path = _write(case, tmp_path)
    args = ["validate", str(path), *(arg for o in case.overrides for arg in ("--set", o))]
    result = CliRunner().invoke(app, args)
    if case.error is None:
        assert (result.exit_code, result.stderr) == (0, ""), result.output
        return
    assert result.exit_code == 2
    assert result.stderr == f"error: {case.error.format(file=path)}\n"


# --- exit codes of the other verbs --------------------------------------------------------------


def _job(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(_corpus(extra), encoding="utf-8")
    return path


def test_prepare_with_a_bad_config_exits_2_before_starting_ray(tmp_path):
    # The implicit-start guard of conftest fails the test if Ray were started.
    result = CliRunner().invoke(app, ["prepare", str(_job(tmp_path, "encoding: utf-16"))])
    assert result.exit_code == 2
    assert result.stderr == f"error: {NOT_ASCII.format(file=tmp_path / 'job.yaml') % 'utf-16'}\n"


def test_an_internal_error_exits_1_with_one_line(tmp_path, monkeypatch):
    import raytag.jobfiles

    def broken(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(raytag.config, "load_job", broken)
    result = CliRunner().invoke(app, ["prepare", str(_job(tmp_path))])
    assert result.exit_code == 1
    assert result.stderr == "error: internal error: KeyError: 'boom' (rerun with --verbose for the traceback)\n"


def test_verbose_adds_the_traceback(tmp_path, monkeypatch):
    import raytag.jobfiles

    def broken(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(raytag.config, "load_job", broken)
    result = CliRunner().invoke(app, ["prepare", str(_job(tmp_path)), "--verbose"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "in broken" in result.stderr
    assert result.stderr.endswith("\nerror: internal error: KeyError: 'boom'\n")


def test_verbose_traceback_for_user_errors_too(tmp_path):
    result = CliRunner().invoke(app, ["prepare", "-v", str(_job(tmp_path, "encoding: klingon"))])
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: ") and "corpus.encoding" in result.stderr


def test_a_command_without_verbose_gives_no_hint(tmp_path, monkeypatch):
    import raytag.jobfiles

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(raytag.jobfiles, "load_any", broken)
    result = CliRunner().invoke(app, ["validate", str(_job(tmp_path))])
    assert result.exit_code == 1
    assert result.stderr == "error: internal error: RuntimeError: disk on fire second line\n"


def test_ray_task_errors_are_reported_by_their_cause():
    from raytag.cli._util import root_cause as _root_cause

    class RayTaskError(Exception):  # stands in for Ray's wrapper, which keeps the task's error in .cause
        def __init__(self, cause):
            super().__init__("ray::MapBatches(parse_chunks)() (pid=1)\n  File ...\nValueError: bad")
            self.cause = cause

    inner = ValueError("bad")
    assert _root_cause(RayTaskError(RayTaskError(inner))) is inner
    plain = KeyError("x")
    assert _root_cause(plain) is plain


def test_usage_errors_keep_clicks_exit_2():
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 2


def test_models_show_unknown_model_is_a_user_error(tmp_path):
    result = CliRunner().invoke(app, ["models", "show", "nope", "--registry", str(tmp_path / "registry")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
