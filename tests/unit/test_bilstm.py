from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest
import tensorflow as tf

from raytag.config import BiLSTMConfig
from raytag.corpus.vocab import OOV_ID, Vocabulary
from raytag.models.bilstm import (
    CharFeatures,
    bucket_batches,
    build_model,
    compile_model,
    encode_batch,
    export_saved_model,
    keras,
    load_model,
    predict_proba,
    save_model,
)

# "saw" and "can" are tagged by context, so fitting these needs the recurrent layers.
CORPUS = [
    ("I saw her".split(), "PRON VERB PRON".split()),
    ("the saw is sharp .".split(), "DET NOUN VERB ADJ PUNCT".split()),
    ("we can fish".split(), "PRON AUX VERB".split()),
    ("a can of fish is on the old table .".split(), "DET NOUN ADP NOUN VERB ADP DET ADJ NOUN PUNCT".split()),
    ("run".split(), "VERB".split()),
    ("she saw the old can .".split(), "PRON VERB DET ADJ NOUN PUNCT".split()),
]
TOKENS = [tokens for tokens, _ in CORPUS]
WORDS = Vocabulary.build(Counter(t for s in TOKENS for t in s))
CHARS = Vocabulary.build(Counter(c for s in TOKENS for t in s for c in t))
LABELS = Vocabulary.labels(sorted({tag for _, tags in CORPUS for tag in tags}))
WORD_IDS = [WORDS.encode(s) for s in TOKENS]
TAG_IDS = [LABELS.encode(tags) for _, tags in CORPUS]
MAX_WORD = 6


def tiny_config(char_features: str) -> BiLSTMConfig:
    return BiLSTMConfig(
        embedding_dim=16,
        lstm_units=16,
        lstm_layers=1,
        dropout=0.0,
        char_features=char_features,
        char_embedding_dim=8,
        char_units=8,
        max_word_length=MAX_WORD,
    )


def encode(indices, char_features: str):
    pick = list(indices)
    chars = CHARS if char_features != "none" else None
    return encode_batch(
        [WORD_IDS[i] for i in pick], [TOKENS[i] for i in pick], chars, MAX_WORD, [TAG_IDS[i] for i in pick]
    )


def token_accuracy(model, char_features: str) -> float:
    inputs, labels = encode(range(len(CORPUS)), char_features)
    predicted = predict_proba(model, inputs).argmax(-1)
    real = inputs["word_ids"] != 0
    return float((predicted[real] == labels[real]).mean())


@pytest.fixture(scope="module")
def trained() -> Callable[[str], keras.Model]:
    """One model per char-feature kind for the module, fitted until it tags the corpus perfectly."""
    models: dict[str, keras.Model] = {}

    def get(char_features: str) -> keras.Model:
        if char_features not in models:
            keras.utils.set_random_seed(0)
            model = build_model(tiny_config(char_features), len(WORDS), len(CHARS), len(LABELS))
            compile_model(model, learning_rate=0.02)
            inputs, labels = encode(range(len(CORPUS)), char_features)
            # About 20 full-batch epochs suffice; the rest is margin against seed-dependent luck.
            for _ in range(3):
                model.fit(inputs, labels, batch_size=len(CORPUS), epochs=50, verbose=0)
                if token_accuracy(model, char_features) == 1.0:
                    break
            models[char_features] = model
        return models[char_features]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("char_features", ["none", "cnn"])
def test_overfits_then_round_trips_through_keras_format(trained, char_features: str, tmp_path) -> None:
    model = trained(char_features)
    assert token_accuracy(model, char_features) == 1.0

    inputs, _ = encode(range(len(CORPUS)), char_features)
    before = predict_proba(model, inputs)
    directory = save_model(model, tmp_path / "model", tiny_config(char_features))
    assert (directory / "model.keras").is_file()
    info = json.loads((directory / "model_config.json").read_text())
    assert info["config"]["char_features"] == char_features
    assert (info["num_words"], info["num_labels"]) == (len(WORDS), len(LABELS))
    assert info["num_chars"] == (len(CHARS) if char_features != "none" else None)

    loaded = load_model(directory)
    after = predict_proba(loaded, inputs)
    np.testing.assert_allclose(after, before, atol=1e-6)
    np.testing.assert_array_equal(after.argmax(-1), before.argmax(-1))
    assert loaded.optimizer.iterations.numpy() == model.optimizer.iterations.numpy()


@pytest.mark.slow
def test_char_bilstm_round_trips_and_ignores_padding(tmp_path) -> None:
    keras.utils.set_random_seed(1)
    # Recurrent dropout on the word LSTMs covers that option too (and builds faster).
    config = tiny_config("bilstm").model_copy(update={"recurrent_dropout": 0.2})
    model = build_model(config, len(WORDS), len(CHARS), len(LABELS))
    inputs, _ = encode(range(len(CORPUS)), "bilstm")
    before = predict_proba(model, inputs)
    loaded = load_model(save_model(model, tmp_path / "model"))
    np.testing.assert_allclose(predict_proba(loaded, inputs), before, atol=1e-6)
    for i, tokens in enumerate(TOKENS):
        alone = predict_proba(model, encode([i], "bilstm")[0])[0]
        np.testing.assert_allclose(alone, before[i, : len(tokens)], atol=1e-5)


