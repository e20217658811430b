"""Unit tests for raytag.corpus.transforms on hand-made Arrow tables (no Ray)."""

from __future__ import annotations

import bisect
import json
import random

import numpy as np
import pyarrow as pa
import pytest

from raytag.config import SplitConfig
from raytag.corpus import columnar
from raytag.corpus.chunks import document_starts
from raytag.corpus.readers import (
    ReaderOptions,
    parse_chunk,
    read_corpus,
    read_header,
    read_sentences,
    split_chunks,
    structural_problem,
)
from raytag.corpus.transforms import (
    LINE_BITS,
    SENTENCE_SCHEMA,
    assign_layout,
    assign_splits,
    encode_words,
    merge_counts,
    merge_evidence,
    parse_chunks,
    scheme_evidence,
    sentence_id,
    split_counts,
    split_keys,
    statistics,
    validate_tags,
)
from raytag.corpus.vocab import OOV_ID, Vocabulary
from tests.helpers import CONLL, GMB, synthetic_conll, write

CONLL_OPTS = ReaderOptions(format="conll", columns=("word", "pos", "chunk", "ner"), token_column="word", tag_column="ner")
GMB_OPTS = ReaderOptions(format="gmb_csv", encoding="latin-1", token_column="Word", tag_column="Tag")
LIST = pa.list_(pa.string())


# --- split sizes and assignment ---------------------------------------------------------------


def test_split_counts_exact_workshop_numbers():
    assert split_counts(47_959, {"train": 0.9, "test": 0.1}) == {"train": 43_163, "test": 4_796}


@pytest.mark.parametrize(
    "total,ratios,expected",
    [
        (10, {"train": 0.8, "dev": 0.1, "test": 0.1}, {"train": 8, "dev": 1, "test": 1}),
        (0, {"train": 0.9, "test": 0.1}, {"train": 0, "test": 0}),
        (1, {"a": 0.5, "b": 0.5}, {"a": 1, "b": 0}),  # equal remainders: the first split wins
        (3, {"a": 0.5, "b": 0.5}, {"a": 2, "b": 1}),
        (3, {"b": 0.5, "a": 0.5}, {"b": 2, "a": 1}),
        (7, {"x": 1.0}, {"x": 7}),
        (100, {"a": 0.29, "b": 0.71}, {"a": 29, "b": 71}),  # 100 * 0.29 == 28.999999999999996
    ],
)
def test_split_counts_cases(total, ratios, expected):
    counts = split_counts(total, ratios)
    assert counts == expected
    assert list(counts) == list(ratios)


def test_split_counts_always_sum_to_total():
    rng = random.Random(0)
    for _ in range(500):
        weights = [rng.random() + 0.01 for _ in range(rng.randint(1, 5))]
        ratios = SplitConfig(ratios={f"s{i}": w / sum(weights) for i, w in enumerate(weights)}).ratios
        total = rng.choice([0, 1, 2, 3, 10, 99, rng.randint(0, 10_000_000)])
        counts = split_counts(total, ratios)
        assert sum(counts.values()) == total
        for name, r in ratios.items():
            # Largest remainder: every split is within one of its exact share.
            assert abs(counts[name] - total * r) < 1 + 1e-6


def test_split_counts_sum_with_ratios_inside_the_config_tolerance():
    ratios = SplitConfig(ratios={"train": 0.9, "test": 0.0999995}).ratios  # accepted: sums to 0.9999995
    assert sum(split_counts(10_000_000, ratios).values()) == 10_000_000


