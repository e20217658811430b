"""spaCy's CPU NER accuracy on CoNLL-2003, the reference the BiLSTM is compared against.

Set-up (spaCy lives in a venv of its own so that raytag's .venv stays as locked; ``make
bench-spacy`` does all of this in .venv-spacy)::

    python3 -m venv /work/spacy-venv
    /work/spacy-venv/bin/python -m pip install -c requirements.lock "spacy==3.8.18" seqeval
    /work/spacy-venv/bin/python bench/spacy_ner.py --out runs/bench/spacy_ner.json

What it does, on the CPU in one process (spaCy's training runs in a child process):

- reads train/dev/test from the CoNLL-2003 files (``$RAYTAG_CONLL03``, default
  ``../shared/data/conll2003``: ``train.txt``, ``dev.txt`` or ``valid.txt``, ``test.txt``;
  columns word pos chunk ner), one doc per sentence, ``-DOCSTART-`` lines skipped, IOB1 tags
  normalised to IOB2 (the files are already IOB2, then this changes nothing);
- builds the docs from the gold words, so spaCy never re-tokenizes (see ``spacy_util``);
- trains ``spacy init config --lang en --pipeline ner --optimize efficiency`` (no vectors) with
  ``spacy train --training.max_steps N --training.eval_frequency F --system.seed S``; everything
  else is spaCy's default, early stopping after 1,600 steps without a better dev score included
  (``--patience 0`` turns it off, so that all N steps run);
- loads ``model-best`` (the checkpoint with the best dev score spaCy saw), predicts on docs built
  from the gold words of dev and test, turns ``doc.ents`` into IOB2 tags and scores them with
  seqeval's default (conlleval) mode, micro averaged: the metric ``raytag evaluate`` reports.

The JSON result (stdout, and ``--out``) holds test and dev P/R/F1, per-type test scores, the
dev curve spaCy logged, the best and last evaluated steps, the training wall time (including
spaCy's periodic dev evaluations) and the versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO  # noqa: E402 - bench/ is not a package
from spacy_util import iob2_from_doc, train_ner, write_docbin  # noqa: E402

Sentence = tuple[list[str], list[str]]
_TAG = re.compile(r"^(O|[BI]-\S+)$")


def read_conll(path: Path) -> list[Sentence]:
    """Sentences of ``word pos chunk ner`` lines, blank-line separated, ``-DOCSTART-`` skipped."""
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            columns = line.split()
            if not columns or columns[0] == "-DOCSTART-":
                if words:
                    sentences.append((words, to_iob2(tags)))
                words, tags = [], []
                continue
            if len(columns) != 4 or not _TAG.match(columns[3]):
                raise SystemExit(f"error: {path}:{number}: expected 'word pos chunk ner' with an IOB tag, "
                                 f"got {line.strip()!r}")
            words.append(columns[0])
            tags.append(columns[3])
    if words:
        sentences.append((words, to_iob2(tags)))
    return sentences


def to_iob2(tags: list[str]) -> list[str]:
    """IOB1 to IOB2: an ``I-X`` that does not continue an ``X`` entity opens one (``B-X``)."""
    out: list[str] = []
    for tag in tags:
        if tag.startswith("I-") and (not out or out[-1] == "O" or out[-1][2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
    return out


def splits(data: Path) -> dict[str, Path]:
    dev = next((data / name for name in ("dev.txt", "valid.txt") if (data / name).exists()), data / "dev.txt")
    paths = {"train": data / "train.txt", "dev": dev, "test": data / "test.txt"}
    for path in paths.values():
        if not path.exists():
            raise SystemExit(f"error: {path}: no such file (set --data or RAYTAG_CONLL03)")
    return paths


def score(model: Path, sentences: list[Sentence]) -> dict:
    """seqeval entity micro P/R/F1 (and per type) of ``model`` on the gold words of ``sentences``."""
    import spacy
    from seqeval.metrics import classification_report
    from spacy.tokens import Doc

    nlp = spacy.load(model)
    docs = (Doc(nlp.vocab, words=words) for words, _ in sentences)
    predicted = [iob2_from_doc(doc) for doc in nlp.pipe(docs, batch_size=256)]
    gold = [tags for _, tags in sentences]
    report = classification_report(gold, predicted, output_dict=True, zero_division=0)

    def prf(row: dict) -> dict:
        return {"precision": float(row["precision"]), "recall": float(row["recall"]),
                "f1": float(row["f1-score"]), "support": int(row["support"])}

    averages = {"micro avg", "macro avg", "weighted avg"}
    return {**prf(report["micro avg"]),
            "per_type": {k: prf(v) for k, v in sorted(report.items()) if k not in averages}}


def run(data: Path, work: Path, steps: int, eval_frequency: int, seed: int, patience: int | None) -> dict:
    import seqeval
    import spacy

    corpus = {split: read_conll(path) for split, path in splits(data).items()}
    for split in ("train", "dev"):
        write_docbin(corpus[split], work / f"{split}.spacy")
    trained = train_ner(work, work / "train.spacy", work / "dev.spacy", steps, eval_frequency, seed,
                        patience=patience, echo=True)
    # For an ner-only pipeline spaCy's score is its ents_f (exact spans, micro).
    curve = [(int(e["step"]), float(e["score"])) for e in trained.evaluations]
    # spaCy overwrites model-best whenever a score equals the best so far: the latest such step.
    best_step, best_score = max(curve, key=lambda c: (c[1], c[0])) if curve else (None, None)
    last_step = curve[-1][0] if curve else None
    t0 = time.perf_counter()
    dev = score(trained.best, corpus["dev"])
    test = score(trained.best, corpus["test"])
    return {
        "benchmark": "spaCy efficiency NER on CoNLL-2003 (gold tokens, seqeval micro)",
        "model": "model-best",
        "test": test,
        "dev": {k: v for k, v in dev.items() if k != "per_type"},
        "train_s": round(trained.seconds, 1),
        "max_steps": steps,
        "eval_frequency": eval_frequency,
        "seed": seed,
        "best_step": best_step,
        "last_evaluated_step": last_step,
        # Patience stops spaCy at an evaluation step before max_steps.
        "stopped_early": last_step is not None and last_step + eval_frequency <= steps,
        "patience": patience if patience is not None else "spaCy default (1600)",
        "dev_ents_f_spacy_at_best": best_score,
        "dev_curve_ents_f": {str(s): round(f, 4) for s, f in curve},
        "evaluate_s": round(time.perf_counter() - t0, 1),
        "sentences": {k: len(v) for k, v in corpus.items()},
        "tokens": {k: sum(len(w) for w, _ in v) for k, v in corpus.items()},
        "data": str(data),
        "work": str(work),
        "spacy_version": spacy.__version__,
        "seqeval_version": getattr(seqeval, "__version__", None) or _version("seqeval"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.environ.get("RAYTAG_CONLL03", str(REPO.parent / "shared" / "data" / "conll2003"))
    parser.add_argument("--data", type=Path, default=Path(default_data), help="CoNLL-2003 folder.")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench" / "spacy_ner",
                        help="DocBins, config and trained models go here.")
    parser.add_argument("--steps", type=int, default=6000, help="spaCy's --training.max_steps.")
    parser.add_argument("--eval-frequency", type=int, default=200, help="Steps between dev evaluations.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patience", type=int, help="spaCy's --training.patience (default: its 1600; 0: off).")
    parser.add_argument("--out", type=Path, help="Also write the JSON result here.")
    args = parser.parse_args()
    result = run(args.data, args.work, args.steps, args.eval_frequency, args.seed, args.patience)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
