from __future__ import annotations

import gzip
import json
import zipfile

import pytest

from raytag.corpus.readers import ReaderOptions, read_corpus, read_sentences, split_chunks
from raytag.errors import CorpusError
from tests.helpers import CONLL, GMB, write

CONLL_OPTS = ReaderOptions(format="conll", columns=("word", "pos", "chunk", "ner"), token_column="word", tag_column="ner")
GMB_OPTS = ReaderOptions(format="gmb_csv", encoding="latin-1", token_column="Word", tag_column="Tag")
JSONL_OPTS = ReaderOptions(format="jsonl")


def _error(tmp_path, name, text, options, **kwargs) -> CorpusError:
    path = write(tmp_path, name, text)
    with pytest.raises(CorpusError) as info:
        read_corpus(str(path), options, **kwargs)
    assert info.value.file == str(path)
    return info.value


# --- CoNLL -------------------------------------------------------------------------------


def test_conll_docstart_and_blank_lines(tmp_path):
    result = read_corpus(str(write(tmp_path, "a.conll", CONLL)), CONLL_OPTS)
    assert [s.tokens for s in result.sentences] == [
        ["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn"], ["BRUSSELS", "1996-08-22"]
    ]
    assert result.sentences[0].tags == ["B-ORG", "O", "B-MISC", "O", "O"]
    assert [s.line for s in result.sentences] == [3, 9, 14]
    assert result.scheme == "iob2"


@pytest.mark.parametrize("column,expected", [("pos", ["NNP", "VBZ", "JJ", "NN", "."]), (1, ["NNP", "VBZ", "JJ", "NN", "."]),
                                             ("chunk", ["B-NP", "B-VP", "B-NP", "I-NP", "O"]), (-1, ["B-ORG", "O", "B-MISC", "O", "O"])])
def test_conll_tag_column_by_name_or_index(tmp_path, column, expected):
    options = ReaderOptions(format="conll", columns=("word", "pos", "chunk", "ner"), tag_column=column)
    first = read_corpus(str(write(tmp_path, "a.conll", CONLL)), options).sentences[0]
    assert first.tags == expected


def test_conll_tab_separated_tokens_with_spaces(tmp_path):
    text = "New York\tB-LOC\nis\tO\n\nfine\tO\n"
    options = ReaderOptions(format="conll", separator="\t")
    sentences = read_corpus(str(write(tmp_path, "t.tsv", text)), options).sentences
    assert sentences[0].tokens == ["New York", "is"]
    assert sentences[1].tags == ["O"]


def test_conll_crlf_and_any_column_count(tmp_path):
    text = "a x y z w O\r\nb x y z w B-PER\r\n\r\n"
    sentences = read_corpus(str(write(tmp_path, "w.txt", text)), ReaderOptions(format="conll")).sentences
    assert sentences[0].tags == ["O", "B-PER"]


def test_conll_wrong_column_count(tmp_path):
    text = CONLL.replace("rejects VBZ B-VP O", "rejects VBZ O")
    err = _error(tmp_path, "bad.conll", text, CONLL_OPTS)
    assert err.line == 4
    assert "expected 4 columns, found 3" in err.reason


def test_conll_column_count_inferred_from_first_line(tmp_path):
    err = _error(tmp_path, "bad.conll", "a B O\nb O\n", ReaderOptions(format="conll"))
    assert (err.line, err.reason) == (2, "expected 3 columns, found 2")


def test_unknown_tag_column_name(tmp_path):
    options = ReaderOptions(format="conll", columns=("word", "ner"), tag_column="pos")
    err = _error(tmp_path, "a.conll", "a O\n", options)
    assert err.line is None and "'pos' is not one of the columns" in err.reason


# --- GMB CSV -------------------------------------------------------------------------------


def test_gmb_sentence_id_on_first_row_only_and_quoting(tmp_path):
    path = write(tmp_path, "gmb.csv", GMB, encoding="latin-1")
    sentences = read_corpus(str(path), GMB_OPTS).sentences
    assert [len(s.tokens) for s in sentences] == [7, 4, 4]
    assert sentences[1].tokens[1] == ","
    assert sentences[2].tokens == ['"', "Mr.", "Bush", '"']
    assert sentences[2].tags == ["O", "B-per", "I-per", "O"]
    assert [s.line for s in sentences] == [2, 9, 13]


