"""A linear-chain CRF output layer for the BiLSTM tagger, in tf-keras (Keras 2).

The layer holds the learned transition scores (``transitions[prev, cur]``, ``start``,
``end``) and passes the per-token emission scores through unchanged, mask included.
:class:`CRFTagger` is the functional model that trains it: its train step minimises
the negative log-likelihood of the gold tag paths (forward algorithm), averaged over
real tokens like the softmax model's cross-entropy. Decoding is exact Viterbi over
emissions and transitions, in numpy (:func:`raytag.decoding.decode`); per-token
confidences are the CRF's marginal probabilities (:func:`crf_marginals`).

Sequences are right-padded and every one has at least one real token (``mask[:, 0]``).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from typing import Any  # noqa: E402

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from raytag.corpus.vocab import PAD_ID  # noqa: E402
from raytag.models.bilstm_batches import CLEAN_MASK  # noqa: E402

__all__ = ["CLEAN_MASK", "CRF", "CRFTagger", "consistency", "crf_log_likelihood", "crf_log_norm", "crf_marginals",
           "crf_path_score"]


@keras.saving.register_keras_serializable(package="raytag")
class CRF(keras.layers.Layer):
    """Transition scores of a linear-chain CRF; ``call`` returns the emissions it is given."""

    def __init__(self, num_labels: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_labels = int(num_labels)
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        n = self.num_labels
        # Zeros: training starts from the softmax model's per-token decisions.
        self.transitions = self.add_weight(name="transitions", shape=(n, n), initializer="zeros")
        self.start = self.add_weight(name="start", shape=(n,), initializer="zeros")
        self.end = self.add_weight(name="end", shape=(n,), initializer="zeros")
        super().build(input_shape)

    def call(self, emissions: tf.Tensor) -> tf.Tensor:
        return tf.identity(emissions)

    def compute_mask(self, inputs: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor | None:
        return mask

    def scores(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return self.transitions, self.start, self.end

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(num_labels=self.num_labels)
        return config


def crf_log_norm(emissions: tf.Tensor, mask: tf.Tensor, transitions: tf.Tensor, start: tf.Tensor,
                 end: tf.Tensor) -> tf.Tensor:
    """``log Z`` per sentence ``[B]``: the log-sum of the scores of every tag path (forward algorithm)."""
    emissions = tf.convert_to_tensor(emissions)
    mask = tf.cast(mask, tf.bool)
    alpha = start[tf.newaxis, :] + emissions[:, 0]

    def step(alpha: tf.Tensor, elems: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        emission, real = elems
        nxt = tf.reduce_logsumexp(alpha[:, :, tf.newaxis] + transitions[tf.newaxis], axis=1) + emission
        # Padded steps carry the last real step's scores through to the end.
        return tf.where(real[:, tf.newaxis], nxt, alpha)

    rest = (tf.transpose(emissions[:, 1:], [1, 0, 2]), tf.transpose(mask[:, 1:]))
    alpha = tf.foldl(step, rest, initializer=alpha)
    return tf.reduce_logsumexp(alpha + end[tf.newaxis, :], axis=1)


def crf_path_score(emissions: tf.Tensor, tags: tf.Tensor, mask: tf.Tensor, transitions: tf.Tensor,
                   start: tf.Tensor, end: tf.Tensor) -> tf.Tensor:
    """The score ``[B]`` of the given tag paths: emissions, start, pairwise and end scores."""
    emissions = tf.convert_to_tensor(emissions)
    tags = tf.cast(tags, tf.int32)
    real = tf.cast(mask, emissions.dtype)
    unary = tf.reduce_sum(tf.reduce_sum(emissions * tf.one_hot(tags, tf.shape(emissions)[-1],
                                                               dtype=emissions.dtype), -1) * real, 1)
    pairs = tf.stack([tags[:, :-1], tags[:, 1:]], axis=-1)
    pairwise = tf.reduce_sum(tf.gather_nd(transitions, pairs) * real[:, 1:], 1)
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), 1)
    last = tf.gather(tags, lengths - 1, batch_dims=1)
    return unary + pairwise + tf.gather(start, tags[:, 0]) + tf.gather(end, last)


def crf_log_likelihood(emissions: tf.Tensor, tags: tf.Tensor, mask: tf.Tensor, transitions: tf.Tensor,
                       start: tf.Tensor, end: tf.Tensor) -> tf.Tensor:
    """``log p(tags | sentence)`` per sentence ``[B]``."""
    return (crf_path_score(emissions, tags, mask, transitions, start, end)
            - crf_log_norm(emissions, mask, transitions, start, end))


def crf_marginals(emissions: tf.Tensor, mask: tf.Tensor, transitions: tf.Tensor, start: tf.Tensor,
                  end: tf.Tensor) -> tf.Tensor:
    """Per-token marginal tag probabilities ``[B, T, n]`` (zeros at padded positions).

    The gradient of ``log Z`` with respect to the emissions is exactly the marginals,
    which spares a hand-written backward pass.
    """
    emissions = tf.convert_to_tensor(emissions)
    with tf.GradientTape() as tape:
        tape.watch(emissions)
        log_z = tf.reduce_sum(crf_log_norm(emissions, mask, transitions, start, end))
    return tape.gradient(log_z, emissions)


def consistency(clean: tf.Tensor, noisy: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Mean KL divergence ``KL(softmax(clean) || softmax(noisy))`` per token over ``mask``.

    Both are emission scores ``[B, T, n]``; the per-token softmax stands in for the CRF's
    marginals, whose gradient would need a second pass through the forward algorithm.
    Gradients reach both sides, as in stability training (Zheng et al., 2016).
    """
    clean_log = tf.nn.log_softmax(tf.cast(clean, tf.float32))
    noisy_log = tf.nn.log_softmax(tf.cast(noisy, tf.float32))
    kl = tf.reduce_sum(tf.exp(clean_log) * (clean_log - noisy_log), axis=-1)
    mask = tf.cast(mask, tf.float32)
    return tf.reduce_sum(kl * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


@keras.saving.register_keras_serializable(package="raytag")
class CRFTagger(keras.Model):
    """The functional BiLSTM model with a :class:`CRF` layer named ``crf`` as its output.

    Built like any functional model (``CRFTagger(inputs=..., outputs=...)``); compiled
    with an optimizer only, since the loss needs the transition scores. A batch may carry
    a third element, the clean originals of its (perturbed) inputs with a ``CLEAN_MASK``;
    the step then adds ``stability_weight`` × :func:`consistency` between the two passes.
    """

    # Set by the training loop (train.augment.stability); read when the train step is traced.
    stability_weight = 0.0

    def compile(self, *args: Any, **kwargs: Any) -> None:
        super().compile(*args, **kwargs)
        self._nll_tracker = keras.metrics.Mean(name="loss")

    def compile_from_config(self, config: dict[str, Any]) -> None:
        # Keras skips restoring the compile state of a model whose compile() is overridden;
        # this one's override only adds the loss tracker, so restoring it is safe.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self) -> list[Any]:
        tracker = getattr(self, "_nll_tracker", None)
        return [tracker] if tracker is not None else []

    def crf_loss(self, inputs: dict[str, tf.Tensor], tags: tf.Tensor, emissions: tf.Tensor) -> tf.Tensor:
        """Negative log-likelihood of the gold paths per real token of this batch."""
        mask = tf.not_equal(inputs["word_ids"], PAD_ID)
        transitions, start, end = self.get_layer("crf").scores()
        emissions = tf.cast(emissions, tf.float32)
        nll = -crf_log_likelihood(emissions, tags, mask, transitions, start, end)
        tokens = tf.maximum(tf.reduce_sum(tf.cast(mask, tf.float32)), 1.0)
        return tf.reduce_sum(nll) / tokens

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        inputs, tags = data[0], data[1]
        clean = data[2] if len(data) > 2 and self.stability_weight else None
        with tf.GradientTape() as tape:
            emissions = self(inputs, training=True)
            loss = self.crf_loss(inputs, tags, emissions)
            total = loss
            if clean is not None:
                originals = {name: value for name, value in clean.items() if name != CLEAN_MASK}
                total += self.stability_weight * consistency(self(originals, training=True), emissions,
                                                             clean[CLEAN_MASK])
            # Replicas' gradients are summed; dividing here averages them (as compiled losses do).
            scaled = total / tf.distribute.get_strategy().num_replicas_in_sync
        self.optimizer.minimize(scaled, self.trainable_variables, tape=tape)
        self._nll_tracker.update_state(loss)
        return {"loss": self._nll_tracker.result()}

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        inputs, tags = data[0], data[1]
        emissions = self(inputs, training=False)
        self._nll_tracker.update_state(self.crf_loss(inputs, tags, emissions))
        return {"loss": self._nll_tracker.result()}