def _sids(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    files = rng.integers(0, 3, n)
    lines = rng.choice(np.arange(1, 50 * n), n, replace=False)
    return ((files.astype(np.int64) << LINE_BITS) | lines).astype(np.int64)


def _keys(sids: np.ndarray, seed: int) -> np.ndarray:
    table = split_keys(pa.table({"sid": pa.array(sids, pa.int64())}), seed)
    assert table.column("sid").to_numpy().tolist() == sids.tolist()
    return table.column("key").to_numpy()


def test_split_keys_deterministic_and_seeded():
    sids = _sids(500)
    keys1, keys2 = _keys(sids, 1), _keys(sids, 2)
    assert keys1.dtype == np.int64
    assert (keys1 >= 0).all()  # shifted to fit a signed 64-bit column
    assert np.array_equal(keys1, _keys(sids, 1))
    assert not np.array_equal(keys1, keys2)
    assert len(np.unique(keys1)) == len(sids)
    # A key depends on the sentence only, not on its neighbours in the batch.
    assert _keys(sids[::-1].copy(), 1).tolist() == keys1[::-1].tolist()


RATIOS = {"train": 0.8, "dev": 0.1, "test": 0.1}


def test_assign_splits_partition():
    sids = _sids(1_001)
    out = assign_splits(sids, _keys(sids, 1), RATIOS)
    assert list(out) == ["train", "dev", "test"]
    assert {k: len(v) for k, v in out.items()} == split_counts(len(sids), RATIOS)
    together = np.concatenate(list(out.values()))
    assert len(np.unique(together)) == len(together)  # disjoint
    assert set(together.tolist()) == set(sids.tolist())  # covering
    for members in out.values():
        assert np.all(np.diff(members) > 0)  # sorted, as assign_layout needs


def test_assign_splits_deterministic_and_order_independent():
    sids = _sids(800)
    keys = _keys(sids, 1)
    reference = assign_splits(sids, keys, RATIOS)
    again = assign_splits(sids.copy(), keys.copy(), RATIOS)
    assert all(np.array_equal(reference[k], again[k]) for k in RATIOS)
    rng = np.random.default_rng(3)
    for _ in range(5):
        perm = rng.permutation(len(sids))
        shuffled = assign_splits(sids[perm], keys[perm], RATIOS)
        assert all(np.array_equal(reference[k], shuffled[k]) for k in RATIOS)


def test_assign_splits_ties_in_keys_break_by_sid():
    sids = np.array([50, 10, 40, 20, 30], dtype=np.int64)
    keys = np.zeros(5, dtype=np.int64)
    out = assign_splits(sids, keys, {"a": 0.4, "b": 0.6})
    assert out["a"].tolist() == [10, 20] and out["b"].tolist() == [30, 40, 50]


def test_assign_splits_follows_the_keys():
    sids = np.arange(10, dtype=np.int64)
    keys = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0], dtype=np.int64)
    out = assign_splits(sids, keys, {"train": 0.7, "test": 0.3})
    assert out["test"].tolist() == [0, 1, 2]  # largest keys rank last
    assert out["train"].tolist() == [3, 4, 5, 6, 7, 8, 9]


def test_assign_splits_differs_with_seed():
    sids = _sids(1_000)
    one = assign_splits(sids, _keys(sids, 1), RATIOS)
    two = assign_splits(sids, _keys(sids, 2), RATIOS)
    assert {k: len(v) for k, v in one.items()} == {k: len(v) for k, v in two.items()}
    assert not np.array_equal(one["test"], two["test"])
    # Independent seeds overlap about as much as chance says (10% of 10% of 1000 = 10).
    assert len(np.intersect1d(one["test"], two["test"])) < 40


def test_sentence_id():
    assert sentence_id(0, 7) == 7
    assert sentence_id(2, 5) == (2 << LINE_BITS) | 5
    assert sentence_id(1, 1) > sentence_id(0, (1 << LINE_BITS) - 1)


# --- parsing chunk rows -----------------------------------------------------------------------