def test_gmb_pos_column(tmp_path):
    options = ReaderOptions(format="gmb_csv", encoding="latin-1", tag_column="POS")
    result = read_corpus(str(write(tmp_path, "g.csv", GMB, encoding="latin-1")), options)
    assert result.scheme == "plain"
    assert result.sentences[0].tags[:3] == ["NNS", "IN", "NNS"]


def test_gmb_latin1_bytes_decode_without_mojibake(tmp_path):
    text = GMB.replace(",London,", ",Zürich\x85,")
    path = write(tmp_path, "g.csv", text, encoding="latin-1")
    assert read_corpus(str(path), GMB_OPTS).sentences[0].tokens[5] == "Zürich\x85"


def test_undecodable_bytes_name_byte_offset(tmp_path):
    data = GMB.replace(",London,", ",Zürich,").encode("latin-1")
    path = tmp_path / "g.csv"
    path.write_bytes(data)
    with pytest.raises(CorpusError) as info:
        read_corpus(str(path), ReaderOptions(format="gmb_csv", encoding="utf-8"))
    err = info.value
    assert err.byte_offset == data.index(b"\xfc")
    assert err.line == 7
    assert "cannot decode byte 0xfc" in err.reason and "latin-1" in err.reason


def test_gmb_wrong_column_count(tmp_path):
    err = _error(tmp_path, "g.csv", GMB.replace(",officials,NNS,O", ",officials,NNS"), GMB_OPTS)
    assert (err.line, err.reason) == (12, "expected 4 columns, found 3")


def test_gmb_row_before_any_sentence(tmp_path):
    err = _error(tmp_path, "g.csv", "Sentence #,Word,POS,Tag\n,a,DT,O\n", GMB_OPTS)
    assert err.line == 2 and "no sentence is open" in err.reason


def test_gmb_missing_sentence_column(tmp_path):
    err = _error(tmp_path, "g.csv", "Word,POS,Tag\na,DT,O\n", GMB_OPTS)
    assert err.line == 1 and "lacks the sentence column" in err.reason


# --- JSONL -------------------------------------------------------------------------------


def test_jsonl(tmp_path):
    text = json.dumps({"tokens": ["Ada", "codes"], "tags": ["B-PER", "O"]}) + "\n\n" + json.dumps(
        {"tokens": ["Hi"], "tags": ["O"]}) + "\n"
    sentences = read_corpus(str(write(tmp_path, "a.jsonl", text)), JSONL_OPTS).sentences
    assert [s.line for s in sentences] == [1, 3]
    assert sentences[0].tags == ["B-PER", "O"]


def test_jsonl_token_tag_count_mismatch(tmp_path):
    text = json.dumps({"tokens": ["a"], "tags": ["O"]}) + "\n" + json.dumps({"tokens": ["a", "b"], "tags": ["O"]})
    err = _error(tmp_path, "a.jsonl", text, JSONL_OPTS)
    assert (err.line, err.reason) == (2, "2 tokens but 1 tags")


@pytest.mark.parametrize("line,reason", [("{nope", "invalid JSON"), ('{"tokens": "a", "tags": []}', "'tokens' must be a list of strings"),
                                         ("[1]", "expected a JSON object")])
def test_jsonl_malformed_lines(tmp_path, line, reason):
    text = json.dumps({"tokens": ["a"], "tags": ["O"]}) + "\n" + line + "\n"
    err = _error(tmp_path, "a.jsonl", text, JSONL_OPTS)
    assert err.line == 2 and reason in err.reason


# --- tags and schemes --------------------------------------------------------------------


@pytest.mark.parametrize("bad,reason", [
    ("B-", "invalid tag 'B-': prefix without an entity type"),
    ("X-PER", "invalid tag 'X-PER' under scheme iob2"),
])
def test_invalid_tags(tmp_path, bad, reason):
    text = CONLL.replace("Blackburn NNP I-NP I-PER", f"Blackburn NNP I-NP {bad}")
    err = _error(tmp_path, "a.conll", text, CONLL_OPTS, scheme="iob2")
    assert err.line == 10
    assert reason in err.reason and "token 2 ('Blackburn')" in err.reason


def test_empty_tag(tmp_path):
    err = _error(tmp_path, "a.tsv", "a\tO\nb\t\n", ReaderOptions(format="conll", separator="\t"), scheme="iob2")
    assert (err.line, err.reason) == (2, "token 2 ('b'): empty tag")


def test_i_tag_after_o_under_iob2(tmp_path):
    text = CONLL.replace("Peter NNP B-NP B-PER", "Peter NNP B-NP O")
    err = _error(tmp_path, "a.conll", text, CONLL_OPTS, scheme="iob2")
    assert err.line == 10 and "'I-PER' cannot follow 'O' under scheme iob2" in err.reason


