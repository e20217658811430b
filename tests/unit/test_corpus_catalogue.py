"""Every corpus case of the catalogue through the in-process reader (the Ray subset is in
tests/integration/test_prepare_catalogue.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from raytag.config import CorpusConfig, JobConfig
from raytag.corpus.readers import read_corpus
from raytag.errors import CorpusError
from raytag.prepare import reader_options
from tests.corpus_catalogue import CASES, Case, Fails


def _read(case: Case, tmp_path: Path):
    path = tmp_path / f"{case.id}{case.suffix}"
    path.write_bytes(case.data)
    corpus = CorpusConfig(format=case.format, path=str(path), **case.corpus)
    # Built the way prepare builds them, so the config → reader mapping is covered too.
    options = reader_options(JobConfig(name="catalogue", corpus=corpus))
    return path, lambda: read_corpus(str(path), options, scheme=corpus.scheme, on_error=corpus.on_error)


def test_the_catalogue_is_large_and_covers_every_format():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
    for fmt in ("conll", "gmb_csv", "jsonl"):
        kinds = {type(c.expect) for c in CASES if c.format == fmt}
        assert len(kinds) == 2, f"{fmt} needs both good and bad cases"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_corpus_case(case: Case, tmp_path: Path):
    path, read = _read(case, tmp_path)
    expect = case.expect
    if isinstance(expect, Fails):
        with pytest.raises(CorpusError) as info:
            read()
        err = info.value
        assert (err.file, err.line, err.reason, err.byte_offset) == (str(path), expect.line, expect.reason,
                                                                      expect.byte_offset)
        where = str(path) if expect.line is None else f"{path}:{expect.line}"
        assert str(err).startswith(where)
        return
    result = read()
    assert [(s.line, s.tokens, s.tags) for s in result.sentences] == expect.sentences
    assert result.scheme == expect.scheme
    assert [(s.error_line, s.error) for s in result.skipped] == expect.skipped
