"""The workshop's BiLSTM tagger in tf-keras (Keras 2).

``word_ids`` → Embedding(mask_zero) [⊕ per-word char features] [⊕ frozen pretrained
WordPiece vectors] [⊕ casing embedding] →
N × BiLSTM → per-token softmax, or emission scores under a linear-chain CRF
(:mod:`raytag.models.crf`). Id 0 is padding everywhere: the word embedding's mask
reaches the LSTMs (so a padded position never changes a real token's prediction, in
either direction) and the loss and metrics (so padded positions are never trained on
or counted).
Batches are padded per batch to their longest sentence; nothing is truncated except
characters beyond ``max_word_length`` inside a word. The batching helpers
(:func:`encode_batch`, :func:`bucket_batches`) live in :mod:`raytag.models.bilstm_batches`,
free of TensorFlow, and are re-exported here.

Importing this module imports TensorFlow. It pins tf-keras because Keras 3 does not
work under ``MultiWorkerMirroredStrategy``.
"""

from __future__ import annotations

import os

# Must be set before anything imports TensorFlow, or tf.keras would resolve to Keras 3.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import json  # noqa: E402
from collections.abc import Mapping, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from raytag.config import BiLSTMConfig  # noqa: E402
from raytag.corpus.vocab import PAD_ID  # noqa: E402
from raytag.decoding import TransitionScores, decode  # noqa: E402
from raytag.models.bilstm_batches import bucket_batches, encode_batch  # noqa: E402
from raytag.models.casing import NUM_CASING_IDS  # noqa: E402
from raytag.models.crf import CRF, CRFTagger, crf_marginals  # noqa: E402
from raytag.models.word_features import CharFeatures, PieceVectors  # noqa: E402
from raytag.models.weight_average import make_optimizer  # noqa: E402
from raytag.models.word_pieces import WordPieces, bundled_piece_vectors  # noqa: E402

__all__ = [
    "CharFeatures",
    "PieceVectors",
    "WordPieces",
    "bucket_batches",
    "build_model",
    "compile_model",
    "decode_outputs",
    "encode_batch",
    "export_saved_model",
    "is_crf",
    "load_model",
    "predict_outputs",
    "predict_proba",
    "save_model",
    "transition_scores",
]

MODEL_FILE = "model.keras"
CONFIG_FILE = "model_config.json"
# A TensorFlow SavedModel of the same weights: loads with tf.saved_model.load alone,
# without raytag's custom layers (which model.keras needs registered).
SAVED_MODEL_DIR = "saved_model"
SERVING_OUTPUT = "scores"


def build_model(config: BiLSTMConfig, num_words: int, num_chars: int, num_labels: int) -> keras.Model:
    """Build (not compile) the tagger.

    Inputs (a dict): ``word_ids`` int32 ``[batch, time]``; unless
    ``config.char_features == "none"``, ``char_ids`` int32 ``[batch, time, max_word_length]``;
    with ``config.encoder_vectors``, ``piece_ids`` int32 ``[batch, time, max_word_pieces]``
    (looked up in the bundled encoder's frozen WordPiece table);
    with ``config.casing_features``, ``casing_ids`` int32 ``[batch, time]``.
    Output, carrying the word mask: softmax probabilities ``[batch, time, num_labels]``, or
    with ``config.output == "crf"`` emission scores of that shape from a :class:`CRFTagger`.
    """
    if num_words < 2:
        raise ValueError(f"num_words must be >= 2 (padding and OOV ids are reserved), got {num_words}")
    if num_labels < 1:
        raise ValueError(f"num_labels must be >= 1, got {num_labels}")
    use_chars = config.char_features != "none"
    if use_chars and num_chars < 2:
        raise ValueError(f"num_chars must be >= 2 with char features, got {num_chars}")

    inputs = {"word_ids": keras.Input(shape=(None,), dtype="int32", name="word_ids")}
    x = keras.layers.Embedding(num_words, config.embedding_dim, mask_zero=True, name="word_embedding")(
        inputs["word_ids"]
    )
    if use_chars:
        inputs["char_ids"] = keras.Input(shape=(None, config.max_word_length), dtype="int32", name="char_ids")
        chars = CharFeatures(
            num_chars, config.char_embedding_dim, config.char_units, config.char_features, name="char_features"
        )(inputs["char_ids"])
        # Concatenate ANDs masks, treating the mask-less char features as all-real.
        x = keras.layers.Concatenate(name="word_and_chars")([x, chars])
    if config.encoder_vectors:
        table = bundled_piece_vectors()
        inputs["piece_ids"] = keras.Input(shape=(None, config.max_word_pieces), dtype="int32", name="piece_ids")
        layer = PieceVectors(table.shape[0], table.shape[1], name="word_pieces")
        pieces = layer(inputs["piece_ids"])
        layer.set_table(table)
        x = keras.layers.Concatenate(name="word_and_pieces")([x, pieces])
    if config.casing_features:
        inputs["casing_ids"] = keras.Input(shape=(None,), dtype="int32", name="casing_ids")
        casing = keras.layers.Embedding(NUM_CASING_IDS, config.casing_embedding_dim, name="casing_embedding")(
            inputs["casing_ids"]
        )
        x = keras.layers.Concatenate(name="word_and_casing")([x, casing])
    for layer in range(config.lstm_layers):
        lstm = keras.layers.LSTM(
            config.lstm_units,
            return_sequences=True,
            dropout=config.dropout,
            recurrent_dropout=config.recurrent_dropout,
        )
        x = keras.layers.Bidirectional(lstm, name=f"bilstm_{layer + 1}")(x)
    if config.output == "crf":
        emissions = keras.layers.TimeDistributed(keras.layers.Dense(num_labels), name="tags")(x)
        outputs = CRF(num_labels, name="crf")(emissions)
        return CRFTagger(inputs=inputs, outputs=outputs, name=f"bilstm_{config.char_features}_crf")
    outputs = keras.layers.TimeDistributed(keras.layers.Dense(num_labels, activation="softmax"), name="tags")(x)
    return keras.Model(inputs=inputs, outputs=outputs, name=f"bilstm_{config.char_features}")


