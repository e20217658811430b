"""Evaluating on a labelled file scores exactly what the prepared split of the same file scores."""

from __future__ import annotations

from raytag.artifact import evaluate_tagger
from raytag.config import CorpusConfig, JobConfig
from raytag.corpus.prepared import PreparedCorpus
from raytag.evaluate_files import evaluate_files
from raytag.prepare import prepare
from raytag.tagger import load_tagger
from tests.helpers import publish_bilstm, synthetic_conll, write


def test_file_evaluation_equals_prepared_split(ray_local, tmp_path):
    # The tiny tagger knows PER and LOC only, so the corpus has no ORG.
    train = write(tmp_path, "train.conll", synthetic_conll(40, seed=1).replace("-ORG", "-LOC"))
    test = write(tmp_path, "test.conll", synthetic_conll(30, seed=2).replace("-ORG", "-LOC"))
    job = JobConfig(name="t", workdir=str(tmp_path / "runs"),
                    corpus=CorpusConfig(format="conll", splits={"train": str(train), "test": str(test)}))
    corpus = PreparedCorpus(prepare(job, tmp_path / "prepared").directory)
    publish_bilstm(tmp_path / "registry", "tiny")
    tagger = load_tagger("tiny", str(tmp_path / "registry"))

    prepared = evaluate_tagger(tagger, corpus, "test")
    from_file = evaluate_files(tagger, [test])
    assert prepared.pop("split") == "test"
    assert prepared["num_sentences"] == 30
    assert {k: from_file[k] for k in prepared} == prepared
