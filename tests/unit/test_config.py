"""Unit tests for raytag.config: strict sections, dotted overrides, env expansion, dumps, the validate CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from raytag.cli import app
from raytag.config import (
    CorpusConfig,
    JobConfig,
    apply_overrides,
    demo_job,
    dump_resolved,
    expand_env,
    load_job,
    resolved,
)
from raytag.errors import ConfigError, RaytagError
from raytag.jobfiles import load_any

REPO = Path(__file__).resolve().parents[2]
JOB_FILES = sorted(p for p in (REPO / "jobs").glob("*.yaml") if not p.name.startswith("tune_"))

BASE = {"name": "t", "corpus": {"format": "conll", "path": "data/train.txt"}}


def write_yaml(tmp_path: Path, data: dict, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def config_error(tmp_path: Path, data: dict, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        load_job(write_yaml(tmp_path, data), overrides)
    return str(info.value)


# --- unknown keys and validation --------------------------------------------------------------


def test_config_error_is_a_raytag_error():
    assert issubclass(ConfigError, RaytagError)


def test_minimal_job_fills_defaults(tmp_path):
    job = load_job(write_yaml(tmp_path, BASE))
    assert job.name == "t"
    assert job.corpus.encoding == "utf-8"
    assert job.split.ratios == {"train": 0.9, "test": 0.1}
    assert job.split.seed == 42
    assert job.prepared_dir() == str(Path("runs") / "t" / "prepared")


def test_unknown_top_level_key_names_it(tmp_path):
    message = config_error(tmp_path, {**BASE, "bogus_section": {"x": 1}})
    assert "bogus_section" in message
    assert "Extra inputs are not permitted" in message
    # The message starts with the file it came from.
    assert message.startswith(str(tmp_path / "job.yaml"))


def test_unknown_nested_key_names_the_dotted_path(tmp_path):
    data = {**BASE, "corpus": {**BASE["corpus"], "encodng": "latin-1"}}
    message = config_error(tmp_path, data)
    assert "corpus.encodng" in message


def test_unknown_key_deeper_sections(tmp_path):
    message = config_error(tmp_path, {**BASE, "vocab": {"max_word": 10}, "prepare": {"num_worker": 3}})
    assert "vocab.max_word" in message
    assert "prepare.num_worker" in message  # every problem is listed, not just the first


@pytest.mark.parametrize("ratios", [{"train": 0.5, "test": 0.3}, {"train": 0.9, "test": 0.2}])
def test_split_ratios_must_sum_to_one(tmp_path, ratios):
    message = config_error(tmp_path, {**BASE, "split": {"ratios": ratios}})
    assert "split.ratios" in message
    assert "sum to 1" in message


def test_split_ratios_must_be_positive(tmp_path):
    message = config_error(tmp_path, {**BASE, "split": {"ratios": {"train": 1.1, "test": -0.1}}})
    assert "split.ratios" in message
    assert "positive" in message


def test_wrong_type_names_the_path(tmp_path):
    message = config_error(tmp_path, {**BASE, "split": {"seed": "seven"}})
    assert "split.seed" in message


def test_bad_literal_names_the_path(tmp_path):
    message = config_error(tmp_path, {**BASE, "corpus": {**BASE["corpus"], "scheme": "bilou"}})
    assert "corpus.scheme" in message


def test_bad_job_name(tmp_path):
    assert "name" in config_error(tmp_path, {**BASE, "name": "has space"})


@pytest.mark.parametrize(
    "corpus",
    [
        {"format": "conll"},
        {"format": "conll", "path": "a", "splits": {"train": "b"}},
    ],
)
def test_corpus_needs_exactly_one_of_path_and_splits(tmp_path, corpus):
    message = config_error(tmp_path, {**BASE, "corpus": corpus})
    assert "corpus" in message
    assert "exactly one of 'path'" in message


def test_corpus_empty_splits_rejected():
    with pytest.raises(ValueError, match="'splits' is empty"):
        CorpusConfig(format="conll", splits={})


def test_corpus_sources():
    assert CorpusConfig(format="conll", path="a.txt").sources() == {None: ["a.txt"]}
    assert CorpusConfig(format="conll", path=["a", "b"]).sources() == {None: ["a", "b"]}
    assert CorpusConfig(format="conll", splits={"train": "t.txt", "dev": ["d1", "d2"]}).sources() == {
        "train": ["t.txt"],
        "dev": ["d1", "d2"],
    }


def test_sections_validate_assignment():
    job = demo_job()
    with pytest.raises(ValueError):
        job.split.seed = "not a number"


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_job(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_job(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_job(tmp_path / "broken.yaml")


# --- overrides --------------------------------------------------------------------------------


def test_override_parses_yaml_scalars():
    out = apply_overrides(BASE, ["split.seed=7", "vocab.lowercase=true", "vocab.max_words=null", "name=abc"])
    assert out["split"]["seed"] == 7 and isinstance(out["split"]["seed"], int)
    assert out["vocab"]["lowercase"] is True
    assert out["vocab"]["max_words"] is None
    assert out["name"] == "abc"


def test_override_lists_and_strings():
    out = apply_overrides(BASE, ["vocab.from_splits=[train, dev]", "corpus.path=a=b.txt", "corpus.encoding=", "corpus.tag_column='3'"])
    assert out["vocab"]["from_splits"] == ["train", "dev"]
    assert out["corpus"]["path"] == "a=b.txt"  # only the first '=' separates key and value
    assert out["corpus"]["encoding"] == ""
    assert out["corpus"]["tag_column"] == "3"


def test_override_creates_nested_keys_and_does_not_mutate_input():
    data = {"name": "t", "corpus": {"format": "conll", "path": "a"}}
    out = apply_overrides(data, ["corpus.splits.train=t.txt", "split.ratios.train=1.0"])
    assert out["corpus"]["splits"] == {"train": "t.txt"}
    assert out["split"] == {"ratios": {"train": 1.0}}
    assert data == {"name": "t", "corpus": {"format": "conll", "path": "a"}}


def test_later_overrides_win():
    assert apply_overrides(BASE, ["split.seed=1", "split.seed=2"])["split"]["seed"] == 2


def test_override_through_a_non_section_fails():
    with pytest.raises(ConfigError, match=r"corpus\.path is not a section"):
        apply_overrides(BASE, ["corpus.path.x=1"])
    with pytest.raises(ConfigError, match="name is not a section"):
        apply_overrides(BASE, ["name.first=1"])


@pytest.mark.parametrize("item", ["split.seed", "", "=7", "  =7"])
def test_malformed_overrides(item):
    with pytest.raises(ConfigError, match="not of the form dotted.key=value"):
        apply_overrides(BASE, [item])


def test_override_applied_by_load_job(tmp_path):
    job = load_job(write_yaml(tmp_path, BASE), ["split.seed=7", "vocab.from_splits=[train, dev]"])
    assert job.split.seed == 7
    assert job.vocab.from_splits == ["train", "dev"]


def test_override_with_unknown_key_fails_with_dotted_path(tmp_path):
    message = config_error(tmp_path, BASE, ("split.sed=7",))
    assert "split.sed" in message
    message = config_error(tmp_path, BASE, ("vocab.nested.deep=1",))
    assert "vocab.nested" in message


def test_override_type_error_names_the_path(tmp_path):
    assert "prepare.num_workers" in config_error(tmp_path, BASE, ("prepare.num_workers=0",))


# --- environment expansion --------------------------------------------------------------------


def test_expand_env_set_and_default(monkeypatch):
    monkeypatch.setenv("RT_A", "alpha")
    monkeypatch.delenv("RT_MISSING", raising=False)
    assert expand_env("${RT_A}/x") == "alpha/x"
    assert expand_env("${RT_A:-zzz}") == "alpha"  # a set variable beats the default
    assert expand_env("${RT_MISSING:-fallback}/y") == "fallback/y"
    assert expand_env("${RT_MISSING:-}") == ""
    assert expand_env({"a": ["${RT_A}", 3, {"b": "${RT_A}${RT_A}"}]}) == {"a": ["alpha", 3, {"b": "alphaalpha"}]}
    assert expand_env("$RT_A and {RT_A}") == "$RT_A and {RT_A}"  # only ${...} expands


def test_expand_env_unset_without_default(monkeypatch):
    monkeypatch.delenv("RT_MISSING", raising=False)
    with pytest.raises(ConfigError, match="RT_MISSING is not set and has no default"):
        expand_env({"x": ["${RT_MISSING}"]})


def test_load_job_expands_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RT_SEED", "11")
    monkeypatch.setenv("RT_DIR", "/corpora")
    data = {"name": "t", "corpus": {"format": "conll", "path": "${RT_DIR}/a.txt"}, "split": {"seed": "${RT_SEED}"}}
    job = load_job(write_yaml(tmp_path, data))
    assert job.corpus.path == "/corpora/a.txt"
    assert job.split.seed == 11


def test_load_job_unset_env_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.delenv("RT_MISSING", raising=False)
    data = {"name": "t", "corpus": {"format": "conll", "path": "${RT_MISSING}/a.txt"}}
    with pytest.raises(ConfigError, match="RT_MISSING"):
        load_job(write_yaml(tmp_path, data))


# --- load_any ---------------------------------------------------------------------------------


def test_load_any_bare_corpus_file(tmp_path):
    config = load_any(write_yaml(tmp_path, {"format": "gmb_csv", "path": "x.csv", "encoding": "latin-1"}))
    assert isinstance(config, CorpusConfig)
    assert config.encoding == "latin-1"


def test_load_any_bare_corpus_unknown_key(tmp_path):
    with pytest.raises(ConfigError, match="encodng"):
        load_any(write_yaml(tmp_path, {"format": "conll", "path": "x", "encodng": "utf-8"}))


def test_load_any_job_file(tmp_path):
    assert isinstance(load_any(write_yaml(tmp_path, BASE)), JobConfig)


def test_load_any_job_file_with_stray_format_is_still_a_job(tmp_path):
    # A top-level 'format' next to 'corpus' is a typo in a job file, not a corpus file.
    with pytest.raises(ConfigError) as info:
        load_any(write_yaml(tmp_path, {**BASE, "format": "conll"}))
    assert "format: Extra inputs are not permitted" in str(info.value)


def test_load_any_applies_overrides(tmp_path):
    config = load_any(write_yaml(tmp_path, {"format": "conll", "path": "x"}), ["encoding=latin-1"])
    assert isinstance(config, CorpusConfig) and config.encoding == "latin-1"


# --- resolved dumps ---------------------------------------------------------------------------


def test_resolved_is_plain_data():
    data = resolved(demo_job())
    assert data["corpus"]["format"] == "gmb_csv"
    assert data["vocab"]["max_words"] == 35_000
    assert yaml.safe_load(yaml.safe_dump(data)) == data


@pytest.mark.parametrize("job_file", JOB_FILES, ids=lambda p: p.name)
def test_dump_then_load_round_trips(tmp_path, job_file, monkeypatch):
    monkeypatch.delenv("RAYTAG_CONLL03", raising=False)
    job = load_job(job_file, ["split.ratios={train: 0.8, dev: 0.1, test: 0.1}"])
    path = dump_resolved(job, tmp_path / "resolved.yaml")
    again = load_job(path)
    assert again == job
    assert resolved(again) == resolved(job)
    # Split order decides which sentences go where: the dump must keep it.
    assert list(again.split.ratios) == ["train", "dev", "test"]


def test_dump_round_trips_demo_and_corpus(tmp_path):
    job = demo_job("somewhere")
    assert load_job(dump_resolved(job, tmp_path / "demo.yaml")) == job
    corpus = CorpusConfig(format="conll", splits={"train": ["a", "b"], "test": "c"}, tag_column=3, token_column="0")
    again = load_any(dump_resolved(corpus, tmp_path / "corpus.yaml"))
    assert again == corpus
    assert again.tag_column == 3 and again.token_column == "0"


def test_round_trip_detects_a_difference(tmp_path):
    job = demo_job()
    path = dump_resolved(job, tmp_path / "demo.yaml")
    assert load_job(path, ["split.seed=43"]) != job


# --- shipped job files ------------------------------------------------------------------------


def test_job_files_exist():
    assert {p.name for p in JOB_FILES} >= {"conll03_ner.yaml", "gmb_ner.yaml", "gmb_pos.yaml"}


@pytest.mark.parametrize("job_file", JOB_FILES, ids=lambda p: p.name)
def test_every_job_file_validates(job_file):
    job = load_job(job_file)
    assert job.name == job_file.stem
    assert isinstance(load_any(job_file), JobConfig)


def test_conll03_paths_expand_from_env(monkeypatch):
    path = REPO / "jobs" / "conll03_ner.yaml"
    monkeypatch.delenv("RAYTAG_CONLL03", raising=False)
    job = load_job(path)
    assert job.corpus.splits == {
        "train": "../shared/data/conll2003/train.txt",
        "dev": "../shared/data/conll2003/dev.txt",
        "test": "../shared/data/conll2003/test.txt",
    }
    monkeypatch.setenv("RAYTAG_CONLL03", "/does/not/exist")
    job = load_job(path)  # validation never touches the files
    assert job.corpus.sources()["dev"] == ["/does/not/exist/dev.txt"]
    assert job.corpus.tag_column == "ner"
    assert job.corpus.scheme == "iob2"


def test_gmb_jobs_share_the_split():
    ner, pos = load_job(REPO / "jobs" / "gmb_ner.yaml"), load_job(REPO / "jobs" / "gmb_pos.yaml")
    assert ner.split == pos.split
    assert ner.corpus.tag_column == "Tag" and pos.corpus.tag_column == "POS"
    assert pos.corpus.scheme == "plain"


def test_demo_job_is_valid():
    job = demo_job("runs/x")
    assert JobConfig.model_validate(resolved(job)) == job
    assert job.corpus.path == "raytag:gmb"
    assert job.corpus.encoding == "latin-1"
    assert job.prepared_dir() == str(Path("runs/x") / "prepared")


# --- the validate CLI -------------------------------------------------------------------------


def test_cli_validate_good_files(tmp_path):
    corpus = write_yaml(tmp_path, {"format": "conll", "path": "x"}, "corpus.yaml")
    result = CliRunner().invoke(app, ["validate", str(REPO / "jobs" / "gmb_ner.yaml"), str(corpus)])
    assert result.exit_code == 0, result.output
    assert "gmb_ner.yaml" in result.stdout and "corpus.yaml" in result.stdout


def test_cli_validate_bad_file_names_dotted_path(tmp_path):
    bad = write_yaml(tmp_path, {**BASE, "corpus": {**BASE["corpus"], "encodng": "utf-8"}}, "bad.yaml")
    result = CliRunner().invoke(app, ["validate", str(REPO / "jobs" / "gmb_pos.yaml"), str(bad)])
    assert result.exit_code == 2  # a user error
    assert "corpus.encodng" in result.stderr
    assert "gmb_pos.yaml" in result.stdout  # the good file is still reported as fine


def test_cli_validate_override_with_unknown_key(tmp_path):
    result = CliRunner().invoke(app, ["validate", str(REPO / "jobs" / "gmb_ner.yaml"), "--set", "split.sed=3"])
    assert result.exit_code == 2  # a user error
    assert "split.sed" in result.stderr
    result = CliRunner().invoke(app, ["validate", str(REPO / "jobs" / "gmb_ner.yaml"), "--set", "split.seed=3"])
    assert result.exit_code == 0, result.output


def test_cli_validate_missing_file(tmp_path):
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2  # a user error
    assert "not found" in result.stderr