def chunk_table(files: list[tuple[str, bytes, str | None]], options: ReaderOptions, target: int,
                whole_documents: bool = False):
    """Chunk rows as the prepare stage builds them, plus each file's header."""
    rows, headers = [], {}
    for index, (name, data, split) in enumerate(files):
        headers[index] = read_header(data, options, name)
        markers = document_starts(data, options.encoding, options.separator) if options.format == "conll" else []
        offsets = [offset for offset, _ in markers]
        for chunk in split_chunks(data, options.format, target, skip_header=options.format == "gmb_csv",
                                  documents=offsets if whole_documents else None):
            before = bisect.bisect_left(offsets, chunk.start)
            rows.append({
                "chunk": len(rows), "file_index": index, "file": name, "split": split,
                "start": chunk.start, "first_line": chunk.first_line,
                "document_line": markers[before - 1][1] if before else 0, "data": data[chunk.start : chunk.end],
            })
    return pa.Table.from_pylist(rows), headers


def expected_rows(files: list[tuple[str, bytes, str | None]], options: ReaderOptions) -> list[dict]:
    """What parse_chunks must produce, from the plain whole-file reader."""
    out = []
    for index, (name, data, split) in enumerate(files):
        for s in read_sentences(data, options, name):
            error = structural_problem(s)
            out.append({
                "sid": sentence_id(index, s.line), "file": name, "line": s.line, "split": split,
                "document": sentence_id(index, s.line if s.document is None else s.document),
                "tokens": s.tokens, "tags": s.tags, "error": error,
                "error_line": None if error is None else (s.error_line if s.error_line is not None else s.line),
            })
    return out


def parsed_rows(table: pa.Table) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "chunk"} for row in table.to_pylist()]


def test_parse_chunks_conll_hand_made_row():
    data = CONLL.encode()
    batch = pa.Table.from_pylist([
        {"chunk": 0, "file_index": 0, "file": "a.conll", "split": "train", "start": 0, "first_line": 1, "data": data}
    ])
    headers = {0: read_header(data, CONLL_OPTS, "a.conll")}
    out = parse_chunks(batch, CONLL_OPTS, headers)
    assert out.schema == SENTENCE_SCHEMA
    assert out.column("tokens").to_pylist() == [
        ["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn"], ["BRUSSELS", "1996-08-22"]
    ]
    assert out.column("tags").to_pylist()[1] == ["B-PER", "I-PER"]
    assert out.column("line").to_pylist() == [3, 9, 14]
    assert out.column("sid").to_pylist() == [3, 9, 14]
    assert out.column("split").to_pylist() == ["train"] * 3
    assert out.column("error").null_count == 3
    assert parsed_rows(out) == expected_rows([("a.conll", data, "train")], CONLL_OPTS)


@pytest.mark.parametrize("target", [1, 40, 200, 1 << 20])
def test_parse_chunks_conll_matches_read_sentences(target):
    bad = "x NN B-NP O\ny NN O\n\nz NN B-NP B-PER\n"  # line 2 has three columns
    files = [
        ("a.conll", CONLL.encode(), "train"),
        ("b.conll", synthetic_conll(30, seed=1).encode(), "dev"),
        ("c.conll", (CONLL + "\n" + bad).encode(), None),
    ]
    table, headers = chunk_table(files, CONLL_OPTS, target)
    if target <= 40:
        assert table.num_rows > len(files)  # really cut into several chunks per file
    out = parse_chunks(table, CONLL_OPTS, headers)
    expected = expected_rows(files, CONLL_OPTS)
    assert parsed_rows(out) == expected
    errors = [r for r in expected if r["error"]]
    assert [(r["file"], r["error_line"], r["error"]) for r in errors] == [("c.conll", 18, "expected 4 columns, found 3")]
    assert out.column("sid").to_pylist() == [sentence_id(["a.conll", "b.conll", "c.conll"].index(r["file"]), r["line"]) for r in expected]


GMB_EXTRA = (
    "Sentence: 4,caf\xe9,NN,O\r\n"
    ",\x85,:,O\r\n"
    "Sentence: 5, ,NN,O\r\n"
    "Sentence: 6,Paris,NNP,B-geo,extra\r\n"
    ",is,VBZ,O\r\n"
    "Sentence: 7,ok,JJ,O\r\n"
)