def compile_model(model: keras.Model, learning_rate: float | Any, average_decay: float = 0.0) -> None:
    """Adam + sparse categorical cross-entropy + token accuracy, all over real tokens only.

    No sample weights are needed: the output carries the word mask, and tf-keras uses it
    as the weight of every loss and metric term, averaging the loss over real tokens.
    A CRF model trains on its own loss (the paths' negative log-likelihood per real token).
    Under a distribution strategy, call this inside the scope that built the model.
    ``learning_rate`` is a positive number or a Keras schedule
    (:func:`raytag.models.lr_schedule.learning_rate`). With ``average_decay`` above 0 the
    optimizer also keeps a moving average of the weights (:mod:`raytag.models.weight_average`).
    """
    optimizer = make_optimizer(learning_rate, average_decay)
    if is_crf(model):
        model.compile(optimizer=optimizer)
        model.optimizer.build(model.trainable_variables)
        return
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    # Creating Adam's slots now (as Keras does when loading a compiled model) saves the
    # train step a second trace, and lets an untrained model save its full optimizer state.
    model.optimizer.build(model.trainable_variables)


def _model_inputs(model: keras.Model, inputs: Mapping[str, np.ndarray]) -> dict[str, tf.Tensor]:
    selected = {}
    for name in model.input_names:
        if name not in inputs:
            raise ValueError(f"model {model.name!r} needs input {name!r}; got {sorted(inputs)}")
        selected[name] = tf.cast(inputs[name], tf.int32)
    return selected


def is_crf(model: keras.Model) -> bool:
    """Whether ``model`` ends in a CRF layer (``model.output == "crf"``)."""
    return isinstance(model, CRFTagger)


def transition_scores(model: keras.Model) -> TransitionScores | None:
    """The CRF's learned transition scores as numpy (None for a softmax model)."""
    if not is_crf(model):
        return None
    transitions, start, end = (np.asarray(w) for w in model.get_layer("crf").scores())
    return TransitionScores(transitions, start, end)


