"""Small corpora written by tests (no real data needed)."""

from __future__ import annotations

from pathlib import Path

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


def synthetic_conll(sentences: int, seed: int = 0) -> str:
    """A deterministic CoNLL file with PER/LOC/ORG entities and varied lengths."""
    import random

    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "said", "the", "in", "of", "to", "and"]
    names = {"PER": ["Ada", "Alan", "Grace"], "LOC": ["Paris", "Lima", "Oslo"], "ORG": ["Acme", "Initech"]}
    lines = ["-DOCSTART- -X- -X- O", ""]
    for _ in range(sentences):
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
