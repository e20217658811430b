"""Unit tests for raytag.registry: local roots and a file:// root (the remote code path)."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest

from raytag import registry as reg
from raytag.registry import (
    ChecksumError,
    ModelNotFoundError,
    ModelRef,
    Registry,
    RegistryError,
    checksum_tree,
    parse_ref,
    sha256_file,
)

ARTIFACT_FILES = {
    "model.json": b'{"weights": [1, 2, 3]}',
    "vocab/words.txt": b"the\ncat\nsat\n",
    "vocab/tags.txt": b"O\nB-PER\nI-PER\n",
    "report.md": b"# report\n" + bytes(range(256)) * 10,
}


def make_artifact(base: Path, files: dict[str, bytes] = ARTIFACT_FILES) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(data)
    return base


def publish(registry: Registry, artifact: Path, name: str = "ner", **overrides):
    kwargs = dict(kind="bilstm", labels=["O", "B-PER", "I-PER"], metrics={"f1": 0.8},
                  config={"epochs": 3, "lr": 0.001}, data_fingerprint="sha256:abc")
    kwargs.update(overrides)
    return registry.publish(name, artifact, **kwargs)


def read_tree(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


@pytest.fixture(params=["local", "uri"])
def root(request, tmp_path) -> tuple[Path, str | Path]:
    """(directory on disk, root handed to Registry): a plain path, or a file:// URI (remote path)."""
    directory = tmp_path / "registry"
    return directory, (directory if request.param == "local" else directory.as_uri())


@pytest.fixture
def registry(root) -> Registry:
    return Registry(root[1])


@pytest.fixture
def artifact(tmp_path) -> Path:
    return make_artifact(tmp_path / "artifact")


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def no_leftovers(model_dir: Path) -> list[str]:
    return sorted(p.name for p in model_dir.iterdir() if p.name.startswith((".staging", "v", ".aliases-"))) \
        if model_dir.exists() else []


# -- references ------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("ner", ModelRef("ner", alias="latest")),
    ("ner@3", ModelRef("ner", version=3)),
    ("ner@v3", ModelRef("ner", version=3)),
    ("ner@V12", ModelRef("ner", version=12)),
    ("ner-conll_v2.1@best", ModelRef("ner-conll_v2.1", alias="best")),
])
def test_parse_ref_accepts_all_forms(text, expected):
    assert parse_ref(text) == expected


@pytest.mark.parametrize("text, fragment", [
    ("", "expected 'name'"),
    ("ner@", "nothing after '@'"),
    ("ner@1@2", "more than one '@'"),
    ("ner@0", "versions start at 1"),
    ("@3", "invalid model name ''"),
    ("a/b", "invalid model name 'a/b'"),
    ("..", "invalid model name '..'"),
    (".hidden", "invalid model name"),
    ("ner@bad alias", "invalid alias 'bad alias'"),
])
def test_parse_ref_rejects_bad_refs_with_a_reason(text, fragment):
    with pytest.raises(RegistryError, match=fragment.replace("(", r"\(")):
        parse_ref(text)


def test_ref_str_round_trips():
    for text in ("ner@v3", "ner@best"):
        assert str(parse_ref(text)) == text


# -- helpers ---------------------------------------------------------------------

def test_checksum_tree_lists_every_file_with_posix_paths(artifact):
    tree = checksum_tree(artifact)
    assert sorted(tree) == sorted(ARTIFACT_FILES)
    for rel, data in ARTIFACT_FILES.items():
        assert tree[rel]["size"] == len(data)
        assert tree[rel]["sha256"] == sha256_file(artifact / rel)
    assert tree["model.json"]["sha256"] == hashlib.sha256(ARTIFACT_FILES["model.json"]).hexdigest()


# -- publish / resolve / fetch ---------------------------------------------------