@pytest.mark.parametrize("target", [1, 60, 1 << 20])
@pytest.mark.parametrize("text", [GMB, GMB + GMB_EXTRA, GMB + "\r\n", GMB.replace(",of,IN,O\r\n", ",of,IN,O\r\n\r\n")],
                         ids=["sample", "extra", "trailing-blank", "inner-blank"])
def test_parse_chunks_gmb_matches_read_sentences(text, target):
    data = text.encode("latin-1")
    files = [("g.csv", data, None), ("h.csv", GMB.encode("latin-1"), "test")]
    table, headers = chunk_table(files, GMB_OPTS, target)
    out = parse_chunks(table, GMB_OPTS, headers)
    assert parsed_rows(out) == expected_rows(files, GMB_OPTS)
    first = out.to_pylist()[0]
    assert first["line"] == 2 and first["tokens"][:2] == ["Thousands", "of"]


def test_parse_chunks_gmb_values():
    data = (GMB + GMB_EXTRA).encode("latin-1")
    table, headers = chunk_table([("g.csv", data, None)], GMB_OPTS, 1 << 20)
    rows = parse_chunks(table, GMB_OPTS, headers).to_pylist()
    assert [r["line"] for r in rows] == [2, 9, 13, 17, 19, 20, 22]
    assert rows[1]["tokens"] == ["Families", ",", "Iranian", "officials"]
    assert rows[2]["tokens"] == ['"', "Mr.", "Bush", '"']
    assert rows[2]["tags"] == ["O", "B-per", "I-per", "O"]
    assert rows[3]["tokens"] == ["café", "\x85"]  # latin-1, and U+0085 is a token, not a line break
    assert (rows[4]["error"], rows[4]["error_line"]) == ("empty token", 19)
    assert (rows[5]["error"], rows[5]["error_line"]) == ("expected 4 columns, found 5", 20)
    assert rows[6]["error"] is None


def test_parse_chunks_empty_batch():
    empty = pa.table({
        "chunk": pa.array([], pa.int64()), "file_index": pa.array([], pa.int64()), "file": pa.array([], pa.string()),
        "split": pa.array([], pa.string()), "start": pa.array([], pa.int64()), "first_line": pa.array([], pa.int64()),
        "data": pa.array([], pa.binary()),
    })
    out = parse_chunks(empty, CONLL_OPTS, {})
    assert out.num_rows == 0 and out.schema == SENTENCE_SCHEMA


# --- the Arrow CSV fast path ------------------------------------------------------------------

GMB_HEADER = read_header(b"Sentence #,Word,POS,Tag\n", GMB_OPTS, "g.csv")


def plain_csv(text: str, first_line: int) -> tuple:
    sentences = parse_chunk(text, GMB_OPTS, GMB_HEADER, "g.csv", first_line)
    errors = [structural_problem(s) for s in sentences]
    return (
        [s.line for s in sentences],
        [s.tokens for s in sentences],
        [s.tags for s in sentences],
        errors,
        [None if e is None else (s.error_line if s.error_line is not None else s.line) for s, e in zip(sentences, errors)],
    )


def fast_csv(text: str, first_line: int) -> tuple | None:
    parsed = columnar.parse_csv_chunk(text, GMB_HEADER, first_line)
    if parsed is None:
        return None
    lines, tokens, tags, errors, error_lines = parsed
    return list(lines), tokens.to_pylist(), tags.to_pylist(), list(errors), list(error_lines)


