"""The Ray Data prepare pipeline on a 2-CPU local Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from raytag.config import CorpusConfig, JobConfig, PrepareConfig, SplitConfig
from raytag.errors import CorpusError
from raytag.prepare import prepare
from tests.helpers import CONLL, GMB, synthetic_conll, write


def _job(tmp_path: Path, **corpus) -> JobConfig:
    return JobConfig(name="t", workdir=str(tmp_path / "runs"), corpus=CorpusConfig(**corpus))


def _shards(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*.parquet"))}


def test_prepare_by_files_writes_manifest_and_shards(ray_local, tmp_path):
    train = write(tmp_path, "train.conll", CONLL)
    test = write(tmp_path, "test.conll", CONLL.replace("EU", "UN"))
    job = _job(tmp_path, format="conll", splits={"train": str(train), "test": str(test)},
               columns=["word", "pos", "chunk", "ner"], tag_column="ner")
    result = prepare(job, tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest == result.manifest
    assert manifest["splits"]["train"]["sentences"] == 3
    assert manifest["splits"]["train"]["tokens"] == 9
    assert manifest["splits"]["test"]["tags"]["B-ORG"] == 1
    assert manifest["labels"][0] == "O" and set(manifest["labels"]) == {"O", "B-ORG", "B-MISC", "B-PER", "I-PER", "B-LOC"}
    assert manifest["scheme"] == {"source": "iob2", "stored": "iob2"}
    assert manifest["config"]["corpus"]["tag_column"] == "ner"
    assert {i["file"] for i in manifest["inputs"]} == {str(train), str(test)}
    table = pq.read_table(tmp_path / "out" / manifest["splits"]["train"]["shards"][0])
    rows = table.to_pylist()
    assert rows[0]["tokens"] == ["EU", "rejects", "German", "call", "."]
    words = json.loads((tmp_path / "out" / "words.json").read_text())["items"]
    assert [words[i] for i in rows[0]["word_ids"]] == rows[0]["tokens"]
    labels = json.loads((tmp_path / "out" / "labels.json").read_text())["items"]
    assert [labels[i] for i in rows[0]["tag_ids"]] == rows[0]["tags"]
    # The test split's words are not in the vocabulary unless also seen in train.
    test_rows = pq.read_table(tmp_path / "out" / manifest["splits"]["test"]["shards"][0]).to_pylist()
    assert test_rows[0]["word_ids"][0] == 1  # "UN" is out of vocabulary


def test_output_identical_across_worker_counts_and_runs(ray_local, tmp_path):
    corpus = write(tmp_path, "c.conll", synthetic_conll(400))
    outputs = []
    for run, workers in enumerate((1, 2, 2)):
        job = JobConfig(
            name="t", corpus=CorpusConfig(format="conll", path=str(corpus)),
            split=SplitConfig(ratios={"train": 0.8, "dev": 0.1, "test": 0.1}, seed=3),
            prepare=PrepareConfig(num_workers=workers, chunk_bytes=2048),
        )
        outputs.append(prepare(job, tmp_path / f"out{run}").manifest)
    assert len(outputs[0]["shards"]) > 4  # the small chunk size really cut the corpus
    assert outputs[0]["fingerprint"] == outputs[1]["fingerprint"] == outputs[2]["fingerprint"]
    assert _shards(tmp_path / "out0") == _shards(tmp_path / "out1") == _shards(tmp_path / "out2")
    splits = outputs[0]["splits"]
    assert (splits["train"]["sentences"], splits["dev"]["sentences"], splits["test"]["sentences"]) == (320, 40, 40)


def test_seed_changes_the_split(ray_local, tmp_path):
    corpus = write(tmp_path, "c.conll", synthetic_conll(200))
    sids = []
    for seed in (1, 2):
        job = JobConfig(name="t", corpus=CorpusConfig(format="conll", path=str(corpus)), split=SplitConfig(seed=seed))
        out = prepare(job, tmp_path / f"s{seed}").directory
        sids.append(set(pq.read_table(out / "splits" / "test").column("sid").to_pylist()))
    assert len(sids[0]) == len(sids[1]) == 20
    assert sids[0] != sids[1]


def test_failure_leaves_no_output(ray_local, tmp_path):
    bad = write(tmp_path, "bad.conll", CONLL.replace("Peter NNP B-NP B-PER", "Peter NNP B-NP O"))
    job = _job(tmp_path, format="conll", path=str(bad), scheme="iob2")
    with pytest.raises(CorpusError) as info:
        prepare(job, tmp_path / "out")
    assert (info.value.file, info.value.line) == (str(bad), 10)
    assert "'I-PER' cannot follow 'O'" in info.value.reason
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.conll"]


def test_failure_keeps_previous_output_intact(ray_local, tmp_path):
    good = write(tmp_path, "good.conll", synthetic_conll(50))
    first = prepare(_job(tmp_path, format="conll", path=str(good)), tmp_path / "out")
    before = _shards(first.directory)
    bad = write(tmp_path, "bad.conll", "a O\nb\n")
    with pytest.raises(CorpusError):
        prepare(_job(tmp_path, format="conll", path=str(bad)), tmp_path / "out", overwrite=True)
    assert _shards(tmp_path / "out") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.conll", "good.conll", "out"]


def test_existing_output_needs_overwrite(ray_local, tmp_path):
    corpus = write(tmp_path, "c.conll", synthetic_conll(30))
    job = _job(tmp_path, format="conll", path=str(corpus))
    prepare(job, tmp_path / "out")
    with pytest.raises(FileExistsError):
        prepare(job, tmp_path / "out")
    assert prepare(job, tmp_path / "out", overwrite=True).manifest["totals"]["sentences"] == 30


def test_skip_mode_counts_errors_in_the_manifest(ray_local, tmp_path):
    text = CONLL.replace("Peter NNP B-NP B-PER", "Peter NNP B-NP O") + "\nx y\nz NN B-NP O\n"
    corpus = write(tmp_path, "c.conll", text)
    job = _job(tmp_path, format="conll", splits={"train": str(corpus)}, scheme="iob2", on_error="skip")
    manifest = prepare(job, tmp_path / "out").manifest
    errors = manifest["errors"]
    assert errors["skipped_sentences"] == 2
    assert errors["examples"] == [
        f"{corpus}:10: token 2 ('Blackburn'): 'I-PER' cannot follow 'O' under scheme iob2",
        f"{corpus}:17: expected 4 columns, found 2",
    ]
    assert manifest["splits"]["train"]["sentences"] == 2


def test_errors_name_the_same_line_however_the_file_is_chunked(ray_local, tmp_path):
    text = synthetic_conll(300)
    lines = text.split("\n")
    target = next(i for i in range(len(lines) // 2, len(lines)) if lines[i].endswith(" O") and lines[i])
    lines[target] = lines[target][: -len(" O")] + " X-PER"
    corpus = write(tmp_path, "c.conll", "\n".join(lines))
    for chunk_bytes in (1024, 1 << 20):
        job = JobConfig(name="t", corpus=CorpusConfig(format="conll", path=str(corpus), scheme="iob2"),
                        prepare=PrepareConfig(chunk_bytes=chunk_bytes))
        with pytest.raises(CorpusError) as info:
            prepare(job, tmp_path / "out")
        assert info.value.line == target + 1
        assert "invalid tag 'X-PER'" in info.value.reason


def test_gmb_csv_and_iob1_conversion(ray_local, tmp_path):
    gmb = write(tmp_path, "g.csv", GMB, encoding="latin-1")
    job = _job(tmp_path, format="gmb_csv", splits={"train": str(gmb)}, encoding="latin-1")
    manifest = prepare(job, tmp_path / "g").manifest
    assert manifest["splits"]["train"]["tokens"] == 15
    iob1 = write(tmp_path, "iob1.txt", "a I-PER\nb I-PER\nc B-PER\n\nd O\ne I-LOC\n")
    out = prepare(_job(tmp_path, format="conll", splits={"train": str(iob1)}), tmp_path / "i").directory
    rows = pq.read_table(out / "splits" / "train").to_pylist()
    assert [r["tags"] for r in rows] == [["B-PER", "I-PER", "B-PER"], ["O", "B-LOC"]]


def test_undecodable_bytes_through_the_pipeline(ray_local, tmp_path):
    path = tmp_path / "g.csv"
    path.write_bytes(GMB.replace("London", "Zürich").encode("latin-1"))
    with pytest.raises(CorpusError) as info:
        prepare(_job(tmp_path, format="gmb_csv", path=str(path), encoding="utf-8"), tmp_path / "out")
    assert info.value.byte_offset == path.read_bytes().index(b"\xfc")
    assert not (tmp_path / "out").exists()


def test_cli_prepare_prints_statistics(ray_local, tmp_path):
    from raytag.cli import app

    corpus = write(tmp_path, "c.conll", synthetic_conll(40))
    config = tmp_path / "job.yaml"
    config.write_text(f"name: cli\ncorpus:\n  format: conll\n  path: {corpus}\n")
    result = CliRunner().invoke(app, ["prepare", str(config), "--out", str(tmp_path / "o"), "--set", "split.seed=9"])
    assert result.exit_code == 0, result.output
    assert "train" in result.output and "36" in result.output
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["config"]["split"]["seed"] == 9
    bad = CliRunner().invoke(app, ["prepare", str(config), "--out", str(tmp_path / "o")])
    assert bad.exit_code == 2 and "exists" in bad.output  # a user error


def test_document_context_windows_survive_chunking_and_splits(ray_local, tmp_path):
    from raytag.config import TransformerConfig
    from raytag.corpus.prepared import PreparedCorpus
    from raytag.corpus.readers import ReaderOptions, read_sentences
    from raytag.models.transformer import load_tokenizer
    from raytag.subword_stage import WINDOW_COLUMNS, encode_windows
    from tests.helpers import tiny_encoder

    text = synthetic_conll(240, seed=5, document_every=9)
    corpus = write(tmp_path, "c.conll", text)
    encoder = tiny_encoder(tmp_path / "encoder", ["alpha", "beta", "gamma", "said", "the", "ada", "paris"])
    job = JobConfig(
        name="ctx", corpus=CorpusConfig(format="conll", path=str(corpus)),
        split=SplitConfig(ratios={"train": 0.8, "dev": 0.2}, seed=1),
        # Small chunks: without document-aligned cuts most documents would straddle two.
        prepare=PrepareConfig(num_workers=2, chunk_bytes=1024),
        model=TransformerConfig(encoder=str(encoder), max_length=24, stride=2, context=6),
    )
    prepared = PreparedCorpus(prepare(job, tmp_path / "out").directory)
    assert prepared.manifest["stages"]["subwords"]["context"] == 6
    read = read_sentences(text.encode(), ReaderOptions(format="conll"), "c.conll")
    document_of = {s.line: s.document for s in read}
    tokenizer = load_tokenizer(prepared.directory / "tokenizer")
    shards_of: dict[int, set[str]] = {}
    for split in prepared.splits:
        table = prepared.table(split)
        assert len(prepared.manifest["splits"][split]["shards"]) > 3  # really cut into chunks
        # Document ids follow the -DOCSTART- lines, whichever chunk a sentence was parsed in.
        assert [document_of[line] for line in table.column("line").to_pylist()] == \
            [d & ((1 << 40) - 1) for d in table.column("document").to_pylist()]
        for path in prepared.shard_paths(split):
            for document in set(pq.read_table(path, columns=["document"]).column("document").to_pylist()):
                shards_of.setdefault(document, set()).add(path.rpartition("part-")[2])
        # The windows cut chunk by chunk on Ray equal those cut from the whole split at once.
        whole = encode_windows(table.select(["sid", "document", "tokens", "tag_ids"]), tokenizer, 24, 2,
                               False, context=6)
        for name in WINDOW_COLUMNS:
            assert table.column(name).to_pylist() == whole.column(name).to_pylist(), name
        ids = [w for ws in table.column("window_input_ids").to_pylist() for w in ws]
        assert all(len(w) <= 24 for w in ids)
        labelled = sum(x != -100 for ws in table.column("window_labels").to_pylist() for w in ws for x in w)
        assert labelled == sum(len(t) for t in table.column("tokens").to_pylist())
        assert sum(len(w) for w in ids) > 1.5 * sum(len(t) + 2 for t in table.column("tokens").to_pylist())
    # Each document sits in one chunk (its sentences of both splits in that chunk's shards).
    assert len(shards_of) == 240 // 9 + 1 and all(len(chunks) == 1 for chunks in shards_of.values())