def predict_outputs(model: keras.Model, inputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """``(probabilities, emissions)`` in inference mode (no dropout), each ``[batch, time, labels]``.

    A softmax model gives its softmax and no emissions; a CRF model gives its per-token
    marginal probabilities and the emission scores that Viterbi decodes. Extra input keys
    (e.g. ``char_ids`` for a word-only model) are ignored. Rows at padded positions are
    meaningless; slice each sentence to its length.
    """
    # A compiled direct call: predict() pays per-call dataset setup, and an eager call
    # runs the LSTM step by step in Python. One trace serves every batch shape.
    function = getattr(model, "_raytag_predict", None)
    if function is None:
        signature = [{
            name: tf.TensorSpec(shape=(None,) * len(tensor.shape), dtype=tf.int32)
            for name, tensor in zip(model.input_names, model.inputs, strict=True)
        }]
        if is_crf(model):
            crf = model.get_layer("crf")

            def run(x: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
                emissions = tf.cast(model(x, training=False), tf.float32)
                mask = tf.not_equal(x["word_ids"], PAD_ID)
                return crf_marginals(emissions, mask, *crf.scores()), emissions
        else:
            def run(x: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
                probs = model(x, training=False)
                return probs, probs

        function = tf.function(run, input_signature=signature)
        model._raytag_predict = function
    probs, emissions = function(_model_inputs(model, inputs))
    return np.asarray(probs), (np.asarray(emissions) if is_crf(model) else None)


def predict_proba(model: keras.Model, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Label probabilities ``[batch, time, labels]`` (a CRF's marginals); see :func:`predict_outputs`."""
    return predict_outputs(model, inputs)[0]


def decode_outputs(
    probs: np.ndarray,
    emissions: np.ndarray | None,
    transitions: TransitionScores | None,
    lengths: Sequence[int],
    labels: Sequence[str],
    constrained: bool,
) -> list[list[int]]:
    """Tag-id paths from :func:`predict_outputs`: Viterbi over a CRF's scores, else over the probabilities."""
    if emissions is not None and transitions is not None:
        return decode(emissions, lengths, labels, constrained=constrained, transitions=transitions)
    return decode(probs, lengths, labels, constrained=constrained)


def _sizes(model: keras.Model) -> dict[str, int | None]:
    chars = model.get_layer("char_features") if "char_ids" in model.input_names else None
    pieces = model.get_layer("word_pieces") if "piece_ids" in model.input_names else None
    return {
        "num_words": int(model.get_layer("word_embedding").input_dim),
        "num_chars": chars.num_chars if chars is not None else None,
        "num_pieces": pieces.num_pieces if pieces is not None else None,
        "num_labels": int(model.output_shape[-1]),
        "output": "crf" if is_crf(model) else "softmax",
    }


def save_model(
    model: keras.Model, directory: str | os.PathLike[str], config: BiLSTMConfig | None = None
) -> Path:
    """Write ``model.keras`` (weights, architecture, optimizer state) and ``model_config.json``.

    The JSON (config dump, vocabulary sizes, input names, library versions) is for people
    and tools; :func:`load_model` needs only ``model.keras``. Returns the directory.
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    model.save(target / MODEL_FILE)
    info = {
        "kind": "bilstm",
        "config": config.model_dump(mode="json") if config is not None else None,
        **_sizes(model),
        "inputs": list(model.input_names),
        "tensorflow": tf.__version__,
        "tf_keras": keras.__version__,
    }
    (target / CONFIG_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return target


def load_model(directory: str | os.PathLike[str], *, compile: bool = True) -> keras.Model:
    """Load a model written by :func:`save_model`, in safe mode (no code is unpickled)."""
    path = Path(directory) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no saved model (expected {MODEL_FILE} from save_model)")
    return keras.models.load_model(path, safe_mode=True, compile=compile)


def export_saved_model(model: keras.Model, directory: str | os.PathLike[str]) -> Path:
    """Write ``saved_model/``: the model as a plain TensorFlow SavedModel. Returns its path.

    Its ``serving_default`` signature takes the model inputs by name (``word_ids`` int32
    ``[batch, time]`` and, with char features, ``char_ids`` int32 ``[batch, time,
    max_word_length]``; 0 is padding) and returns ``{"scores": [batch, time, labels]}``,
    the softmax probabilities :func:`predict_proba` returns. Only the traced graph and the
    variables are saved, no Keras objects, so ``tf.saved_model.load`` needs neither raytag
    nor its custom layers.
    """
    target = Path(directory) / SAVED_MODEL_DIR
    names = list(model.input_names)
    specs = [tf.TensorSpec(tensor.shape, tf.int32, name=name) for name, tensor in zip(names, model.inputs, strict=True)]

    def serve(*args: tf.Tensor) -> dict[str, tf.Tensor]:
        return {SERVING_OUTPUT: model(dict(zip(names, args, strict=True)), training=False)}

    function = tf.function(serve, input_signature=specs)
    # A bare tf.Module holding the variables: saving the Keras model itself would also
    # serialise every layer's Keras metadata, which loads back only with those classes.
    module = tf.Module()
    module.model_variables = list(model.variables)
    module.serve = function
    tf.saved_model.save(module, str(target), signatures={"serving_default": function})
    return target
