"""Document boundaries in the corpus layer: readers, document-aligned chunks, document ids, old corpora."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raytag.corpus.chunks import document_starts, split_chunks
from raytag.corpus.prepared import PreparedCorpus
from raytag.corpus.readers import ReaderOptions, read_corpus, read_sentences
from raytag.corpus.transforms import parse_chunks, sentence_id
from tests.helpers import CONLL, synthetic_conll, write
from tests.unit.test_transforms import CONLL_OPTS, chunk_table, expected_rows, parsed_rows

PLAIN = ReaderOptions(format="conll")


def _documented(sentences: int, every: int, seed: int = 0) -> str:
    """synthetic_conll with a -DOCSTART- line before every ``every`` sentences (a preamble first)."""
    blocks = synthetic_conll(sentences, seed).split("\n\n")[1:]  # drop its single leading marker
    out = ["x NN B-NP O\ny NN B-NP O", "z NN B-NP O"]  # two sentences before any marker
    for index, block in enumerate(b for b in blocks if b.strip()):
        if index % every == 0:
            out.append("-DOCSTART- -X- -X- O")
        out.append(block.strip("\n"))
    return "\n\n".join(out) + "\n"


def test_readers_record_the_docstart_line_of_each_sentence():
    sentences = read_sentences(CONLL.encode(), CONLL_OPTS, "a.conll")
    assert [s.line for s in sentences] == [3, 9, 14]
    assert [s.document for s in sentences] == [1, 1, 12]
    # Without a marker every sentence stands alone, as do sentences before a file's first marker.
    no_markers = "a O\n\nb O\n\nc O\n"
    assert [s.document for s in read_sentences(no_markers.encode(), PLAIN, "n.conll")] == [None] * 3
    preamble = "a O\n\n-DOCSTART- O\nb O\n\nc O\n"
    assert [s.document for s in read_sentences(preamble.encode(), PLAIN, "p.conll")] == [None, 3, 3]


def test_read_corpus_keeps_documents_through_validation(tmp_path):
    read = read_corpus(str(write(tmp_path, "a.conll", CONLL)), CONLL_OPTS)
    assert [s.document for s in read.sentences] == [1, 1, 12]


def test_document_starts_agree_with_the_parser():
    text = "\ufeff-DOCSTART- -X- O\n\na O\n\n  -DOCSTART-\tO\r\nb O\nnot-DOCSTART- O\n\n-DOCSTART-x O\n\nc O\n"
    data = text.encode()
    starts = document_starts(data, "utf-8", None)
    # Line 1 despite the byte-order mark and line 5 despite its indent; lines 7 and 9 hold other words.
    assert [line for _, line in starts] == [1, 5]
    assert all(data[offset:].lstrip(b"\xef\xbb\xbf ").startswith(b"-DOCSTART-") for offset, _ in starts)
    parsed = read_sentences(data, PLAIN, "m.conll")
    assert {s.document for s in parsed} == {line for _, line in starts}
    # With a tab separator an indented marker's first column is "  -DOCSTART-": not a marker.
    tabbed = b"-DOCSTART-\tO\n\na\tO\n\n  -DOCSTART-\tO\nb\tO\n"
    assert [line for _, line in document_starts(tabbed, "utf-8", "\t")] == [1]
    tab = ReaderOptions(format="conll", separator="\t")
    assert [s.document for s in read_sentences(tabbed, tab, "t.conll")] == [1, 1]


@pytest.mark.parametrize("target", [1, 64, 300, 1 << 20])
def test_document_chunks_hold_whole_documents(target):
    data = _documented(60, every=7).encode()
    starts = document_starts(data, "utf-8", None)
    offsets = [offset for offset, _ in starts]
    chunks = split_chunks(data, "conll", target, documents=offsets)
    assert chunks[0].start == 0 and chunks[-1].end == len(data)
    assert all(a.end == b.start for a, b in zip(chunks, chunks[1:]))
    for chunk in chunks[1:]:
        # Past the preamble every chunk opens with a marker; before it any sentence cut will do.
        assert chunk.start in offsets or chunk.start < offsets[0]
    if target == 1:
        assert len(chunks) == len(offsets) + 2  # the two preamble sentences, then one chunk per document


@pytest.mark.parametrize("whole_documents", [False, True])
@pytest.mark.parametrize("target", [1, 50, 1 << 20])
def test_document_ids_do_not_depend_on_chunking(target, whole_documents):
    files = [("a.conll", _documented(40, every=6).encode(), "train"), ("b.conll", CONLL.encode(), "dev"),
             ("c.conll", b"a O\n\nb O\n", None)]
    table, headers = chunk_table(files, PLAIN, target, whole_documents)
    out = parse_chunks(table, PLAIN, headers)
    assert parsed_rows(out) == expected_rows(files, PLAIN)
    rows = out.to_pylist()
    # One id per document, unique across files; a sentence outside any document is its own.
    by_file = {(r["file"], r["document"]) for r in rows}
    assert len({d for _, d in by_file}) == len(by_file)
    lone = [r for r in rows if r["file"] == "c.conll"]
    assert [r["document"] for r in lone] == [r["sid"] for r in lone]
    b = [r for r in rows if r["file"] == "b.conll"]
    assert [r["document"] for r in b] == [sentence_id(1, 1)] * 2 + [sentence_id(1, 12)]
    if target == 1:
        assert table.num_rows > 10


def _shard(directory, name: str, table: pa.Table) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, directory / name)


def test_prepared_documents_and_corpora_prepared_before_them(tmp_path):
    new, old = tmp_path / "new", tmp_path / "old"
    for directory, columns in ((new, {"document": [7, 7, 9]}), (old, {})):
        _shard(directory, "a.parquet", pa.table({"tokens": [["a"], ["b"]], **{k: v[:2] for k, v in columns.items()}}))
        _shard(directory, "b.parquet", pa.table({"tokens": [["c"]], **{k: v[2:] for k, v in columns.items()}}))
        manifest = {"splits": {"dev": {"shards": ["a.parquet", "b.parquet"], "sentences": 3}}, "entity": True,
                    "fingerprint": "x"}
        (directory / "manifest.json").write_text(json.dumps(manifest))
    assert PreparedCorpus(new).documents("dev") == [7, 7, 9]
    # No document column: every sentence its own document.
    assert PreparedCorpus(old).documents("dev") == [0, 1, 2]
