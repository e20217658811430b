"""Small corpora written by tests (no real data needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
1996-08-22 CD I-NP O
"""

GMB = (
    "Sentence #,Word,POS,Tag\r\n"
    "Sentence: 1,Thousands,NNS,O\r\n"
    ",of,IN,O\r\n"
    ",demonstrators,NNS,O\r\n"
    ",marched,VBN,O\r\n"
    ",through,IN,O\r\n"
    ",London,NNP,B-geo\r\n"
    ",.,.,O\r\n"
    "Sentence: 2,Families,NNS,O\r\n"
    ",\",\",\",\",O\r\n"
    ",Iranian,JJ,B-gpe\r\n"
    ",officials,NNS,O\r\n"
    "Sentence: 3,\"\"\"\",``,O\r\n"
    ",Mr.,NNP,B-per\r\n"
    ",Bush,NNP,I-per\r\n"
    ",\"\"\"\",``,O\r\n"
)


def write(tmp: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp / name
    path.write_bytes(text.encode(encoding))
    return path


def synthetic_conll(sentences: int, seed: int = 0, document_every: int | None = None) -> str:
    """A deterministic CoNLL file with PER/LOC/ORG entities and varied lengths.

    One document, or with ``document_every`` a new ``-DOCSTART-`` document every that many sentences.
    """
    import random

    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "said", "the", "in", "of", "to", "and"]
    names = {"PER": ["Ada", "Alan", "Grace"], "LOC": ["Paris", "Lima", "Oslo"], "ORG": ["Acme", "Initech"]}
    lines = ["-DOCSTART- -X- -X- O", ""]
    for index in range(sentences):
        if document_every and index and index % document_every == 0:
            lines += ["-DOCSTART- -X- -X- O", ""]
        for _ in range(rng.randint(1, 12)):
            if rng.random() < 0.3:
                kind = rng.choice(sorted(names))
                for j in range(rng.randint(1, 2)):
                    lines.append(f"{rng.choice(names[kind])} NNP B-NP {'B' if j == 0 else 'I'}-{kind}")
            else:
                lines.append(f"{rng.choice(words)} NN B-NP O")
        lines.append("")
    return "\n".join(lines) + "\n"


def tiny_encoder(directory: Path, words: list[str], hidden: int = 32, layers: int = 1) -> Path:
    """A randomly initialised tiny BERT and a WordPiece tokenizer made here, saved as an HF directory."""
    import torch
    from transformers import BertConfig, BertModel

    from raytag.models.subwords import tiny_wordpiece_tokenizer

    tokenizer = tiny_wordpiece_tokenizer(words)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=hidden * 2, max_position_embeddings=64, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    directory.mkdir(parents=True, exist_ok=True)
    BertModel(config).save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


NER_LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def tiny_bilstm_artifact(directory: Path, seed: int = 0) -> Path:
    """Write an untrained tiny BiLSTM tagger artifact to ``directory/artifact`` (valid predictions)."""
    import json
    from collections import Counter

    import tf_keras

    from raytag.config import BiLSTMConfig
    from raytag.corpus.vocab import Vocabulary
    from raytag.models import bilstm

    tf_keras.utils.set_random_seed(seed)
    config = BiLSTMConfig(embedding_dim=8, lstm_units=8, lstm_layers=1, char_features="none")
    words = Vocabulary.build(Counter("my name is wolfgang and i live in berkeley california .".split()))
    chars = Vocabulary.build(Counter("abcdefghijklmnopqrstuvwxyz."))
    labels = Vocabulary.labels(NER_LABELS)
    out = Path(directory) / "artifact"
    model = bilstm.build_model(config, len(words), len(chars), len(labels))
    bilstm.save_model(model, out, config)
    words.save(out / "words.json")
    chars.save(out / "chars.json")
    labels.save(out / "labels.json")
    meta = {"kind": "bilstm", "labels": NER_LABELS, "entity": True, "constrained_decoding": True,
            "char_features": "none", "max_word_length": 20}
    (out / "tagger.json").write_text(json.dumps(meta))
    return out


def publish_bilstm(registry_root: Path, name: str, seed: int = 0) -> Any:
    """Register an untrained tiny BiLSTM tagger (valid predictions, no training needed)."""
    import tempfile

    from raytag.registry import Registry

    with tempfile.TemporaryDirectory() as tmp:
        out = tiny_bilstm_artifact(Path(tmp), seed)
        return Registry(str(registry_root)).publish(name, out, kind="bilstm", labels=NER_LABELS,
                                                    metrics={"test_f1": 0.5}, config={}, data_fingerprint="test")


def publish_transformer(registry_root: Path, name: str, work: Path, max_length: int = 16) -> Any:
    """Register an untrained tiny transformer tagger whose window is ``max_length`` subwords."""
    import json
    import tempfile

    from raytag.config import TransformerConfig
    from raytag.models import transformer
    from raytag.registry import Registry

    encoder = tiny_encoder(work / "encoder", "my name is wolfgang and i live in berkeley california".split())
    model = transformer.build_model(TransformerConfig(encoder=str(encoder)), NER_LABELS)
    tokenizer = transformer.load_tokenizer(encoder)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "artifact"
        model.save_pretrained(str(out / "model"))
        tokenizer.save_pretrained(str(out / "model"))
        meta = {"kind": "transformer", "labels": NER_LABELS, "entity": True, "constrained_decoding": True,
                "max_length": max_length, "stride": 2}
        (out / "tagger.json").write_text(json.dumps(meta))
        return Registry(str(registry_root)).publish(name, out, kind="transformer", labels=NER_LABELS,
                                                    metrics={"test_f1": 0.4}, config={}, data_fingerprint="test")


class TableShard:
    """The slice of the Ray Data shard API the training loops use, over an in-memory Arrow table."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def iter_batches(self, batch_size: int, batch_format: str = "pyarrow"):
        for offset in range(0, self.table.num_rows, batch_size):
            yield self.table.slice(offset, batch_size)


def hand_prepared_corpus(directory: Path, splits: dict[str, list[list[str]]], tag_of: Any) -> Any:
    """A prepared corpus written without Ray: vocabularies from ``splits["train"]``, one shard per
    split, entity tags from ``tag_of(word)`` (IOB2 labels O, B-PER, I-PER, B-LOC)."""
    import json
    from collections import Counter

    import pyarrow as pa
    import pyarrow.parquet as pq

    from raytag.corpus.prepared import PreparedCorpus
    from raytag.corpus.vocab import Vocabulary

    train = splits["train"]
    words = Vocabulary.build(Counter(w for s in train for w in s))
    chars = Vocabulary.build(Counter(c for s in train for w in s for c in w))
    labels = Vocabulary.labels(["O", "B-PER", "I-PER", "B-LOC"])
    directory.mkdir(parents=True)
    for vocab, name in ((words, "words.json"), (chars, "chars.json"), (labels, "labels.json")):
        vocab.save(directory / name)
    manifest: dict[str, Any] = {"splits": {}, "entity": True, "fingerprint": "test"}
    for split, rows in splits.items():
        tags = [[tag_of(w) for w in s] for s in rows]
        table = pa.table({"tokens": rows, "tags": tags, "word_ids": [words.encode(s) for s in rows],
                          "tag_ids": [labels.encode(t) for t in tags]})
        pq.write_table(table, directory / f"{split}.parquet")
        manifest["splits"][split] = {"shards": [f"{split}.parquet"], "sentences": len(rows)}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return PreparedCorpus(directory)