def test_publish_resolve_fetch_round_trip(registry, root, artifact, cache):
    mv = publish(registry, artifact)
    assert (mv.name, mv.version, mv.kind, mv.labels, mv.metrics) == ("ner", 1, "bilstm", ["O", "B-PER", "I-PER"], {"f1": 0.8})

    manifest = json.loads((root[0] / "ner" / "v1" / "manifest.json").read_text())
    assert manifest == mv.manifest
    assert manifest["config"] == {"epochs": 3, "lr": 0.001}
    assert manifest["data_fingerprint"] == "sha256:abc"
    assert manifest["created_at"].endswith("+00:00")
    assert isinstance(manifest["raytag_version"], str) and manifest["raytag_version"]
    assert manifest["files"] == checksum_tree(artifact)

    for ref in ("ner", "ner@1", "ner@v1", "ner@latest", ModelRef("ner", version=1)):
        assert registry.resolve(ref) == mv
    fetched = registry.fetch("ner", cache_dir=cache)
    assert read_tree(fetched) == ARTIFACT_FILES
    assert mv.uri.endswith("ner/v1") and str(root[1]).rstrip("/") in mv.uri
    assert mv.uri.startswith("file://") != registry.is_local
    assert {mv, registry.resolve("ner@v1")} == {mv}  # hashable despite the manifest dict


def test_local_fetch_is_in_place_and_remote_fetch_uses_the_cache(registry, root, artifact, cache):
    publish(registry, artifact)
    fetched = registry.fetch("ner@1", cache_dir=cache)
    if registry.is_local:
        assert fetched == root[0] / "ner" / "v1" / "artifact"
        assert not cache.exists()
    else:
        assert fetched == cache / "ner" / "v1"
        assert registry.fetch("ner@1", cache_dir=cache) == fetched  # cache hit, still verified


def test_versions_increment_and_latest_moves(registry, artifact, tmp_path):
    first = publish(registry, artifact)
    second = publish(registry, make_artifact(tmp_path / "a2", {"model.json": b"v2"}))
    third = publish(registry, artifact, aliases=())
    assert [v.version for v in (first, second, third)] == [1, 2, 3]
    assert [v.version for v in registry.list_versions("ner")] == [1, 2, 3]
    # aliases=() leaves latest where it was
    assert registry.aliases("ner") == {"latest": 2}
    assert registry.resolve("ner").version == 2
    assert registry.list_models() == ["ner"]


def test_best_alias_follows_the_metric(registry, artifact):
    publish(registry, artifact, metrics={"f1": 0.70}, best_metric="f1")
    publish(registry, artifact, metrics={"f1": 0.85}, best_metric="f1")
    publish(registry, artifact, metrics={"f1": 0.80}, best_metric="f1")  # worse: best stays
    publish(registry, artifact, metrics={"f1": 0.85}, best_metric="f1")  # tie: incumbent stays
    assert registry.aliases("ner") == {"latest": 4, "best": 2}
    assert registry.resolve("ner@best").metrics["f1"] == 0.85


def test_best_alias_lower_is_better(registry, artifact):
    publish(registry, artifact, metrics={"loss": 0.5}, best_metric="loss", higher_is_better=False)
    publish(registry, artifact, metrics={"loss": 0.9}, best_metric="loss", higher_is_better=False)
    publish(registry, artifact, metrics={"loss": 0.2}, best_metric="loss", higher_is_better=False)
    assert registry.aliases("ner")["best"] == 3


def test_best_metric_must_be_a_number_in_metrics(registry, root, artifact):
    with pytest.raises(RegistryError, match="best_metric 'f1'"):
        publish(registry, artifact, metrics={"loss": 0.1}, best_metric="f1")
    assert no_leftovers(root[0] / "ner") == []


def test_models_are_independent(registry, artifact):
    publish(registry, artifact, name="ner")
    publish(registry, artifact, name="ner")
    publish(registry, artifact, name="pos", kind="transformer")
    assert registry.list_models() == ["ner", "pos"]
    assert registry.resolve("pos").version == 1
    assert registry.resolve("pos").kind == "transformer"


def test_manifest_and_aliases_are_plain_json(registry, root, artifact):
    publish(registry, artifact, best_metric="f1")
    assert json.loads((root[0] / "ner" / "aliases.json").read_text()) == {"best": 1, "latest": 1}
    assert not list(root[0].rglob("*.pkl")) and not list(root[0].rglob("*.tmp"))


# -- checksum verification ------------------------------------------------------