@pytest.mark.parametrize(
    "text",
    [
        GMB.split("\r\n", 1)[1],
        GMB.split("\r\n", 1)[1].replace("\r\n", "\n"),
        GMB.split("\r\n", 1)[1].rstrip("\r\n"),  # no final newline
        "S1,a,NN,O\n,,NN,O\n,b,NN,B-x\n",  # an empty token
        'S1,"a,b",NN,O\n," q ",NN,""\n',  # quoted commas, an empty tag (not a parse error)
        'S1,a"b,NN,O\nS2,"x""y",NN,O\n',
    ],
)
def test_csv_fast_path_agrees_with_plain_parser(text):
    fast = fast_csv(text, 5)
    assert fast is not None
    assert fast == plain_csv(text, 5)


def test_csv_fast_path_random_agreement():
    import csv
    import io

    words = ["a", ",", '"', "Mr.", " ", "", "x y", "''", '"a"', "\x85", "café", "\t", "O"]
    fast_count = 0
    for seed in range(150):
        rng = random.Random(seed)
        rows = []
        for s in range(rng.randint(1, 4)):
            for j in range(rng.randint(1, 4)):
                sid = f"Sentence: {s}" if j == 0 else rng.choice(["", " "])
                rows.append([sid, rng.choice(words), "NN", rng.choice(["O", "B-geo", "I-geo", ""])])
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator=rng.choice(["\r\n", "\n"])).writerows(rows)
        text = buffer.getvalue()
        first_line = rng.randint(2, 1000)
        fast = fast_csv(text, first_line)
        if fast is not None:
            fast_count += 1
            assert fast == plain_csv(text, first_line), text
    assert fast_count > 100  # regular CSV takes the fast path


@pytest.mark.parametrize(
    "text",
    [
        "S1,a,NN,O\n,b,NN\n",  # too few columns
        "S1,a,NN,O\n,b,NN,O,extra\n",  # too many columns
        ",a,NN,O\nS2,b,NN,O\n",  # a row before the first sentence id
        'S1,"a\nb",NN,O\n',  # a quoted newline
        "S1,a,NN,O\n\n,b,NN,O\n",  # a blank line inside a sentence
        "S1,a,NN,O\n\n",  # a trailing blank line
        "\nS1,a,NN,O\n",  # a leading blank line
        "S1,a,NN,O\r\n\r\nS2,b,NN,O\r\n",
        "S1,a,NN,O\n \n",  # a whitespace-only line
    ],
)
def test_csv_fast_path_declines_irregular_chunks(text):
    assert fast_csv(text, 2) is None
    plain_csv(text, 2)  # the plain parser handles them (and names the line when it is an error)


def test_csv_fast_path_error_lines():
    text = "S1,a,NN,O\nS2,b,NN,O\n, ,NN,O\n,c,NN,O\nS3,\t,NN,O\n"
    fast = fast_csv(text, 10)
    assert fast == plain_csv(text, 10)
    assert fast[3] == [None, "empty token", "empty token"]
    assert fast[4] == [None, 11, 14]  # the sentence's first line, as the plain reader reports it


# --- scheme evidence and validation -----------------------------------------------------------


def sentence_table(rows: list[dict]) -> pa.Table:
    full = []
    for i, row in enumerate(rows):
        full.append({
            "sid": row.get("sid", i), "chunk": 0, "file": "f", "line": row.get("line", 10 * i + 1),
            "split": row.get("split"), "tokens": row.get("tokens", [f"w{j}" for j in range(len(row["tags"]))]),
            "tags": row["tags"], "error": row.get("error"), "error_line": row.get("error_line"),
        })
    return pa.Table.from_pylist(full, schema=SENTENCE_SCHEMA)


def test_scheme_evidence_ignores_sentences_with_errors():
    batch = sentence_table([
        {"tags": ["B-PER", "I-PER", "O"]},
        {"tags": ["I-LOC"], "error": "expected 4 columns, found 3", "error_line": 11},
    ])
    row = scheme_evidence(batch).to_pylist()
    assert row == [{"tags": ["B-PER", "I-PER", "O"], "opening_i": False}]
    merged = merge_evidence(row + [{"tags": ["I-LOC", "O"], "opening_i": True}])
    assert merged.tags == {"B-PER", "I-PER", "O", "I-LOC"} and merged.opening_i


