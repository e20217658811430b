"""Hand-made corpus files, good and bad, with the exact outcome each must have.

Shared by the in-process reader tests (every case) and the Ray Data prepare tests
(the cases marked ``ray``): both paths must give the same sentences or the same
error, naming the same file, line (and byte offset) with the same reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.helpers import CONLL, GMB

EMPTY = "empty corpus: the input holds no sentence"
ONE_COLUMN = ("found 1 column, but a tagged corpus needs a token column and a tag column; "
              "set corpus.tagged: false if the corpus has no tags")
UNDECODABLE = ("cannot decode byte 0x{byte} with encoding 'utf-8'; set corpus.encoding to the file's "
               "encoding (the Kaggle GMB CSV is latin-1)")
LIST_OF_STRINGS = "'{key}' must be a list of strings"
SURROGATE = "'{key}' item {item} holds the lone surrogate {char}, which is not valid Unicode"
GMB_HEADER = "Sentence #,Word,POS,Tag\n"
CR_IN_LINE = ("malformed CSV row: new-line character seen in unquoted field - do you need to open the file in "
              "universal-newline mode?")
GMB_COLUMNS = "['Sentence #', 'Word', 'POS', 'Tag']"

Row = tuple[int, list[str], list[str]]


@dataclass(frozen=True)
class Parsed:
    """Valid sentences as ``(line, tokens, IOB2 tags)``, the detected scheme, skipped ``(line, reason)``."""

    sentences: list[Row]
    scheme: str
    skipped: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Fails:
    """The error: ``line`` None for whole-file problems."""

    line: int | None
    reason: str
    byte_offset: int | None = None


@dataclass(frozen=True)
class Case:
    id: str
    format: str
    data: bytes
    expect: Parsed | Fails
    corpus: dict[str, Any] = field(default_factory=dict)
    # Also run through Ray Data prepare (a representative subset: each case costs a pipeline run).
    ray: bool = False

    @property
    def suffix(self) -> str:
        return {"conll": ".conll", "gmb_csv": ".csv", "jsonl": ".jsonl"}[self.format]


def _u(text: str) -> bytes:
    return text.encode("utf-8")


def _jsonl(*records: Any) -> bytes:
    return _u("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))


def _gmb(*rows: str, header: str = GMB_HEADER) -> bytes:
    return _u(header + "".join(r + "\n" for r in rows))


NER4 = {"columns": ["word", "pos", "chunk", "ner"], "tag_column": "ner"}
LONG = 20_000


def _long_conll() -> bytes:
    return _u("Ada B-PER\n" + "word O\n" * (LONG - 1))


def _long_gmb() -> bytes:
    return _gmb("Sentence: 1,Ada,NNP,B-per", *([",word,NN,O"] * (LONG - 1)))


def _width_across_chunks() -> bytes:
    # The first sentence is longer than a chunk, so the bad one is parsed in another chunk.
    return _u("tok x O\n" * 300 + "\nb O\n")


def _multiline_at_chunk_cut() -> tuple[bytes, int]:
    """A GMB file whose first possible chunk cut falls inside a quoted field spanning two lines."""
    rows, size, n = [], len(GMB_HEADER), 0
    # Past the first cut position (chunk_bytes 1024 after the header), in the quoted field.
    while size < 1030:
        n += 1
        rows.append(f"Sentence: {n},w{n},NN,O")
        size += len(rows[-1]) + 1
    rows.append(',"multi' + "x" * 40)
    rows.append('line",NN,O')
    rows.append(f"Sentence: {n + 1},end,NN,O")
    return _gmb(*rows), len(rows) - 1


MULTI_DATA, MULTI_LINE = _multiline_at_chunk_cut()
MULTI_REASON = "a quoted field runs from line {a} to line {b}; a field cannot span lines (is a closing quote missing?)"

CONLL_CASES = [
    Case("conll-docstart-and-blank-lines", "conll", _u(CONLL), Parsed([
        (3, ["EU", "rejects", "German", "call", "."], ["B-ORG", "O", "B-MISC", "O", "O"]),
        (9, ["Peter", "Blackburn"], ["B-PER", "I-PER"]),
        (14, ["BRUSSELS", "1996-08-22"], ["B-LOC", "O"]),
    ], "iob2"), NER4, ray=True),
    Case("conll-crlf", "conll", b"EU B-ORG\r\nrejects O\r\n\r\nPeter B-PER\r\n",
         Parsed([(1, ["EU", "rejects"], ["B-ORG", "O"]), (4, ["Peter"], ["B-PER"])], "iob2")),
    Case("conll-bom", "conll", _u("\ufeffEU B-ORG\nrejects O\n"),
         Parsed([(1, ["EU", "rejects"], ["B-ORG", "O"])], "iob2")),
    Case("conll-bom-crlf", "conll", _u("\ufeffEU B-ORG\r\n\r\nx O\r\n"),
         Parsed([(1, ["EU"], ["B-ORG"]), (3, ["x"], ["O"])], "iob2"), ray=True),
    Case("conll-tab-separator-keeps-spaces", "conll", b"New York\tB-LOC\nis\tO\n",
         Parsed([(1, ["New York", "is"], ["B-LOC", "O"])], "iob2"), {"separator": "\t"}),
    Case("conll-20000-token-sentence", "conll", _long_conll(),
         Parsed([(1, ["Ada"] + ["word"] * (LONG - 1), ["B-PER"] + ["O"] * (LONG - 1))], "iob2"), ray=True),
    Case("conll-none-nan-null-are-words", "conll", b"None O\nNaN O\nnull B-PER\nNA O\n",
         Parsed([(1, ["None", "NaN", "null", "NA"], ["O", "O", "B-PER", "O"])], "iob2"), ray=True),
    Case("conll-iob1-to-iob2", "conll", b"a I-PER\nb I-PER\nc B-PER\nd O\ne I-LOC\n",
         Parsed([(1, list("abcde"), ["B-PER", "I-PER", "B-PER", "O", "B-LOC"])], "iob1")),
    Case("conll-bioes-to-iob2", "conll", b"a S-PER\nb B-LOC\nc I-LOC\nd E-LOC\ne O\n",
         Parsed([(1, list("abcde"), ["B-PER", "B-LOC", "I-LOC", "I-LOC", "O"])], "bioes")),
    Case("conll-plain-pos-tags", "conll", b"The DT\ndog NN\n",
         Parsed([(1, ["The", "dog"], ["DT", "NN"])], "plain")),
    Case("conll-whitespace-only-separator-line", "conll", b"a O\n  \t \nb B-LOC\n",
         Parsed([(1, ["a"], ["O"]), (3, ["b"], ["B-LOC"])], "iob2")),
    Case("conll-no-final-newline", "conll", b"a O\nb B-PER",
         Parsed([(1, ["a", "b"], ["O", "B-PER"])], "iob2")),
    Case("conll-many-blank-lines", "conll", b"\n\n\na O\n\n\n\nb B-PER\n\n",
         Parsed([(4, ["a"], ["O"]), (8, ["b"], ["B-PER"])], "iob2")),
    Case("conll-docstart-mid-file", "conll", b"a O\n-DOCSTART- -X- O\nb B-PER\n",
         Parsed([(1, ["a"], ["O"]), (3, ["b"], ["B-PER"])], "iob2")),
    Case("conll-untagged-one-column", "conll", b"Ada\nlives\n\nParis\n",
         Parsed([(1, ["Ada", "lives"], ["O", "O"]), (4, ["Paris"], ["O"])], "plain"), {"tagged": False}, ray=True),
    Case("conll-untagged-ignores-other-columns", "conll", b"Ada NNP\n",
         Parsed([(1, ["Ada"], ["O"])], "plain"), {"tagged": False}),
    Case("conll-latin1", "conll", "in O\nZürich B-LOC\n".encode("latin-1"),
         Parsed([(1, ["in", "Zürich"], ["O", "B-LOC"])], "iob2"), {"encoding": "latin-1"}),
    Case("conll-tag-column-by-name", "conll", _u(CONLL), Parsed([
        (3, ["EU", "rejects", "German", "call", "."], ["NNP", "VBZ", "JJ", "NN", "."]),
        (9, ["Peter", "Blackburn"], ["NNP", "NNP"]),
        (14, ["BRUSSELS", "1996-08-22"], ["NNP", "CD"]),
    ], "plain"), {**NER4, "tag_column": "pos"}),
    Case("conll-skip-counts-bad-sentences", "conll", b"a O\nb I-PER\n\nc B-PER\n",
         Parsed([(4, ["c"], ["B-PER"])], "iob2", [(2, "token 2 ('b'): 'I-PER' cannot follow 'O' under scheme iob2")]),
         {"scheme": "iob2", "on_error": "skip"}, ray=True),
    # errors
    Case("conll-one-column-is-not-tagged", "conll", b"Ada\nlives\n", Fails(1, ONE_COLUMN), ray=True),
    Case("conll-one-column-after-docstart", "conll", b"-DOCSTART-\n\nAda\n", Fails(3, ONE_COLUMN), ray=True),
    Case("conll-only-docstart", "conll", b"-DOCSTART- -X- -X- O\n\n-DOCSTART- -X- -X- O\n", Fails(None, EMPTY),
         ray=True),
    Case("conll-only-blank-lines", "conll", b"\n\n \n\t\n", Fails(None, EMPTY), ray=True),
    Case("conll-empty-file", "conll", b"", Fails(None, EMPTY), ray=True),
    Case("conll-wrong-column-count", "conll", b"a x O\nb O\n", Fails(2, "expected 3 columns, found 2")),
    Case("conll-column-count-across-chunks", "conll", _width_across_chunks(),
         Fails(302, "expected 3 columns, found 2"), ray=True),
    Case("conll-invalid-tag", "conll", b"a X-PER\n",
         Fails(1, "token 1 ('a'): invalid tag 'X-PER' under scheme iob2: expected O or B-/I- followed by a type"),
         {"scheme": "iob2"}, ray=True),
    Case("conll-prefix-without-type", "conll", b"a B-\n",
         Fails(1, "token 1 ('a'): invalid tag 'B-': prefix without an entity type"), {"scheme": "iob2"}),
    Case("conll-i-after-o", "conll", b"a O\nb I-PER\n",
         Fails(2, "token 2 ('b'): 'I-PER' cannot follow 'O' under scheme iob2"), {"scheme": "iob2"}),
    Case("conll-bioes-open-at-end", "conll", b"a B-PER\n",
         Fails(1, "token 1 ('a'): entity 'B-PER' is left open at the end of the sentence under scheme bioes"),
         {"scheme": "bioes"}),
    Case("conll-undecodable-byte", "conll", b"a O\n\xff O\n", Fails(2, UNDECODABLE.format(byte="ff"), 4), ray=True),
    Case("conll-tag-column-name-unknown", "conll", b"a O\n",
         Fails(None, "tag_column 'pos' is not one of the columns ['word', 'ner']"),
         {"columns": ["word", "ner"], "tag_column": "pos"}),
    Case("conll-tag-column-out-of-range", "conll", b"a O\n",
         Fails(1, "tag_column 5 is out of range for 2 columns"), {"tag_column": 5}, ray=True),
    Case("conll-token-and-tag-same-column", "conll", b"a x O\n",
         Fails(1, "token_column and tag_column both name column 1"), {"token_column": 1, "tag_column": 1}),
    Case("conll-empty-tag", "conll", b"a\tO\nb\t\n", Fails(2, "token 2 ('b'): empty tag"),
         {"separator": "\t", "scheme": "iob2"}),
    Case("conll-whitespace-token", "conll", b"a\tO\n \tO\n", Fails(1, "empty token"), {"separator": "\t"}),
    Case("conll-skip-leaves-no-valid-sentence", "conll", b"a X-PER\n", Fails(None, "empty corpus: no valid sentence"),
         {"scheme": "iob2", "on_error": "skip"}),
]

GMB_CASES = [
    Case("gmb-kaggle-sample", "gmb_csv", GMB.encode("latin-1"), Parsed([
        (2, ["Thousands", "of", "demonstrators", "marched", "through", "London", "."],
         ["O", "O", "O", "O", "O", "B-geo", "O"]),
        (9, ["Families", ",", "Iranian", "officials"], ["O", "O", "B-gpe", "O"]),
        (13, ['"', "Mr.", "Bush", '"'], ["O", "B-per", "I-per", "O"]),
    ], "iob2"), {"encoding": "latin-1"}, ray=True),
    Case("gmb-lf-line-ends", "gmb_csv", GMB.replace("\r\n", "\n").encode("latin-1"), Parsed([
        (2, ["Thousands", "of", "demonstrators", "marched", "through", "London", "."],
         ["O", "O", "O", "O", "O", "B-geo", "O"]),
        (9, ["Families", ",", "Iranian", "officials"], ["O", "O", "B-gpe", "O"]),
        (13, ['"', "Mr.", "Bush", '"'], ["O", "B-per", "I-per", "O"]),
    ], "iob2"), {"encoding": "latin-1"}),
    Case("gmb-bom", "gmb_csv", _u("\ufeff" + GMB_HEADER + "Sentence: 1,Hi,UH,O\n"),
         Parsed([(2, ["Hi"], ["O"])], "plain")),
    Case("gmb-none-nan-null-are-words", "gmb_csv",
         _gmb("Sentence: 1,None,NN,O", ",NaN,NN,O", ",null,NN,B-geo", ",NA,NN,O", ",nan,NN,O"),
         Parsed([(2, ["None", "NaN", "null", "NA", "nan"], ["O", "O", "B-geo", "O", "O"])], "iob2"), ray=True),
    Case("gmb-quoted-comma-in-word", "gmb_csv", _gmb('Sentence: 1,"a,b",NN,O', ',",",",",O'),
         Parsed([(2, ["a,b", ","], ["O", "O"])], "plain"), ray=True),
    Case("gmb-pos-column", "gmb_csv", _gmb("Sentence: 1,Hi,UH,O", ",there,RB,O"),
         Parsed([(2, ["Hi", "there"], ["UH", "RB"])], "plain"), {"tag_column": "POS"}),
    Case("gmb-sentence-column-last", "gmb_csv", _gmb("Hi,O,Sentence: 1", "Bob,B-per,", header="Word,Tag,Sentence #\n"),
         Parsed([(2, ["Hi", "Bob"], ["O", "B-per"])], "iob2")),
    Case("gmb-latin1-0x85-inside-word", "gmb_csv",
         (GMB_HEADER + "Sentence: 1,in,IN,O\n,Zürich\x85,NNP,B-geo\n").encode("latin-1"),
         Parsed([(2, ["in", "Zürich\x85"], ["O", "B-geo"])], "iob2"), {"encoding": "latin-1"}),
    Case("gmb-quote-inside-unquoted-word", "gmb_csv", _gmb('Sentence: 1,O"Neil,NNP,B-per', ",left,VBD,O"),
         Parsed([(2, ['O"Neil', "left"], ["B-per", "O"])], "iob2"), ray=True),
    Case("gmb-20000-token-sentence", "gmb_csv", _long_gmb(),
         Parsed([(2, ["Ada"] + ["word"] * (LONG - 1), ["B-per"] + ["O"] * (LONG - 1))], "iob2"), ray=True),
    Case("gmb-untagged", "gmb_csv", _gmb("Sentence: 1,Hi", ",there", header="Sentence #,Word\n"),
         Parsed([(2, ["Hi", "there"], ["O", "O"])], "plain"), {"tagged": False}, ray=True),
    Case("gmb-multiline-field-skipped-keeps-line-numbers", "gmb_csv",
         _gmb('Sentence: 1,"multi', 'line",NN,O', "Sentence: 2,ok,NN,O", ",x,NN,B-geo"),
         Parsed([(4, ["ok", "x"], ["O", "B-geo"])], "iob2", [(2, MULTI_REASON.format(a=2, b=3))]),
         {"on_error": "skip"}, ray=True),
    # errors
    Case("gmb-multiline-field-crlf", "gmb_csv",
         b'Sentence #,Word,POS,Tag\r\nSentence: 1,"multi\r\nline",NN,O\r\n,x,NN,O\r\nSentence: 2,y,NN,B-geo\r\n',
         Fails(2, MULTI_REASON.format(a=2, b=3)), ray=True),
    Case("gmb-multiline-field-lf", "gmb_csv", _gmb("Sentence: 1,ok,NN,O", ',"multi', 'line",NN,O'),
         Fails(3, MULTI_REASON.format(a=3, b=4))),
    Case("gmb-unclosed-quote", "gmb_csv", _gmb('Sentence: 1,"open,NN,O', ",x,NN,O", ",y,NN,O"),
         Fails(2, MULTI_REASON.format(a=2, b=4))),
    Case("gmb-multiline-field-at-chunk-cut", "gmb_csv", MULTI_DATA,
         Fails(MULTI_LINE, MULTI_REASON.format(a=MULTI_LINE, b=MULTI_LINE + 1)), ray=True),
    Case("gmb-missing-sentence-column", "gmb_csv", _gmb("a,DT,O", header="Word,POS,Tag\n"),
         Fails(1, "header ['Word', 'POS', 'Tag'] lacks the sentence column 'Sentence #'"), ray=True),
    Case("gmb-row-before-any-sentence", "gmb_csv", _gmb(",a,DT,O"),
         Fails(2, "row has no 'Sentence #' value and no sentence is open")),
    Case("gmb-wrong-column-count", "gmb_csv", _gmb("Sentence: 1,a,DT"), Fails(2, "expected 4 columns, found 3"),
         ray=True),
    Case("gmb-header-only", "gmb_csv", _gmb(), Fails(None, EMPTY), ray=True),
    Case("gmb-header-and-blank-lines", "gmb_csv", _gmb("", "", ""), Fails(None, EMPTY), ray=True),
    Case("gmb-empty-file", "gmb_csv", b"",
         Fails(1, "no header: the first line must name the columns, including the sentence column 'Sentence #'"),
         ray=True),
    Case("gmb-invalid-tag", "gmb_csv", _gmb("Sentence: 1,a,DT,X-geo"),
         Fails(2, "token 1 ('a'): invalid tag 'X-geo' under scheme iob2: expected O or B-/I- followed by a type"),
         {"scheme": "iob2"}),
    Case("gmb-i-after-o", "gmb_csv", _gmb("Sentence: 1,a,DT,O", ",b,NN,I-geo"),
         Fails(3, "token 2 ('b'): 'I-geo' cannot follow 'O' under scheme iob2"), {"scheme": "iob2"}, ray=True),
    Case("gmb-undecodable-byte", "gmb_csv", (GMB_HEADER + "Sentence: 1,Zürich,NNP,O\n").encode("latin-1"),
         Fails(2, UNDECODABLE.format(byte="fc"), len(GMB_HEADER) + 13)),
    Case("gmb-whitespace-token", "gmb_csv", _gmb("Sentence: 1,a,DT,O", ", ,NN,O"), Fails(2, "empty token"), ray=True),
    Case("gmb-token-column-unknown", "gmb_csv", _gmb("Sentence: 1,a,DT,O"),
         Fails(None, f"token_column 'Words' is not one of the columns {GMB_COLUMNS}"), {"token_column": "Words"}),
    Case("gmb-token-and-tag-same-column", "gmb_csv", _gmb("Sentence: 1,a,DT,O"),
         Fails(1, "token_column and tag_column both name column 1"), {"tag_column": "Word"}),
    Case("gmb-carriage-return-inside-line", "gmb_csv", _gmb("Sentence: 1,a\rb,DT,O"), Fails(2, CR_IN_LINE), ray=True),
    Case("gmb-carriage-return-skipped", "gmb_csv",
         _gmb("Sentence: 1,a,DT,O", ",b\rc,DT,O", "Sentence: 2,ok,NN,B-geo", ",x,NN,O"),
         Parsed([(4, ["ok", "x"], ["B-geo", "O"])], "iob2", [(3, CR_IN_LINE)]), {"on_error": "skip"}, ray=True),
]

GOOD = {"tokens": ["Ada", "codes"], "tags": ["B-PER", "O"]}

JSONL_CASES = [
    Case("jsonl-records-and-blank-lines", "jsonl", _jsonl(GOOD, "", {"tokens": ["Hi"], "tags": ["O"]}),
         Parsed([(1, ["Ada", "codes"], ["B-PER", "O"]), (3, ["Hi"], ["O"])], "iob2"), ray=True),
    Case("jsonl-crlf", "jsonl", _u(json.dumps(GOOD) + "\r\n" + json.dumps(GOOD) + "\r\n"),
         Parsed([(1, ["Ada", "codes"], ["B-PER", "O"]), (2, ["Ada", "codes"], ["B-PER", "O"])], "iob2")),
    Case("jsonl-bom", "jsonl", _u("\ufeff" + json.dumps(GOOD) + "\n"),
         Parsed([(1, ["Ada", "codes"], ["B-PER", "O"])], "iob2")),
    Case("jsonl-none-nan-null-are-words", "jsonl",
         _jsonl({"tokens": ["None", "NaN", "null"], "tags": ["O", "O", "B-PER"]}),
         Parsed([(1, ["None", "NaN", "null"], ["O", "O", "B-PER"])], "iob2")),
    Case("jsonl-escapes-and-surrogate-pair", "jsonl",
         _jsonl('{"tokens": ["caf\\u00e9", "\\ud83d\\ude00"], "tags": ["O", "O"]}'),
         Parsed([(1, ["café", "😀"], ["O", "O"])], "plain"), ray=True),
    Case("jsonl-custom-keys", "jsonl", _jsonl({"words": ["Ada"], "labels": ["B-PER"]}),
         Parsed([(1, ["Ada"], ["B-PER"])], "plain"), {"tokens_key": "words", "tags_key": "labels"}),
    Case("jsonl-extra-keys-ignored", "jsonl", _jsonl({**GOOD, "id": 7, "meta": {"a": [1]}}),
         Parsed([(1, ["Ada", "codes"], ["B-PER", "O"])], "iob2")),
    Case("jsonl-untagged", "jsonl", _jsonl({"tokens": ["Ada", "codes"]}),
         Parsed([(1, ["Ada", "codes"], ["O", "O"])], "plain"), {"tagged": False}),
    # errors
    Case("jsonl-lone-surrogate-token", "jsonl", _jsonl(GOOD, '{"tokens": ["a", "\\ud800"], "tags": ["O", "O"]}'),
         Fails(2, SURROGATE.format(key="tokens", item=2, char="U+D800")), ray=True),
    Case("jsonl-lone-surrogate-tag", "jsonl", _jsonl('{"tokens": ["a"], "tags": ["\\ud800"]}'),
         Fails(1, SURROGATE.format(key="tags", item=1, char="U+D800"))),
    Case("jsonl-lone-low-surrogate", "jsonl", _jsonl('{"tokens": ["x\\udc00"], "tags": ["O"]}'),
         Fails(1, SURROGATE.format(key="tokens", item=1, char="U+DC00"))),
    Case("jsonl-reversed-surrogate-pair", "jsonl", _jsonl('{"tokens": ["\\ude00\\ud83d"], "tags": ["O"]}'),
         Fails(1, SURROGATE.format(key="tokens", item=1, char="U+DE00"))),
    Case("jsonl-deep-nesting", "jsonl", _jsonl(GOOD, '{"tokens": ' + "[" * 100_000 + "]" * 100_000 + ', "tags": []}'),
         Fails(2, "invalid JSON: nested too deeply"), ray=True),
    Case("jsonl-huge-integer", "jsonl", _jsonl('{"tokens": [' + "9" * 5000 + '], "tags": ["O"]}'),
         Fails(1, "invalid JSON: a number has too many digits")),
    Case("jsonl-invalid-json", "jsonl", _jsonl("{nope"),
         Fails(1, "invalid JSON: Expecting property name enclosed in double quotes at column 2")),
    Case("jsonl-trailing-data", "jsonl", _jsonl(json.dumps({"tokens": ["a"], "tags": ["O"]}) + " x"),
         Fails(1, "invalid JSON: Extra data at column 34")),
    Case("jsonl-not-an-object", "jsonl", _jsonl("[1]"), Fails(1, "expected a JSON object")),
    Case("jsonl-tokens-a-string", "jsonl", _jsonl({"tokens": "a", "tags": ["O"]}),
         Fails(1, LIST_OF_STRINGS.format(key="tokens"))),
    Case("jsonl-tokens-numbers", "jsonl", _jsonl({"tokens": ["a", 1], "tags": ["O", "O"]}),
         Fails(1, LIST_OF_STRINGS.format(key="tokens"))),
    Case("jsonl-tokens-null", "jsonl", _jsonl({"tokens": None, "tags": []}),
         Fails(1, LIST_OF_STRINGS.format(key="tokens"))),
    Case("jsonl-nan-literal-token", "jsonl", _jsonl('{"tokens": [NaN], "tags": ["O"]}'),
         Fails(1, LIST_OF_STRINGS.format(key="tokens"))),
    Case("jsonl-missing-tags", "jsonl", _jsonl({"tokens": ["a"]}), Fails(1, LIST_OF_STRINGS.format(key="tags"))),
    Case("jsonl-count-mismatch", "jsonl", _jsonl(GOOD, {"tokens": ["a", "b"], "tags": ["O"]}),
         Fails(2, "2 tokens but 1 tags")),
    Case("jsonl-empty-sentence", "jsonl", _jsonl({"tokens": [], "tags": []}), Fails(1, "empty sentence")),
    Case("jsonl-whitespace-token", "jsonl", _jsonl({"tokens": ["a", " "], "tags": ["O", "O"]}),
         Fails(1, "empty token")),
    Case("jsonl-invalid-tag", "jsonl", _jsonl(GOOD, {"tokens": ["a", "b"], "tags": ["O", "X-PER"]}),
         Fails(2, "token 2 ('b'): invalid tag 'X-PER' under scheme iob2: expected O or B-/I- followed by a type"),
         {"scheme": "iob2"}),
    Case("jsonl-empty-file", "jsonl", b"", Fails(None, EMPTY)),
    Case("jsonl-only-blank-lines", "jsonl", b"\n\n  \n", Fails(None, EMPTY), ray=True),
    Case("jsonl-undecodable-byte", "jsonl", b'{"tokens": ["\xe9"], "tags": ["O"]}\n',
         Fails(1, UNDECODABLE.format(byte="e9"), 13)),
]

CASES = CONLL_CASES + GMB_CASES + JSONL_CASES
RAY_CASES = [c for c in CASES if c.ray]