@pytest.mark.parametrize("damage, culprit", [
    (lambda d: (d / "vocab/words.txt").write_bytes(b"the\ncat\nsad\n"), "vocab/words.txt"),  # same size
    (lambda d: (d / "model.json").write_bytes(b"{}"), "model.json"),
    (lambda d: (d / "vocab/tags.txt").unlink(), "vocab/tags.txt"),
    (lambda d: (d / "extra.bin").write_bytes(b"surprise"), "extra.bin"),
])
def test_fetch_detects_tampering(registry, root, artifact, cache, damage, culprit):
    publish(registry, artifact)
    damage(root[0] / "ner" / "v1" / "artifact")
    with pytest.raises(ChecksumError, match=culprit) as info:
        registry.fetch("ner", cache_dir=cache)
    assert info.value.path == culprit
    if not registry.is_local:  # a failed download leaves nothing usable in the cache
        assert not (cache / "ner").exists() or list((cache / "ner").iterdir()) == []


def test_remote_cache_is_reverified_and_repaired(tmp_path, artifact, cache):
    registry = Registry((tmp_path / "registry").as_uri())
    publish(registry, artifact)
    fetched = registry.fetch("ner", cache_dir=cache)
    (fetched / "model.json").write_bytes(b"tampered locally")
    (fetched / "stray.txt").write_bytes(b"x")
    assert registry.fetch("ner", cache_dir=cache) == fetched
    assert read_tree(fetched) == ARTIFACT_FILES