def test_validate_tags_marks_errors_with_lines():
    batch = sentence_table([
        {"tags": ["B-PER", "I-PER", "O"], "line": 3},
        {"tags": ["O", "O", "I-LOC", "O"], "tokens": ["in", "the", "Alps", "."], "line": 10},
        {"tags": ["X-PER"], "tokens": ["Bob"], "line": 20},
        {"tags": ["I-ORG"], "line": 30, "error": "expected 4 columns, found 3", "error_line": 31},
        {"tags": ["B-LOC", "B-"], "tokens": ["Oslo", "and"], "line": 40},
    ])
    out = validate_tags(batch, "iob2").to_pylist()
    assert [r["error"] for r in out] == [
        None,
        "token 3 ('Alps'): 'I-LOC' cannot follow 'O' under scheme iob2",
        "token 1 ('Bob'): invalid tag 'X-PER' under scheme iob2: expected O or B-/I- followed by a type",
        "expected 4 columns, found 3",  # an earlier error is kept, not replaced
        "token 2 ('and'): invalid tag 'B-': prefix without an entity type",
    ]
    assert [r["error_line"] for r in out] == [None, 12, 20, 31, 41]
    assert out[0]["tags"] == ["B-PER", "I-PER", "O"]


def test_validate_tags_jsonl_lines_and_conversion():
    batch = sentence_table([
        {"tags": ["I-PER", "I-PER", "O", "I-LOC"], "line": 5},
        {"tags": ["O", "E-PER"], "line": 6},
    ])
    out = validate_tags(batch, "iob1", token_per_line=False).to_pylist()
    assert out[0]["tags"] == ["B-PER", "I-PER", "O", "B-LOC"]
    assert out[0]["error"] is None
    assert out[1]["error_line"] == 6  # a JSONL sentence is one line
    assert out[1]["error"].startswith("token 2 ('w1'): invalid tag 'E-PER' under scheme iob1")
    bioes = validate_tags(sentence_table([{"tags": ["S-PER", "B-LOC", "E-LOC"]}]), "bioes").to_pylist()
    assert bioes[0]["tags"] == ["B-PER", "B-LOC", "I-LOC"] and bioes[0]["error"] is None


def test_validate_tags_without_problems_keeps_columns():
    batch = sentence_table([{"tags": ["NN", "VB"]}, {"tags": ["DT"]}])
    out = validate_tags(batch, "plain")
    assert out.schema == SENTENCE_SCHEMA
    assert out.column("tags").to_pylist() == [["NN", "VB"], ["DT"]]
    assert out.column("error").null_count == 2


def test_pipeline_errors_match_read_corpus(tmp_path):
    text = (
        "EU B-ORG\nrejects O\n\n"
        "Peter O\nBlackburn I-PER\n\n"  # I-PER after O: line 5
        "a O\nb O\nc B-LOC\n\n"  # fine
        "x B-MISC\ny I-MISC\nz X-MISC\n\n"  # bad tag: line 13
    )
    path = write(tmp_path, "e.conll", text)
    options = ReaderOptions(format="conll")
    reference = read_corpus(str(path), options, scheme="iob2", on_error="skip")
    table, headers = chunk_table([(str(path), text.encode(), None)], options, 8)
    out = validate_tags(parse_chunks(table, options, headers), "iob2").to_pylist()
    bad = [(r["error_line"], r["error"]) for r in out if r["error"]]
    assert bad == [(s.error_line, s.error) for s in reference.skipped]
    assert [r["tags"] for r in out if not r["error"]] == [s.tags for s in reference.sentences]
    assert [line for line, _ in bad] == [5, 13]


# --- layout, statistics, encoding -------------------------------------------------------------