# Runs in a fresh interpreter with stock TensorFlow settings (Keras 3 as tf.keras, no raytag).
STOCK_TF_LOADER = """
import json, sys
import numpy as np
import tensorflow as tf

out = {}
for name, path in json.loads(sys.argv[1]).items():
    serve = tf.saved_model.load(path).signatures["serving_default"]
    arrays = np.load(path + ".npz")
    result = serve(**{key: tf.constant(arrays[key]) for key in arrays.files})
    out[name] = result["scores"].numpy().tolist()
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("raytag", "tf_keras"))
print(json.dumps({"scores": out, "leaked": leaked}))
"""


@pytest.mark.slow
def test_saved_model_loads_in_stock_tensorflow_and_scores_the_same(tmp_path) -> None:
    expected, paths = {}, {}
    for kind in ("none", "cnn", "bilstm"):
        keras.utils.set_random_seed(3)
        model = build_model(tiny_config(kind), len(WORDS), len(CHARS), len(LABELS))
        inputs, _ = encode(range(len(CORPUS)), kind)
        # Padded rows and an unknown character: whatever raytag feeds the model.
        inputs = {k: v for k, v in inputs.items() if k in model.input_names}
        if kind != "none":
            inputs["char_ids"][0, 0, 0] = OOV_ID
        expected[kind] = predict_proba(model, inputs)
        path = export_saved_model(model, tmp_path / kind)
        assert (path / "saved_model.pb").is_file()
        np.savez(f"{path}.npz", **inputs)
        paths[kind] = str(path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_USE_LEGACY_KERAS")}
    done = subprocess.run([sys.executable, "-c", STOCK_TF_LOADER, json.dumps(paths)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["leaked"] == []
    for kind, scores in expected.items():
        np.testing.assert_allclose(np.asarray(answer["scores"][kind]), scores, atol=1e-5)
    # Different char features must give different scores, or the comparison proves little.
    assert not np.allclose(expected["cnn"], expected["bilstm"])


@pytest.mark.parametrize("kind", ["cnn", "bilstm"])
def test_char_features_ignore_character_padding(kind: str) -> None:
    keras.utils.set_random_seed(2)
    layer = CharFeatures(len(CHARS), 8, 8, kind)
    words = ["saw", "a", "table"]
    short = np.zeros((1, len(words), 5), dtype=np.int32)
    long = np.zeros((1, len(words), 12), dtype=np.int32)
    for j, word in enumerate(words):
        short[0, j, : len(word)] = long[0, j, : len(word)] = CHARS.encode(list(word))
    features = layer(short).numpy()
    assert features.shape == (1, len(words), layer.output_dim)
    np.testing.assert_allclose(layer(long).numpy(), features, atol=1e-6)
    # Not vacuous: one more real character does change the word's features.
    long[0, 0, 3] = CHARS.id("s")
    assert np.abs(layer(long).numpy()[0, 0] - features[0, 0]).max() > 1e-4


@pytest.mark.slow  # shares the trained models above
@pytest.mark.parametrize("char_features", ["none", "cnn"])
def test_padding_never_changes_real_predictions(trained, char_features: str) -> None:
    model = trained(char_features)
    batch = predict_proba(model, encode(range(len(CORPUS)), char_features)[0])
    longest = max(len(s) for s in TOKENS)
    assert batch.shape == (len(CORPUS), longest, len(LABELS))
    for i, tokens in enumerate(TOKENS):
        alone = predict_proba(model, encode([i], char_features)[0])[0]
        assert alone.shape == (len(tokens), len(LABELS))
        np.testing.assert_allclose(alone, batch[i, : len(tokens)], atol=1e-5)

    # The check above is not vacuous: a real token appended at the end does reach the
    # earlier tokens (through the backward LSTM), where padding must not.
    extended_tokens = [TOKENS[0] + ["table"]]
    extended_ids = [WORD_IDS[0] + [WORDS.id("table")]]
    chars = CHARS if char_features != "none" else None
    extended = predict_proba(model, encode_batch(extended_ids, extended_tokens, chars, MAX_WORD)[0])[0]
    assert np.abs(extended[: len(TOKENS[0])] - batch[0, : len(TOKENS[0])]).max() > 1e-4


def test_loss_and_accuracy_count_real_tokens_only(trained) -> None:
    model = trained("none")
    inputs, labels = encode(range(len(CORPUS)), "none")
    output = model(inputs, training=False)
    probs = output.numpy()
    real = inputs["word_ids"] != 0
    assert (~real).any()
    np.testing.assert_array_equal(output._keras_mask.numpy(), real)

    picked = np.take_along_axis(probs, labels[..., None], axis=-1)[..., 0]
    expected = -np.log(picked[real]).mean()
    loss = float(model.compute_loss(inputs, tf.constant(labels), output))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)

    # Garbage labels at padded positions change nothing.
    garbage = labels.copy()
    garbage[~real] = len(LABELS) - 1
    np.testing.assert_allclose(float(model.compute_loss(inputs, tf.constant(garbage), output)), loss, rtol=1e-6)
    model.reset_metrics()
    metrics = model.compute_metrics(inputs, tf.constant(garbage), output, None)
    assert float(metrics["accuracy"]) == 1.0


def test_word_without_characters_is_still_a_real_token(trained) -> None:
    model = trained("cnn")
    inputs, _ = encode_batch([[WORDS.id("run"), OOV_ID]], [["run", ""]], CHARS, MAX_WORD)
    assert inputs["char_ids"][0, 1].tolist() == [0] * MAX_WORD
    output = model(inputs, training=False)
    assert output._keras_mask.numpy().tolist() == [[True, True]]


def test_predict_proba_checks_inputs_and_accepts_int64(trained) -> None:
    model = trained("cnn")
    inputs, _ = encode([0, 1], "cnn")
    with pytest.raises(ValueError, match="char_ids"):
        predict_proba(model, {"word_ids": inputs["word_ids"]})
    wide = {name: array.astype(np.int64) for name, array in inputs.items()}
    np.testing.assert_array_equal(predict_proba(model, wide), predict_proba(model, inputs))


def test_encode_batch_pads_truncates_and_maps_unknown_chars() -> None:
    chars = Vocabulary(["<pad>", "<unk>", "a", "b", "c"])
    word_ids = [[5, 6, 7], [8]]
    tokens = [["abcabc", "ab", "zaz"], ["abcabcab"]]
    inputs, labels = encode_batch(word_ids, tokens, chars, max_word_length=4, tag_ids=[[2, 0, 1], [3]])

    assert inputs["word_ids"].dtype == np.int32 and inputs["char_ids"].dtype == np.int32
    assert inputs["word_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert labels.dtype == np.int32 and labels.tolist() == [[2, 0, 1], [3, 0, 0]]
    assert inputs["char_ids"].shape == (2, 3, 4)
    assert inputs["char_ids"][0].tolist() == [[2, 3, 4, 2], [2, 3, 0, 0], [OOV_ID, 2, OOV_ID, 0]]
    # The long word keeps its first characters; the sentence keeps all its (one) token.
    assert inputs["char_ids"][1].tolist() == [[2, 3, 4, 2], [0, 0, 0, 0], [0, 0, 0, 0]]

    words_only, no_labels = encode_batch(word_ids, None, None, max_word_length=4)
    assert set(words_only) == {"word_ids"} and no_labels is None


@pytest.mark.parametrize(
    "word_ids, tokens, tag_ids, message",
    [
        ([], None, None, "empty batch"),
        ([[3], []], None, None, "no tokens"),
        ([[3, 0]], None, None, "padding"),
        ([[3, 4]], [["a"]], None, "tokens but"),
        ([[3, 4]], None, [[1]], "tags but"),
        ([[3, 4]], None, [[1, -1]], "negative"),
    ],
)
def test_encode_batch_rejects_bad_input(word_ids, tokens, tag_ids, message) -> None:
    chars = Vocabulary(["<pad>", "<unk>", "a"]) if tokens is not None else None
    with pytest.raises(ValueError, match=message):
        encode_batch(word_ids, tokens, chars, 4, tag_ids)


def test_encode_batch_needs_tokens_for_chars() -> None:
    with pytest.raises(ValueError, match="tokens are needed"):
        encode_batch([[3]], None, Vocabulary(["<pad>", "<unk>"]), 4)


def test_bucket_batches_are_seeded_complete_and_length_sorted() -> None:
    lengths = np.random.default_rng(7).integers(1, 100, size=2_345)
    batches = bucket_batches(lengths, batch_size=16, seed=3)

    assert sum(len(b) < 16 for b in batches) == 1  # 2345 = 146 * 16 + 9
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(len(lengths)))

    again = bucket_batches(lengths, batch_size=16, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    other = bucket_batches(lengths, batch_size=16, seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other, strict=False))

    # Random batches of 16 would span ~85 lengths; pooled sorting keeps them tight.
    spans = [lengths[b].max() - lengths[b].min() for b in batches]
    assert np.mean(spans) < 5
    # Batch order is shuffled, not shortest-first.
    firsts = [lengths[b].min() for b in batches]
    assert firsts != sorted(firsts)


def test_bucket_batches_without_shuffle_sorts_globally() -> None:
    lengths = [5, 1, 3, 3, 9, 2, 7]
    batches = bucket_batches(lengths, batch_size=3, seed=0, shuffle=False)
    assert [b.tolist() for b in batches] == [[1, 5, 2], [3, 0, 6], [4]]
    assert bucket_batches([], batch_size=4, seed=0) == []
    with pytest.raises(ValueError, match="batch_size"):
        bucket_batches(lengths, batch_size=0, seed=0)
