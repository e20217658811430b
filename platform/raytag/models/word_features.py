"""Per-word feature layers of the BiLSTM beside its word embedding: characters and
pretrained WordPiece vectors. Both take one row of ids per word and give one vector
per word; id 0 is padding and never contributes. Neither emits a Keras mask: which
*words* are real is decided by ``word_ids`` alone.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from raytag.corpus.vocab import PAD_ID  # noqa: E402

__all__ = ["CHAR_KERNEL_SIZE", "CharFeatures", "PieceVectors"]

CHAR_KERNEL_SIZE = 3


@keras.saving.register_keras_serializable(package="raytag")
class CharFeatures(keras.layers.Layer):
    """One vector per word from its characters: ``[batch, time, chars]`` → ``[batch, time, dim]``.

    ``kind="cnn"``: char embedding → Conv1D (ReLU) → max over the word's real characters.
    ``kind="bilstm"``: char embedding → BiLSTM over the real characters → final states.
    Character padding (id 0) never contributes. The layer emits no Keras mask: which
    *words* are real is decided by ``word_ids`` alone, so a word whose characters are all
    unknown or missing is never masked out.
    """

    def __init__(
        self,
        num_chars: int,
        embedding_dim: int,
        units: int,
        kind: str,
        kernel_size: int = CHAR_KERNEL_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if kind not in ("cnn", "bilstm"):
            raise ValueError(f"char feature kind must be 'cnn' or 'bilstm', got {kind!r}")
        self.num_chars = int(num_chars)
        self.embedding_dim = int(embedding_dim)
        self.units = int(units)
        self.kind = kind
        self.kernel_size = int(kernel_size)
        self.embedding = keras.layers.Embedding(self.num_chars, self.embedding_dim, name="char_embedding")
        if kind == "cnn":
            self.encoder: keras.layers.Layer = keras.layers.Conv1D(
                self.units, self.kernel_size, padding="same", activation="relu", name="char_cnn"
            )
            self.output_dim = self.units
        else:
            self.encoder = keras.layers.Bidirectional(keras.layers.LSTM(self.units), name="char_bilstm")
            self.output_dim = 2 * self.units

    def call(self, char_ids: tf.Tensor) -> tf.Tensor:
        shape = tf.shape(char_ids)
        flat = tf.reshape(char_ids, [-1, shape[2]])
        real = tf.not_equal(flat, PAD_ID)
        x = self.embedding(flat)
        if self.kind == "cnn":
            keep = tf.cast(real, x.dtype)[..., tf.newaxis]
            # Zeroing padded inputs makes a word's last characters see the same zeros as
            # Conv1D's own "same" padding, whatever max_word_length is. Zeroing padded
            # outputs is exact for the max: ReLU outputs are >= 0 anyway.
            x = self.encoder(x * keep) * keep
            x = tf.reduce_max(x, axis=1)
        else:
            # Words with no characters (padded positions, empty tokens) still get one step:
            # cuDNN rejects zero-length sequences. Padded positions are dropped by the word mask.
            first = tf.equal(tf.range(shape[2]), 0)[tf.newaxis, :]
            x = self.encoder(x, mask=tf.logical_or(real, first))
        return tf.reshape(x, [shape[0], shape[1], self.output_dim])

    def compute_mask(self, inputs: tf.Tensor, mask: tf.Tensor | None = None) -> None:
        return None

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_chars=self.num_chars,
            embedding_dim=self.embedding_dim,
            units=self.units,
            kind=self.kind,
            kernel_size=self.kernel_size,
        )
        return config


@keras.saving.register_keras_serializable(package="raytag")
class PieceVectors(keras.layers.Layer):
    """A frozen pretrained vector per word: ``[batch, time, pieces]`` → ``[batch, time, dim]``,
    the mean of the word's real pieces' rows of a fixed embedding table
    (:mod:`raytag.models.word_pieces`).

    The table is never trained: words seen in training and words first met at prediction
    time must stay in the same space. It is saved with the model (``model.keras``), so a
    saved tagger needs no encoder package. :meth:`set_table` fills it after building.
    """

    def __init__(self, num_pieces: int, dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_pieces = int(num_pieces)
        self.dim = int(dim)
        self.table = keras.layers.Embedding(self.num_pieces, self.dim, trainable=False, name="piece_embedding")

    def call(self, piece_ids: tf.Tensor) -> tf.Tensor:
        real = tf.cast(tf.not_equal(piece_ids, PAD_ID), self.compute_dtype)[..., tf.newaxis]
        total = tf.reduce_sum(self.table(piece_ids) * real, axis=2)
        return total / tf.maximum(tf.reduce_sum(real, axis=2), 1.0)

    def set_table(self, vectors: np.ndarray) -> None:
        if vectors.shape != (self.num_pieces, self.dim):
            raise ValueError(f"piece table must be {(self.num_pieces, self.dim)}, got {vectors.shape}")
        self.table.set_weights([np.asarray(vectors, dtype=np.float32)])

    def compute_mask(self, inputs: tf.Tensor, mask: tf.Tensor | None = None) -> None:
        return None

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(num_pieces=self.num_pieces, dim=self.dim)
        return config