def test_assign_layout():
    batch = sentence_table([{"sid": sid, "tags": ["O"]} for sid in [7, 3, 11, 5, 9]])
    layout = {"train": np.array([3, 9, 11], dtype=np.int64), "test": np.array([5], dtype=np.int64),
              "dev": np.array([], dtype=np.int64)}
    out = assign_layout(batch, layout)
    assert out.column("sid").to_pylist() == [3, 11, 5, 9]  # 7 is in no split: dropped; order kept
    assert out.column("split").to_pylist() == ["train", "train", "test", "train"]
    assert out.schema == SENTENCE_SCHEMA


def test_assign_layout_sid_beyond_every_member():
    batch = sentence_table([{"sid": sid, "tags": ["O"]} for sid in [1, 100, 4]])
    out = assign_layout(batch, {"train": np.array([2, 4], dtype=np.int64)})
    assert out.column("sid").to_pylist() == [4]
    assert out.column("split").to_pylist() == ["train"]


def test_statistics():
    batch = sentence_table([
        {"split": "train", "tokens": ["the", "cat"], "tags": ["O", "B-PER"]},
        {"split": "test", "tokens": ["a", "dog", "dog"], "tags": ["O", "O", "B-LOC"]},
        {"split": "train", "tokens": ["the"], "tags": ["O"]},
        {"split": "dev", "tokens": ["zebra"], "tags": ["O"]},
    ])
    row = statistics(batch.slice(0, 3), ["train"]).to_pylist()
    assert len(row) == 1
    splits, words = json.loads(row[0]["splits"]), json.loads(row[0]["words"])
    assert splits == {
        "train": {"sentences": 2, "tokens": 3, "tags": {"O": 2, "B-PER": 1}},
        "test": {"sentences": 1, "tokens": 3, "tags": {"O": 2, "B-LOC": 1}},
    }
    assert words == {"the": 2, "cat": 1}  # test words stay out of the vocabulary
    both = statistics(batch, ["train", "dev"]).to_pylist()
    assert json.loads(both[0]["words"]) == {"the": 2, "cat": 1, "zebra": 1}
    assert merge_counts(row + both, "words") == {"the": 4, "cat": 2, "zebra": 1}


def test_encode_words():
    batch = sentence_table([
        {"tokens": ["The", "cat", "purrs"], "tags": ["O", "B-PER", "I-PER"]},
        {"tokens": [], "tags": []},
        {"tokens": ["cat"], "tags": ["O"]},
    ])
    words = Vocabulary.build({"the": 3, "cat": 2}, lowercase=True)
    labels = Vocabulary.labels(["O", "B-PER", "I-PER"])
    out = encode_words(batch, words, labels)
    assert out.column_names == SENTENCE_SCHEMA.names + ["word_ids", "tag_ids", "length"]
    assert out.column("word_ids").to_pylist() == [[2, 3, OOV_ID], [], [3]]
    assert out.column("tag_ids").to_pylist() == [[0, 1, 2], [], [0]]
    assert out.column("length").to_pylist() == [3, 0, 1]
    assert out.schema.field("length").type == pa.int32()
    cased = encode_words(batch, Vocabulary.build({"the": 3, "cat": 2}), labels)
    assert cased.column("word_ids").to_pylist()[0] == [OOV_ID, 3, OOV_ID]


def test_encode_words_on_a_slice_and_unknown_label():
    batch = sentence_table([
        {"tokens": ["a"], "tags": ["B-LOC"]},
        {"tokens": ["b", "a"], "tags": ["O", "O"]},
    ])
    words = Vocabulary.build({"a": 2, "b": 1})
    labels = Vocabulary.labels(["O"])
    with pytest.raises(KeyError, match="B-LOC"):
        encode_words(batch, words, labels)
    out = encode_words(batch.slice(1), words, labels)
    assert out.column("word_ids").to_pylist() == [[3, 2]]
    assert out.column("length").to_pylist() == [2]
