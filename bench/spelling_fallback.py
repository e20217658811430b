"""``raytag evaluate`` with a spelling fallback in the word lookup: what it would do, untrained.

    python bench/spelling_fallback.py evaluate conll03_bilstm@v1 ../shared/data/conll2003/test.txt \
        --format conll --columns word,pos,chunk,ner --tag-column ner --perturb typos,ocr \
        --perturb-rate 0.1 --seed 0 --out runs/bench/fallback

Any ``raytag`` command line, run with one change: a word the BiLSTM's word vocabulary does not
know (four or more letters, letters only) takes the id of the most frequent vocabulary word one
edit away (insert, delete, replace or adjacent swap; found through a table of one-letter
deletions), instead of the unknown-word id. Characters, casing and piece vectors still come from
the word as written. It patches the lookup in this process only; raytag has no such option (see
BENCHMARKS.md, "A char BiLSTM, and a spelling fallback").
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from raytag.corpus import vocab  # noqa: E402

# Word vocabularies are the large ones; char and label vocabularies are left alone.
_MIN_VOCAB = 1000
_MIN_LENGTH = 4
_plain_id = vocab.Vocabulary.id
_tables: dict[int, dict[str, list[int]]] = {}


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _one_edit(a: str, b: str) -> bool:
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        swapped = len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
        return len(diff) == 1 or swapped
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _table(words: vocab.Vocabulary) -> dict[str, list[int]]:
    table = _tables.get(id(words))
    if table is None:
        table = {}
        for i, item in enumerate(words.items[words.specials :], words.specials):
            for key in _deletions(item) | {item}:
                table.setdefault(key, []).append(i)
        _tables[id(words)] = table
    return table


def _id_with_fallback(self: vocab.Vocabulary, item: str) -> int:
    found = _plain_id(self, item)
    if found != vocab.OOV_ID or len(self.items) < _MIN_VOCAB or len(item) < _MIN_LENGTH or not item.isalpha():
        return found
    word = self._norm(item)
    table = _table(self)
    near = {i for key in _deletions(word) | {word} for i in table.get(key, ())}
    near = {i for i in near if _one_edit(word, self.items[i])}
    # Ids are ranked by training count, so the smallest is the most frequent word.
    return min(near) if near else found


def main() -> None:
    vocab.Vocabulary.id = _id_with_fallback  # type: ignore[method-assign]
    from raytag.cli import app

    sys.argv = ["raytag", *sys.argv[1:]]
    app()


if __name__ == "__main__":
    main()