def test_remote_fetch_default_cache_is_per_root(tmp_path, artifact, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    one, two = Registry((tmp_path / "r1").as_uri()), Registry((tmp_path / "r2").as_uri())
    publish(one, artifact)
    publish(two, make_artifact(tmp_path / "other", {"model.json": b"other"}))
    a, b = one.fetch("ner"), two.fetch("ner")
    assert a != b and (tmp_path / "xdg") in a.parents
    assert read_tree(a) == ARTIFACT_FILES and read_tree(b) == {"model.json": b"other"}


def test_corrupt_manifest_paths_are_refused(registry, root, artifact, cache):
    publish(registry, artifact)
    path = root[0] / "ner" / "v1" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"]["../escape.txt"] = {"sha256": "0" * 64, "size": 1}
    path.write_text(json.dumps(manifest))
    with pytest.raises(RegistryError, match="unsafe file path"):
        registry.fetch("ner", cache_dir=cache)
    assert not (cache / "escape.txt").exists()


# -- failures during publish ------------------------------------------------------

def test_failure_while_copying_leaves_no_version(registry, root, artifact, monkeypatch):
    publish(registry, artifact)
    real_pump, calls = reg._pump, []

    def failing_pump(fin, fout):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real_pump(fin, fout)

    monkeypatch.setattr(reg, "_pump", failing_pump)
    with pytest.raises(OSError, match="disk full"):
        publish(registry, artifact, metrics={"f1": 0.99}, best_metric="f1")
    monkeypatch.undo()

    assert no_leftovers(root[0] / "ner") == ["v1"]
    assert [v.version for v in registry.list_versions("ner")] == [1]
    assert registry.aliases("ner") == {"latest": 1}
    with pytest.raises(ModelNotFoundError):
        registry.resolve("ner@2")
    assert publish(registry, artifact).version == 2  # the number was not burnt


def test_failure_writing_the_manifest_leaves_no_version(registry, root, artifact, monkeypatch):
    def broken_dumps(obj, what):
        if what == "manifest" and "files" in obj:
            raise RegistryError("boom")
        return json.dumps(obj).encode()

    monkeypatch.setattr(reg, "_dumps", broken_dumps)
    with pytest.raises(RegistryError, match="boom"):
        publish(registry, artifact)
    assert no_leftovers(root[0] / "ner") == []
    assert registry.list_models() == []


def test_failure_updating_aliases_rolls_the_version_back(registry, root, artifact, monkeypatch):
    publish(registry, artifact)

    def broken(self, name, aliases):
        raise OSError("aliases unwritable")

    monkeypatch.setattr(Registry, "_write_aliases", broken)
    with pytest.raises(OSError, match="aliases unwritable"):
        publish(registry, artifact)
    assert no_leftovers(root[0] / "ner") == ["v1"]


def test_invalid_metadata_is_rejected_before_copying(registry, root, artifact, tmp_path):
    cases = [
        dict(config={"callback": object()}),
        dict(metrics={"f1": float("nan")}),
        dict(kind=""),
        dict(labels="O B-PER"),
        dict(aliases=("v3",)),
    ]
    for overrides in cases:
        with pytest.raises(RegistryError):
            publish(registry, artifact, **overrides)
    with pytest.raises(RegistryError, match="no files"):
        publish(registry, make_artifact(tmp_path / "empty", {}))
    with pytest.raises(RegistryError, match="not a directory"):
        publish(registry, tmp_path / "missing")
    with pytest.raises(RegistryError, match="invalid model name"):
        publish(registry, artifact, name="../evil")
    assert no_leftovers(root[0] / "ner") == []


def test_local_publish_retries_when_another_publisher_took_the_number(tmp_path, artifact, monkeypatch):
    registry = Registry(tmp_path / "registry")
    publish(registry, artifact)
    real, calls = Registry._version_dirs, []

    def stale_first_look(self, name):
        calls.append(name)
        return [] if len(calls) == 1 else real(self, name)  # as if v1 appeared after we listed

    monkeypatch.setattr(Registry, "_version_dirs", stale_first_look)
    mv = publish(registry, artifact)
    assert mv.version == 2 and mv.manifest["version"] == 2
    assert registry.resolve("ner@2").manifest["version"] == 2
    # The retry re-rendered the card for the number it finally claimed.
    assert registry.card("ner@2").startswith("# ner v2\n") and "ner@v2" in registry.card("ner@2")
    assert registry.resolve("ner@1").version == 1
    assert no_leftovers(tmp_path / "registry" / "ner") == ["v1", "v2"]
    assert len(calls) >= 2  # the collision was seen and the number re-read


def test_concurrent_local_publishers_get_distinct_versions(tmp_path, artifact):
    registry = Registry(tmp_path / "registry")
    errors: list[BaseException] = []
    results: list[int] = []

    def worker():
        try:
            results.append(publish(registry, artifact).version)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == list(range(1, 9))
    assert registry.aliases("ner") == {"latest": 8}
    assert all(registry.card(f"ner@{v}").startswith(f"# ner v{v}\n") for v in range(1, 9))
    assert no_leftovers(tmp_path / "registry" / "ner") == [f"v{i}" for i in range(1, 9)]


def test_incomplete_version_dir_is_invisible_and_skipped(registry, root, artifact):
    publish(registry, artifact)
    (root[0] / "ner" / "v2" / "artifact").mkdir(parents=True)  # a publish still in flight
    (root[0] / "ner" / "v2" / "artifact" / "model.json").write_bytes(b"partial")
    assert [v.version for v in registry.list_versions("ner")] == [1]
    with pytest.raises(ModelNotFoundError):
        registry.resolve("ner@2")
    assert publish(registry, artifact).version == 3


# -- lookups and aliases ------------------------------------------------------------

def test_unknown_names_versions_and_aliases(registry, artifact):
    with pytest.raises(ModelNotFoundError, match="no model named 'ner'.*available models: none"):
        registry.resolve("ner")
    publish(registry, artifact)
    publish(registry, artifact)
    with pytest.raises(ModelNotFoundError, match="no model named 'pos'.*available models: ner"):
        registry.resolve("pos")
    with pytest.raises(ModelNotFoundError, match="no version 7.*available versions: v1, v2; aliases: latest -> v2"):
        registry.resolve("ner@7")
    with pytest.raises(ModelNotFoundError, match="no alias 'prod'.*latest -> v2"):
        registry.resolve("ner@prod")
    with pytest.raises(ModelNotFoundError):
        registry.list_versions("pos")
    assert issubclass(ModelNotFoundError, RegistryError)


def test_set_and_delete_alias(registry, root, artifact):
    publish(registry, artifact)
    publish(registry, artifact)
    registry.set_alias("ner", "prod", 1)
    assert registry.resolve("ner@prod").version == 1
    registry.set_alias("ner", "prod", 2)
    assert registry.aliases("ner") == {"latest": 2, "prod": 2}
    registry.delete_alias("ner", "prod")
    assert registry.aliases("ner") == {"latest": 2}
    with pytest.raises(ModelNotFoundError, match="no alias 'prod'"):
        registry.resolve("ner@prod")
    with pytest.raises(ModelNotFoundError, match="no alias 'prod'"):
        registry.delete_alias("ner", "prod")
    with pytest.raises(ModelNotFoundError, match="no version 9"):
        registry.set_alias("ner", "prod", 9)
    for bad in ("3", "v3", "V3", "a b", ""):
        with pytest.raises(RegistryError, match="invalid alias"):
            registry.set_alias("ner", bad, 1)
    assert not [p for p in (root[0] / "ner").iterdir() if p.name.endswith(".tmp")]


def test_alias_to_a_missing_version_is_reported(registry, root, artifact):
    publish(registry, artifact)
    (root[0] / "ner" / "aliases.json").write_text(json.dumps({"latest": 1, "prod": 5}))
    with pytest.raises(ModelNotFoundError, match="no version 5 \\(alias 'prod' points at it\\)"):
        registry.resolve("ner@prod")


def test_latest_never_moves_backwards(registry, artifact):
    publish(registry, artifact)
    publish(registry, artifact)
    registry.set_alias("ner", "latest", 2)
    # Simulate a slow publisher of v1 finishing its alias update after v2's.
    registry._update_aliases("ner", 1, ["latest", "slow"], None, None, True)
    assert registry.aliases("ner") == {"latest": 2, "slow": 1}


def test_bad_root_uri_is_a_registry_error():
    with pytest.raises(RegistryError, match="cannot open registry root"):
        Registry("nosuchscheme://bucket/prefix")


def test_empty_registry_lists_nothing(registry):
    assert registry.list_models() == []


# -- model cards ---------------------------------------------------------------------

DATA = {"splits": {"train": {"sentences": 812, "tokens": 9431}, "test": {"sentences": 97, "tokens": 1123}},
        "vocab": {"words": 1501, "chars": 77, "labels": 3}, "inputs": [{"file": "ner.conll", "sha256": "ab", "bytes": 5}]}


def test_published_version_has_a_checksummed_model_card(registry, root, artifact, cache):
    mv = publish(registry, artifact, metrics={"test_f1": 0.8125, "dev_f1": 0.7031, "epoch": 4}, data=DATA,
                 config={"model": {"kind": "bilstm", "lstm_units": 48}, "corpus": {"format": "conll", "path": "ner.conll"}})
    path = root[0] / "ner" / "v1" / "README.md"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# ner v1\n")
    assert "`O`, `B-PER`, `I-PER`" in text  # the labels, in order
    assert "| f1 | 0.7031 | 0.8125 |" in text  # dev and test F1 side by side
    assert "| epoch | 4 |" in text
    assert "| train | 812 | 9431 |" in text and "| test | 97 | 1123 |" in text
    assert "| lstm_units | `48` |" in text and "load_tagger('ner@v1'" in text
    assert "artifact/config.yaml" in text
    assert mv.manifest["data"] == DATA
    assert mv.manifest["card"] == {"path": "README.md", "sha256": sha256_file(path), "size": path.stat().st_size}
    assert registry.card("ner") == text
    assert mv.card_uri is not None and mv.card_uri.endswith("ner/v1/README.md")
    # The card sits beside the artifact, never in it: loaders see the same files as before.
    assert read_tree(registry.fetch("ner", cache_dir=cache)) == ARTIFACT_FILES


def test_a_changed_or_missing_card_fails_its_checksum(registry, root, artifact):
    publish(registry, artifact)
    path = root[0] / "ner" / "v1" / "README.md"
    path.write_text(path.read_text() + "all entity types are perfect\n")
    with pytest.raises(ChecksumError, match="README.md") as info:
        registry.card("ner")
    assert info.value.reason.startswith("has sha256")
    if registry.is_local:
        with pytest.raises(ChecksumError, match="README.md"):
            registry.fetch("ner")
    path.unlink()
    with pytest.raises(ChecksumError, match="README.md.* is missing"):
        registry.card("ner")


def test_a_card_that_cannot_be_rendered_never_blocks_publishing(registry, root, artifact, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(reg, "render_card", broken)
    mv = publish(registry, artifact)
    assert mv.version == 1
    text = registry.card("ner")
    assert text.startswith("# ner v1") and "O, B-PER, I-PER" in text and '"f1": 0.8' in text


def test_versions_published_before_cards_still_load(registry, root, artifact, cache):
    publish(registry, artifact)
    manifest_path = root[0] / "ner" / "v1" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["card"]
    manifest_path.write_text(json.dumps(manifest))
    (root[0] / "ner" / "v1" / "README.md").unlink()
    assert read_tree(registry.fetch("ner", cache_dir=cache)) == ARTIFACT_FILES
    assert registry.resolve("ner").card_uri is None
    with pytest.raises(ModelNotFoundError, match="without a model card"):
        registry.card("ner")
