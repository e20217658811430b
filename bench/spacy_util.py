"""spaCy's CPU NER trained one way for every benchmark that compares raytag against it.

The pipeline is what ``spacy init config --lang en --pipeline ner --optimize efficiency``
writes (no vectors, CPU), trained with ``spacy train`` in a child process with a fixed seed.
Only the step budget, the evaluation frequency and the seed are overridden; everything else
(batching, optimizer, dropout, patience) stays spaCy's default.

Training docs are built from gold words alone: such docs have unknown spaces, so spaCy's
corpus reader keeps their tokens as they are instead of re-tokenizing the text
(``Corpus._make_example``), and dev scores during training are on the gold tokens too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SPACY_VERSION = "3.8.18"


def write_docbin(sentences: Iterable[tuple[Sequence[str], Sequence[str]]], path: Path) -> int:
    """Write ``(words, IOB2 tags)`` sentences as a DocBin at ``path``; returns the number of docs."""
    import spacy
    from spacy.tokens import Doc, DocBin

    vocab = spacy.blank("en").vocab
    docbin = DocBin()
    count = 0
    for words, tags in sentences:
        if not words:
            continue
        doc = Doc(vocab, words=list(words), ents=list(tags))
        # The gold-tokenization guarantee above rests on this.
        assert doc.has_unknown_spaces
        docbin.add(doc)
        count += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    docbin.to_disk(path)
    return count


@dataclass
class Trained:
    output: Path
    seconds: float
    # One record per evaluation on dev, as spaCy's console logger writes them (step, score, ...).
    evaluations: list[dict] = field(default_factory=list)

    @property
    def best(self) -> Path:
        return self.output / "model-best"

    @property
    def last(self) -> Path:
        return self.output / "model-last"


def train_ner(work: Path, train: Path, dev: Path, steps: int, eval_frequency: int = 200, seed: int = 0,
              patience: int | None = None, echo: bool = False) -> Trained:
    """Train the efficiency NER on ``train`` (evaluating on ``dev``) for at most ``steps`` updates.

    A very large ``eval_frequency`` skips evaluation after step 0 (for throughput-only runs,
    which then use ``model-last``). ``patience`` None keeps spaCy's early stopping (1,600 steps
    without a better dev score), 0 turns it off. ``echo`` streams spaCy's training table to stderr.
    """
    work.mkdir(parents=True, exist_ok=True)
    config = work / "config.cfg"
    log = work / "train_log.jsonl"
    log.unlink(missing_ok=True)
    python = sys.executable
    subprocess.run([python, "-m", "spacy", "init", "config", str(config), "--lang", "en",
                    "--pipeline", "ner", "--optimize", "efficiency", "--force"], check=True, capture_output=True)
    command = [python, "-m", "spacy", "train", str(config), "--output", str(work / "out"),
               "--paths.train", str(train), "--paths.dev", str(dev), "--gpu-id", "-1",
               f"--system.seed={seed}", f"--training.max_steps={steps}",
               f"--training.eval_frequency={eval_frequency}",
               # The same console table, plus every evaluation as a JSON line (exact scores and steps).
               "--training.logger.@loggers=spacy.ConsoleLogger.v3", "--training.logger.progress_bar=null",
               f"--training.logger.output_file={log}"]
    if patience is not None:
        command.append(f"--training.patience={patience}")
    t0 = time.perf_counter()
    proc = subprocess.run(command, stdout=sys.stderr if echo else subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write((proc.stdout or "")[-5000:])
        raise SystemExit(f"spacy train failed with exit status {proc.returncode}")
    evaluations = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    return Trained(work / "out", seconds, evaluations)


def iob2_from_doc(doc) -> list[str]:  # noqa: ANN001 - a spacy.tokens.Doc, imported lazily
    """The doc's entities as one IOB2 tag per token."""
    tags = ["O"] * len(doc)
    for ent in doc.ents:
        tags[ent.start] = "B-" + ent.label_
        for i in range(ent.start + 1, ent.end):
            tags[i] = "I-" + ent.label_
    return tags