def test_i_tag_after_other_type_under_bioes(tmp_path):
    text = "a B-PER\nb I-LOC\nc E-LOC\n"
    err = _error(tmp_path, "a.txt", text, ReaderOptions(format="conll"), scheme="bioes")
    assert err.line == 2 and "'I-LOC' cannot follow 'B-PER'" in err.reason


def test_iob1_converted_to_iob2(tmp_path):
    text = "a I-PER\nb I-PER\nc B-PER\nd O\ne I-LOC\n"
    result = read_corpus(str(write(tmp_path, "a.txt", text)), ReaderOptions(format="conll"))
    assert result.scheme == "iob1"
    assert result.sentences[0].tags == ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]


def test_bioes_converted_to_iob2(tmp_path):
    text = "a S-PER\nb B-LOC\nc I-LOC\nd E-LOC\ne O\n"
    result = read_corpus(str(write(tmp_path, "a.txt", text)), ReaderOptions(format="conll"))
    assert result.scheme == "bioes"
    assert result.sentences[0].tags == ["B-PER", "B-LOC", "I-LOC", "I-LOC", "O"]


def test_skip_mode_counts_bad_sentences(tmp_path):
    text = CONLL.replace("Peter NNP B-NP B-PER", "Peter NNP B-NP O")
    result = read_corpus(str(write(tmp_path, "a.conll", text)), CONLL_OPTS, scheme="iob2", on_error="skip")
    assert len(result.sentences) == 2
    assert [(s.error_line, s.tokens[0]) for s in result.skipped] == [(10, "Peter")]


# --- files -------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(CorpusError) as info:
        read_corpus(str(tmp_path / "nope.txt"), CONLL_OPTS)
    assert info.value.line is None and "file not found" in info.value.reason


def test_empty_corpus(tmp_path):
    err = _error(tmp_path, "empty.conll", "-DOCSTART- -X- -X- O\n\n", CONLL_OPTS)
    assert err.line is None and "empty corpus" in err.reason


def test_zip_and_gzip_sources(tmp_path):
    archive = tmp_path / "c.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("inner.conll", CONLL)
    (tmp_path / "c.conll.gz").write_bytes(gzip.compress(CONLL.encode()))
    for source in (str(archive), f"{archive}#inner.conll", str(tmp_path / "c.conll.gz")):
        assert len(read_corpus(source, CONLL_OPTS).sentences) == 3


@pytest.mark.slow
def test_bundled_gmb_is_readable():
    result = read_corpus("raytag:gmb", GMB_OPTS)
    assert len(result.sentences) == 47_959
    # The word "None" is a word, not a missing value.
    assert sum(s.tokens.count("None") for s in result.sentences) == 10


@pytest.mark.parametrize("fmt,text", [("conll", CONLL), ("gmb_csv", GMB), ("jsonl", '{"tokens":["a"],"tags":["O"]}\n' * 7)])
def test_chunks_cover_the_file_on_sentence_boundaries(fmt, text):
    data = text.encode("latin-1")
    options = {"conll": CONLL_OPTS, "gmb_csv": GMB_OPTS, "jsonl": JSONL_OPTS}[fmt]
    whole = read_sentences(data, options, "f")
    skip = fmt == "gmb_csv"
    chunks = split_chunks(data, fmt, 16, skip_header=skip)
    assert len(chunks) > 1
    assert chunks[-1].end == len(data)
    assert all(a.end == b.start for a, b in zip(chunks, chunks[1:]))
    from raytag.corpus.readers import decode, parse_chunk, read_header

    header = read_header(data, options, "f")
    pieces = []
    for chunk in chunks:
        text_part = decode(data[chunk.start:chunk.end], "latin-1", "f", chunk.start, chunk.first_line)
        pieces.extend(parse_chunk(text_part, options, header, "f", chunk.first_line))
    assert [(s.line, s.tokens, s.tags) for s in pieces] == [(s.line, s.tokens, s.tags) for s in whole]


def test_corpus_error_survives_pickling():
    # Ray sends an error raised in a worker back to the driver pickled.
    import pickle

    err = pickle.loads(pickle.dumps(CorpusError("f.csv", 3, "bad row", byte_offset=12)))
    assert (err.file, err.line, err.reason, err.byte_offset, str(err)) == (
        "f.csv", 3, "bad row", 12, "f.csv:3 (byte offset 12): bad row")
