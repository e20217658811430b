"""Batch prediction without Ray: finding inputs, records per format, bad rows, tagging and shards."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raytag.batch_inputs import BatchInputError, InputOptions, detect_format, expand_inputs, parse_records, read_records
from raytag.batch_predict import (
    BatchOptions,
    BatchPredictError,
    _merge_rejects,
    output_rows,
    record_rows,
    tag_rows,
    write_shard,
)
from raytag.decoding import EntitySpan, tokenize_with_offsets

OPTS = InputOptions()


@pytest.mark.parametrize(("name", "given", "expected"), [
    ("a.txt", None, "text"), ("a.JSONL", None, "jsonl"), ("a.ndjson.gz", None, "jsonl"),
    ("s3://b/k/a.parquet", None, "parquet"), ("a.conll", None, "conll"), ("a.iob", None, "conll"),
    ("a.txt", "jsonl", "jsonl"),
])
def test_format_by_extension_or_given(name, given, expected):
    assert detect_format(name, given) == expected


def test_unknown_format_and_bad_options_are_user_errors():
    with pytest.raises(BatchInputError, match="unknown input format 'xml'"):
        InputOptions(format="xml")
    with pytest.raises(BatchInputError, match="token column index"):
        InputOptions(format="conll", column="word")
    with pytest.raises(BatchPredictError, match="--batch-size must be at least 1"):
        BatchOptions(batch_size=0)
    with pytest.raises(BatchPredictError, match="unknown output format 'csv'"):
        BatchOptions(output_format="csv")


def test_expand_paths_directories_globs_and_uris(tmp_path):
    for name in ("b.txt", "a.txt", "c.jsonl", ".hidden"):
        (tmp_path / name).write_text("x\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "z.txt").write_text("z\n")
    files = expand_inputs([str(sub), str(tmp_path / "*.txt"), f"file://{tmp_path}/*.jsonl"])
    assert files == [str(sub / "z.txt"), str(tmp_path / "a.txt"), str(tmp_path / "b.txt"),
                     f"file://{tmp_path}/c.jsonl"]
    with pytest.raises(BatchInputError, match="missing.txt: no such file"):
        expand_inputs([str(tmp_path / "missing.txt")])
    with pytest.raises(BatchInputError, match="no file matches"):
        expand_inputs([f"file://{tmp_path}/*.parquet"])
    with pytest.raises(BatchInputError, match="no file matches"):
        expand_inputs([str(tmp_path / "*.conll")])


def _summary(records):
    return [(r.line, r.row, r.text, r.tokens, r.fields, r.reject) for r in records]


def test_text_keeps_every_line_and_rejects_undecodable_and_long_ones():
    data = "\ufeffAda lives in Paris.\n\n".encode() + b"caf\xe9\r\n" + b"x" * 11 + b"\nlast"
    records = parse_records(data, "in.txt", "text", InputOptions(max_chars=10))
    assert [(r.line, r.row) for r in records] == [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4)]
    assert records[0].reject == "text has 19 characters, over --max-chars 10"
    assert records[1].text == "" and records[1].reject is None
    assert records[2].reject == "cannot decode byte 0xe9 (column 4) as utf-8"
    assert records[3].reject.startswith("text has 11 characters")
    assert (records[4].text, records[4].reject) == ("last", None)
    assert records[2].where == "in.txt:3"


def test_jsonl_keeps_fields_and_rejects_bad_lines_in_place():
    lines = [
        json.dumps({"id": "a", "text": "Ada in Paris", "meta": {"k": [1, 2]}}),
        "",
        "{not json",
        json.dumps({"id": "c", "body": "no text field"}),
        json.dumps(["a", "list"]),
        json.dumps({"id": "e", "tokens": ["Grace", "Hopper"]}),
        json.dumps({"id": "f", "text": 7}),
        json.dumps({"id": "g", "tokens": ["two words"]}),
    ]
    records = parse_records("\n".join(lines).encode(), "in.jsonl", "jsonl", OPTS)
    assert _summary(records) == [
        (1, 0, "Ada in Paris", None, {"id": "a", "meta": {"k": [1, 2]}}, None),
        (3, 1, "", None, {}, "not valid JSON: Expecting property name enclosed in double quotes (column 2)"),
        (4, 2, "", None, {}, "line has no 'text' or 'tokens' field"),
        (5, 3, "", None, {}, "line is a JSON list, not an object"),
        (6, 4, "Grace Hopper", ["Grace", "Hopper"], {"id": "e"}, None),
        (7, 5, "", None, {}, "field 'text' is neither a string nor a list of strings"),
        (8, 6, "", None, {}, "field 'tokens' holds an empty token or one with whitespace"),
    ]
    custom = parse_records(lines[3].encode(), "in.jsonl", "jsonl", InputOptions(column="body"))
    assert (custom[0].text, custom[0].fields, custom[0].reject) == ("no text field", {"id": "c"}, None)


def test_conll_sentences_by_blank_lines_from_a_column():
    data = (b"-DOCSTART- -X- O\n\nEU NNP B-ORG\nrejects VBZ O\n\n\nPeter NNP B-PER\nBlack\xff NNP I-PER\n\n"
            b"only\nBRUSSELS NNP B-LOC\n")
    records = parse_records(data, "in.conll", "conll", OPTS)
    assert _summary(records) == [
        (3, 0, "EU rejects", ["EU", "rejects"], {}, None),
        (7, 1, "", None, {}, "line 8: cannot decode byte 0xff (column 6) as utf-8"),
        (10, 2, "only BRUSSELS", ["only", "BRUSSELS"], {}, None),
    ]
    tags = parse_records(data, "in.conll", "conll", InputOptions(column="2"))
    assert tags[0].tokens == ["B-ORG", "O"]
    assert tags[2].reject == "line 10 has 1 columns; the token column is 2"


def test_parquet_column_and_null_rows(tmp_path):
    table = pa.table({"id": [1, 2, 3], "text": ["Ada in Paris", None, "Lima"], "when": ["x", "y", "z"]})
    path = tmp_path / "in.parquet"
    pq.write_table(table, path)
    records = read_records(str(path), "parquet", OPTS)
    assert _summary(records) == [
        (None, 0, "Ada in Paris", None, {"id": 1, "when": "x"}, None),
        (None, 1, "", None, {}, "column 'text' is null"),
        (None, 2, "Lima", None, {"id": 3, "when": "z"}, None),
    ]
    assert records[1].where == f"{path} row 1"
    missing = read_records(str(path), "parquet", InputOptions(column="body"))
    assert len(missing) == 1 and missing[0].reject.startswith("Parquet file has no 'body' field")


def test_unreadable_file_is_one_reject_and_gzip_is_read(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    [record] = read_records(str(bad), "parquet", OPTS)
    assert record.row == -1 and record.reject.startswith("cannot read as parquet")
    packed = tmp_path / "in.txt.gz"
    packed.write_bytes(gzip.compress(b"a\nb\n"))
    assert [r.text for r in read_records(str(packed), "text", OPTS)] == ["a", "b"]


class WordTagger:
    """Tags capitalised words as PER; raises on any text containing 'boom'."""

    def predict(self, inputs, batch_size=64):
        out = []
        for item in inputs:
            text = item if isinstance(item, str) else " ".join(item)
            if "boom" in text:
                raise ValueError("boom")
            words, offsets = tokenize_with_offsets(text)
            tags = ["B-PER" if w[:1].isupper() else "O" for w in words]
            spans = [EntitySpan("PER", 1.0, w, s, e) for w, (s, e), t in zip(words, offsets, tags) if t != "O"]
            out.append(SimpleNamespace(entities=spans, tags=tags, tokens=words))
        return out


def _rows():
    records = parse_records(
        b'{"id": 1, "text": "Ada met Alan"}\n{"id": 2}\n{"id": 3, "text": "a boom here"}\n'
        b'{"id": 4, "tokens": ["Grace", "x"]}\n', "in.jsonl", "jsonl", OPTS)
    return record_rows(records, file_index=3)


def test_tag_rows_skips_rejects_and_isolates_a_failing_row():
    tagged = tag_rows(WordTagger(), _rows())
    assert [r["row"] for r in tagged] == [0, 1, 2, 3]
    assert [r["reject"] for r in tagged] == [None, "line has no 'text' or 'tokens' field",
                                             "tagger failed: ValueError: boom", None]
    assert tagged[0]["entities"] == [{"entity_group": "PER", "score": 1.0, "word": "Ada", "start": 0, "end": 3},
                                     {"entity_group": "PER", "score": 1.0, "word": "Alan", "start": 8, "end": 12}]
    assert tagged[0]["tags"] == ["B-PER", "O", "B-PER"] and tagged[0]["words"] == 3
    assert tagged[3]["tags"] == ["B-PER", "O"]


def test_output_rows_keep_fields_and_add_position():
    tagged = [r for r in tag_rows(WordTagger(), _rows()) if r["reject"] is None]
    jsonl = output_rows(tagged, with_tags=True, output_format="jsonl")
    assert list(jsonl[0]) == ["id", "source", "line", "row", "text", "entities", "tags"]
    assert (jsonl[0]["id"], jsonl[0]["line"], jsonl[1]["id"], jsonl[1]["tokens"]) == (1, 1, 4, ["Grace", "x"])
    parquet = output_rows(tagged, with_tags=False, output_format="parquet")
    assert "tags" not in parquet[0] and json.loads(parquet[0]["fields"]) == {"id": 1}


def test_write_shard_sets_rejects_aside_and_merge_orders_them(tmp_path):
    out = str(tmp_path / "out")
    Path(out).mkdir()
    rows = tag_rows(WordTagger(), _rows())
    written = write_shard(rows, out, "jsonl", with_tags=False)
    assert written["shard"] == "part-00003-0000000000.jsonl"
    assert (written["rows"], written["rejects"], written["words"]) == (2, 2, 5)
    lines = [json.loads(x) for x in (tmp_path / "out" / written["shard"]).read_text().splitlines()]
    assert [x["id"] for x in lines] == [1, 4]
    earlier = record_rows(parse_records(b"\xff\n", "a.txt", "text", OPTS), file_index=0)
    write_shard([{**r, "entities": [], "tags": [], "words": 0} for r in earlier], out, "parquet", with_tags=False)
    merged = _merge_rejects(out)
    rejects = [json.loads(x) for x in Path(merged).read_text().splitlines()]
    assert [(r["where"], r["row"]) for r in rejects] == [("a.txt:1", 0), ("in.jsonl:2", 1), ("in.jsonl:3", 2)]
    assert sorted(p.name for p in Path(out).iterdir()) == ["part-00003-0000000000.jsonl", "rejects.jsonl"]


def test_write_shard_parquet(tmp_path):
    rows = tag_rows(WordTagger(), _rows())
    written = write_shard(rows, str(tmp_path), "parquet", with_tags=True)
    table = pq.read_table(tmp_path / written["shard"])
    assert table.column("row").to_pylist() == [0, 3]
    assert table.column("tags").to_pylist() == [["B-PER", "O", "B-PER"], ["B-PER", "O"]]
    assert table.column("entities").to_pylist()[1] == [
        {"entity_group": "PER", "score": 1.0, "word": "Grace", "start": 0, "end": 5}]


def test_the_stages_chain_without_ray(tmp_path):
    """read → tag → write as the Ray stages call them, on the tiny tagger: Arrow schemas and alignment."""
    import numpy as np

    from raytag.batch_predict import TaggerActor, _read_stage, _write_stage, plan_batch
    from raytag.tagger import load_tagger
    from tests.helpers import publish_bilstm

    publish_bilstm(tmp_path / "registry", "tiny")
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"id": 1, "text": "my name is wolfgang"}\n\xff\n{"id": 3, "tokens": ["i", "live"]}\n')
    plan = plan_batch([str(source)], tmp_path / "out", "tiny", registry_root=str(tmp_path / "registry"))
    assert plan.ref == "tiny@v1" and plan.files == [str(source)]
    table = _read_stage({"file_index": np.array([0]), "source": np.array(plan.files), "format": np.array(["jsonl"])},
                        InputOptions())
    tagged = TaggerActor(plan.ref, plan.registry_root, "cpu", 2)(table)
    written = _write_stage(tagged, plan.out, "jsonl", True).to_pylist()[0]
    assert (written["rows"], written["rejects"], written["words"]) == (2, 1, 6)
    rows = [json.loads(x) for x in (tmp_path / "out" / written["shard"]).read_text().splitlines()]
    expected = load_tagger("tiny", str(tmp_path / "registry")).predict(["my name is wolfgang", ["i", "live"]])
    assert [r["id"] for r in rows] == [1, 3]
    assert [r["tags"] for r in rows] == [e.tags for e in expected]


def test_actor_cpus_leave_one_cpu_for_reading_and_writing() -> None:
    from raytag.batch_predict import BatchOptions, BatchPredictError, actor_cpus

    assert actor_cpus(BatchOptions(concurrency=1), 2.0) == 1.0
    assert actor_cpus(BatchOptions(concurrency=2), 2.0) == 0.5
    assert actor_cpus(BatchOptions(concurrency=2), 16.0) == 1.0
    assert actor_cpus(BatchOptions(concurrency=3, num_cpus=2.0), 8.0) == 2.0
    with pytest.raises(BatchPredictError, match="leave no CPU"):
        actor_cpus(BatchOptions(concurrency=2, num_cpus=1.0), 2.0)
    with pytest.raises(BatchPredictError, match="at least 2 CPUs"):
        actor_cpus(BatchOptions(), 1.0)
    with pytest.raises(BatchPredictError, match="above 0"):
        BatchOptions(num_cpus=0)


def test_actor_threads_share_the_cores_between_actors() -> None:
    from raytag.batch_predict import BatchOptions, actor_threads

    assert actor_threads(BatchOptions(concurrency=1), 2.0) == 2
    assert actor_threads(BatchOptions(concurrency=2), 2.0) == 1
    assert actor_threads(BatchOptions(concurrency=3), 16.0) == 5
    assert actor_threads(BatchOptions(concurrency=4), 2.0) == 1
