"""Pretrained word vectors for the BiLSTM from the bundled encoder's WordPiece embeddings.

No word-vector file (GloVe, fastText) can be downloaded here, but the bundled
all-MiniLM-L6-v2 carries a 30,522-entry WordPiece embedding table trained on far more
text than any tagging corpus. A word's pretrained vector is the mean of its pieces'
input embeddings (the encoder's tokenizer lowercases, so the vector ignores case; the
cased characters and casing features carry it). Every word gets one, including words never seen in
training, which is where a randomly initialised word embedding has nothing to offer.

This module maps words to piece ids and loads the table; the Keras side is
:class:`raytag.models.word_features.PieceVectors`. Plain Python: the fast tokenizer is
the ``tokenizers`` package, the table is read with ``safetensors`` (no torch).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from raytag.corpus.vocab import PAD_ID

__all__ = ["TOKENIZER_FILE", "WordPieces", "bundled_piece_vectors"]

# The tokenizer as copied into a BiLSTM artifact, so tagging never needs the encoder package.
TOKENIZER_FILE = "word_pieces.json"
_EMBEDDING_KEY = "embeddings.word_embeddings.weight"


class WordPieces:
    """Words → WordPiece ids (at most ``max_pieces`` per word, at least one: ``[UNK]`` for
    a word the tokenizer drops entirely). Ids are cached per word."""

    def __init__(self, tokenizer_file: str | os.PathLike[str], max_pieces: int) -> None:
        from tokenizers import Tokenizer

        if max_pieces < 1:
            raise ValueError(f"max_pieces must be >= 1, got {max_pieces}")
        self.tokenizer_file = Path(tokenizer_file)
        self.max_pieces = int(max_pieces)
        self._tokenizer = Tokenizer.from_file(str(self.tokenizer_file))
        # The encoder's file pads and truncates whole sequences; words are encoded one by one.
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        unk = self._tokenizer.token_to_id("[UNK]")
        # [PAD] must be raytag's padding id, which the model masks out of every word's mean.
        if self._tokenizer.token_to_id("[PAD]") != PAD_ID or unk is None:
            raise ValueError(f"{self.tokenizer_file}: not a BERT-style WordPiece vocabulary ([PAD] = 0, [UNK])")
        self._unk = int(unk)
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def bundled(cls, max_pieces: int) -> WordPieces:
        from raytag.models.subwords import bundled_encoder_path

        return cls(bundled_encoder_path() / "tokenizer.json", max_pieces)

    @classmethod
    def load(cls, directory: str | os.PathLike[str], max_pieces: int) -> WordPieces:
        """The tokenizer an artifact carries (written by :meth:`save`)."""
        return cls(Path(directory) / TOKENIZER_FILE, max_pieces)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        target = Path(directory) / TOKENIZER_FILE
        shutil.copyfile(self.tokenizer_file, target)
        return target

    @property
    def num_pieces(self) -> int:
        return int(self._tokenizer.get_vocab_size())

    def ids(self, word: str) -> list[int]:
        cached = self._cache.get(word)
        if cached is None:
            pieces = self._tokenizer.encode(word, add_special_tokens=False).ids[: self.max_pieces]
            cached = self._cache[word] = pieces or [self._unk]
        return cached


def bundled_piece_vectors() -> np.ndarray:
    """The bundled encoder's input embedding table, ``[pieces, dim]`` float32."""
    from safetensors import safe_open

    from raytag.models.subwords import bundled_encoder_path

    with safe_open(str(bundled_encoder_path() / "model.safetensors"), "np") as weights:
        return np.asarray(weights.get_tensor(_EMBEDDING_KEY), dtype=np.float32)
