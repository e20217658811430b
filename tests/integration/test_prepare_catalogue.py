"""The Ray subset of the corpus catalogue through the Ray Data prepare pipeline.

Every case gives the same sentences or the same error as the in-process reader
(tests/unit/test_corpus_catalogue.py), and a failed run leaves nothing behind. The files
are tiny and share the session's Ray, so each case costs well under a second.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from raytag.config import CorpusConfig, JobConfig, PrepareConfig
from raytag.errors import CorpusError
from raytag.prepare import prepare
from tests.corpus_catalogue import ONE_COLUMN, RAY_CASES, Case, Fails


def _job(case: Case, path: Path, tmp_path: Path) -> JobConfig:
    corpus = CorpusConfig(format=case.format, splits={"train": str(path)}, **case.corpus)
    # Small chunks: the larger cases are cut into several, as a big corpus would be.
    return JobConfig(name="catalogue", workdir=str(tmp_path / "runs"), corpus=corpus,
                     prepare=PrepareConfig(chunk_bytes=1024))


@pytest.mark.parametrize("case", RAY_CASES, ids=lambda c: c.id)
def test_corpus_case_through_prepare(ray_local, case: Case, tmp_path: Path):
    path = tmp_path / f"{case.id}{case.suffix}"
    path.write_bytes(case.data)
    job = _job(case, path, tmp_path)
    expect = case.expect
    if isinstance(expect, Fails):
        with pytest.raises(CorpusError) as info:
            prepare(job, tmp_path / "out")
        err = info.value
        assert (err.file, err.line, err.reason, err.byte_offset) == (str(path), expect.line, expect.reason,
                                                                      expect.byte_offset)
        assert sorted(p.name for p in tmp_path.iterdir()) == [path.name], "a failed prepare left files behind"
        return
    manifest = prepare(job, tmp_path / "out").manifest
    table = pq.read_table(tmp_path / "out" / "splits" / "train").sort_by("sid")
    rows = [(r["line"], r["tokens"], r["tags"]) for r in table.select(["line", "tokens", "tags"]).to_pylist()]
    assert rows == expect.sentences
    assert manifest["scheme"]["source"] == expect.scheme
    assert manifest["errors"]["skipped_sentences"] == len(expect.skipped)
    assert manifest["errors"]["examples"] == [f"{path}:{line}: {reason}" for line, reason in expect.skipped]


def test_cli_prepare_corpus_error_exits_2_with_one_line(ray_local, tmp_path: Path):
    from raytag.cli import app

    corpus = tmp_path / "one.conll"
    corpus.write_text("Ada\nlives\n")
    config = tmp_path / "job.yaml"
    config.write_text(f"name: cli\ncorpus:\n  format: conll\n  path: {corpus}\n")
    result = CliRunner().invoke(app, ["prepare", str(config), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.stderr == f"error: {corpus}:1: {ONE_COLUMN}\n"
    assert not (tmp_path / "o").exists()
