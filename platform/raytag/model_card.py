"""Model cards: the README.md of a registry version, written from what was recorded.

Everything in a card comes from the version's manifest (kind, labels, metrics, resolved
config, the data summary) and its artifact files (``tagger.json``, ``model_config.json``,
``evaluation/report.json``); nothing is measured again. The registry renders the card
when it publishes a version and checksums it with the manifest, so a card always
describes the files beside it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from raytag.artifact_files import (
    CONFIG_FILE,
    CURVES_FILE,
    EVALUATION_DIR,
    HISTORY_FILE,
    TAGGER_FILE,
    TRANSFORMER_MODEL_DIR,
)

__all__ = ["CARD_FILE", "render_card"]

CARD_FILE = "README.md"
# Entity types scored on fewer test mentions than this get a warning: their F1 is noise.
FEW_MENTIONS = 50
_REPORT = f"{EVALUATION_DIR}/report.json"
_HEADLINE = ("score", "f1", "precision", "recall", "accuracy")
# The BiLSTM artifact's files (raytag.models.bilstm), named here to keep this module free of TensorFlow.
_KERAS_CONFIG, _SAVED_MODEL = "model_config.json", "saved_model"


def _json_file(files: Mapping[str, Path], rel: str) -> dict[str, Any]:
    path = files.get(rel)
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def _code(value: Any) -> str:
    return f"`{value}`".replace("|", "\\|")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows), ""]


def _source_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The training config: an exported runtime variant keeps its source's under ``source_config``."""
    source = config.get("source_config")
    return source if isinstance(source, Mapping) and not config.get("corpus") else config


def _data(manifest: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    corpus, split = config.get("corpus") or {}, config.get("split") or {}
    data = manifest.get("data") or {}
    lines = ["## Data", ""]
    if corpus:
        sources = corpus.get("splits") or {"all": corpus.get("path")}
        described = ", ".join(f"{name}: {_code(path)}" for name, path in sources.items())
        lines.append(f"- corpus: {corpus.get('format', '?')} ({described}), scheme {corpus.get('scheme', '?')}")
    if split.get("ratios") and not corpus.get("splits"):
        ratios = ", ".join(f"{name} {ratio:g}" for name, ratio in split["ratios"].items())
        lines.append(f"- split: {ratios} (seed {split.get('seed')})")
    for entry in data.get("inputs") or []:
        lines.append(f"- input {_code(entry.get('file'))}: {entry.get('bytes')} bytes, sha256 {entry.get('sha256')}")
    lines += [f"- data fingerprint: `{manifest.get('data_fingerprint') or 'unknown'}`", ""]
    splits = data.get("splits") or {}
    if splits:
        lines += _table(["split", "sentences", "tokens"],
                        [[name, str(s.get("sentences", "")), str(s.get("tokens", ""))] for name, s in splits.items()])
    vocab = data.get("vocab") or {}
    sizes = ", ".join(f"{key} {value}" for key, value in vocab.items() if key != "files")
    if sizes:
        lines += [f"Vocabulary sizes (padding and unknown ids included): {sizes}.", ""]
    if data.get("skipped_sentences"):
        lines += [f"{data['skipped_sentences']} malformed sentences were skipped when the corpus was prepared.", ""]
    if not corpus and not data:
        lines += ["No data summary was recorded for this version.", ""]
    return lines


def _metrics(metrics: Mapping[str, Any], report: Mapping[str, Any]) -> list[str]:
    lines = ["## Metrics", ""]
    rows = []
    for key in _HEADLINE:
        dev, test = metrics.get(f"dev_{key}"), metrics.get(f"test_{key}")
        if dev is not None or test is not None:
            rows.append([key, "" if dev is None else _number(dev), "" if test is None else _number(test)])
    if rows:
        lines += _table(["metric", "dev", "test"], rows)
        lines += ["Entity scores are exact-span micro averages (seqeval); accuracy is per token. "
                  "`score` is what picks checkpoints and the `best` alias.", ""]
    other = {k: v for k, v in metrics.items() if not any(k == f"{s}_{h}" for s in ("dev", "test") for h in _HEADLINE)}
    if other:
        lines += _table(["recorded", "value"], [[k, _number(v)] for k, v in sorted(other.items())])
    if not metrics:
        lines += ["No metrics were recorded for this version (an exported runtime variant is not re-scored; "
                  "see its source version).", ""]
    per_type = report.get("per_type") or {}
    if per_type:
        lines += [f"Per entity type on the {report.get('split', 'test')} split:", ""]
        lines += _table(["type", "precision", "recall", "f1", "support"],
                        [[name, *(_number(row.get(k, "")) for k in ("precision", "recall", "f1")),
                          str(row.get("support", ""))] for name, row in per_type.items()])
    return lines


def _model(manifest: Mapping[str, Any], config: Mapping[str, Any], tagger: Mapping[str, Any],
           sizes: Mapping[str, Any]) -> list[str]:
    made = manifest.get("config") or {}
    lines = ["## Model", ""]
    if made.get("runtime"):
        quantize = f", {made['quantize']} weights" if made.get("quantize") else ""
        lines += [f"An {made['runtime']} export (opset {made.get('opset')}{quantize}) of {_code(made.get('source'))}.", ""]
    model = dict(config.get("model") or {})
    if model.get("char_features") == "none":  # sizes of features the model does not have
        model = {k: v for k, v in model.items() if not k.startswith("char_") or k == "char_features"}
    rows = [[key, _code(value)] for key, value in model.items()]
    rows += [[key, _code(sizes[key])] for key in ("num_words", "num_chars") if sizes.get(key) is not None]
    if tagger:
        decoding = "constrained Viterbi (valid IOB2 only)" if tagger.get("constrained_decoding", True) else "argmax"
        rows.append(["decoding", decoding])
    train = config.get("train") or {}
    rows += [[f"train.{key}", _code(train[key])] for key in ("epochs", "batch_size", "learning_rate", "num_workers")
             if key in train]
    if rows:
        lines += _table(["setting", "value"], rows)
    lines += [f"Resolved config: `artifact/{CONFIG_FILE}` (also under `config` in `manifest.json`); training "
              f"curves: `artifact/{HISTORY_FILE}`, `artifact/{CURVES_FILE}`; evaluation: "
              f"`artifact/{EVALUATION_DIR}/`. `manifest.json` lists the sha256 of every file.", ""]
    return lines


def _how_to_load(manifest: Mapping[str, Any], root: str, files: Mapping[str, Path],
                 tagger: Mapping[str, Any]) -> list[str]:
    ref = f"{manifest['name']}@v{manifest['version']}"
    lines = ["## How to load", "", "With raytag (text or token lists in, entity spans and tags out):", "", "```python",
             "from raytag.tagger import load_tagger", "",
             f"tagger = load_tagger({ref!r}, registry_root={root!r})",
             'print(tagger.predict(["My name is Wolfgang and I live in Berkeley."])[0].to_dict())',
             "```", "", f"or `raytag predict {ref} --registry {root} \"some text\"`; `raytag serve {ref} "
             f"--registry {root}` serves it over HTTP.", ""]
    # Routes are offered by what the artifact holds, not by its kind.
    model_dir = tagger.get("model_dir", TRANSFORMER_MODEL_DIR)
    if f"{model_dir}/config.json" in files:  # a save_pretrained directory
        lines += ["With Hugging Face transformers alone (offline; a `save_pretrained` directory with the label "
                  "names and the tokenizer):", "", "```python", "from transformers import pipeline", "",
                  f'tag = pipeline("token-classification", model="artifact/{model_dir}", '
                  'aggregation_strategy="simple")', 'print(tag("My name is Wolfgang and I live in Berkeley."))',
                  "```", "", "(paths are relative to this card's directory). raytag tags long texts through "
                  "overlapping windows and decodes words with constrained Viterbi; the pipeline scores "
                  "subwords one by one, so answers can differ.", ""]
    if any(rel.startswith(_SAVED_MODEL + "/") for rel in files):
        max_word = tagger.get("max_word_length", 20)
        chars = tagger.get("char_features", "none") != "none"
        lines += ["With TensorFlow alone (no raytag, no custom layers): `artifact/saved_model` is a SavedModel whose "
                  "`serving_default` signature takes the model inputs and returns `scores` `[batch, time, labels]`, "
                  "the label probabilities (a CRF model's emission scores, which raytag decodes with its "
                  "learned transitions):", "", "```python", "import json",
                  "import numpy as np", "import tensorflow as tf", "",
                  'def vocab(name):  # items[i] has id i; 0 is padding, 1 unknown',
                  '    data = json.load(open(f"artifact/{name}.json", encoding="utf-8"))',
                  '    return {item: i for i, item in enumerate(data["items"])}, data["lowercase"]', "",
                  'words, lowercase = vocab("words")',
                  'labels = json.load(open("artifact/labels.json", encoding="utf-8"))["items"]',
                  'tokens = ["My", "name", "is", "Wolfgang", "."]',
                  "word_ids = [[words.get(t.lower() if lowercase else t, 1) for t in tokens]]",
                  'inputs = {"word_ids": tf.constant(word_ids, tf.int32)}']
        if chars:
            lines += ['chars, lower_chars = vocab("chars")',
                      f"char_ids = np.zeros((1, len(tokens), {max_word}), np.int32)",
                      "for j, token in enumerate(tokens):",
                      f"    ids = [chars.get(c.lower() if lower_chars else c, 1) for c in token[:{max_word}]]",
                      "    char_ids[0, j, :len(ids)] = ids",
                      'inputs["char_ids"] = tf.constant(char_ids)']
        if tagger.get("casing_features"):
            lines += ["# Casing classes as raytag computes them (a short pure-Python function; copy it to drop raytag).",
                      "from raytag.models.casing import casing_ids",
                      'inputs["casing_ids"] = tf.constant([casing_ids(tokens)], tf.int32)']
        if tagger.get("encoder_vectors"):
            pieces = int(tagger.get("max_word_pieces", 4))
            lines += ["from tokenizers import Tokenizer  # the encoder's WordPiece tokenizer, kept in the artifact",
                      'splitter = Tokenizer.from_file("artifact/word_pieces.json")',
                      "splitter.no_padding()",
                      "splitter.no_truncation()",
                      f"piece_ids = np.zeros((1, len(tokens), {pieces}), np.int32)",
                      "for j, token in enumerate(tokens):",
                      f"    ids = splitter.encode(token, add_special_tokens=False).ids[:{pieces}]",
                      '    ids = ids or [splitter.token_to_id("[UNK]")]',
                      "    piece_ids[0, j, :len(ids)] = ids",
                      'inputs["piece_ids"] = tf.constant(piece_ids)']
        lines += ['serve = tf.saved_model.load("artifact/saved_model").signatures["serving_default"]',
                  'scores = serve(**inputs)["scores"].numpy()[0]',
                  "print([labels[i] for i in scores.argmax(-1)])", "```", "",
                  "Pad a batch with id 0 and ignore the scores of padded positions. Argmax may produce an "
                  "invalid IOB2 sequence that raytag's constrained decoding would not.", ""]
    return lines


def _limitations(manifest: Mapping[str, Any], config: Mapping[str, Any], tagger: Mapping[str, Any],
                 report: Mapping[str, Any]) -> list[str]:
    corpus = config.get("corpus") or {}
    lines = ["## Limitations", "",
             f"- Scores are measured on held-out data from the same corpus ({corpus.get('format', 'unknown format')}"
             f"{', ' + _code(corpus.get('path')) if corpus.get('path') else ''}); expect lower scores on other "
             "domains, periods or text types.",
             "- Raw text is split into tokens by raytag's tokenizer; text tokenized unlike the corpus "
             "(hyphens, quotes, URLs) tags worse. Pass token lists to control tokenization."]
    per_type = report.get("per_type") or {}
    rare = sorted(name for name, row in per_type.items() if isinstance(row.get("support"), int)
                  and row["support"] < FEW_MENTIONS)
    if rare:
        lines.append(f"- Fewer than {FEW_MENTIONS} test mentions of {', '.join(rare)}: their scores are unreliable.")
    weak = sorted(name for name, row in per_type.items() if isinstance(row.get("f1"), (int, float)) and row["f1"] < 0.5)
    if weak:
        lines.append(f"- Test F1 below 0.5 for {', '.join(weak)}: do not rely on these types.")
    if "char_features" in tagger:  # a word-vocabulary model
        chars = tagger["char_features"]
        lines.append("- Words outside the training vocabulary share one unknown-word vector"
                     + (" (character features still see their spelling)." if chars != "none"
                        else "; without character features, such words are tagged from context alone."))
    if "max_length" in tagger:  # a windowed subword model
        lines.append(f"- Sentences longer than {tagger.get('max_length', '?')} subwords are tagged in overlapping "
                     "windows; the encoder's pretraining data and licence apply.")
    if (manifest.get("config") or {}).get("quantize"):
        lines.append("- Quantized weights: predictions can differ slightly from the source version's; this "
                     "version carries no scores of its own.")
    return [*lines, ""]


def render_card(manifest: Mapping[str, Any], files: Mapping[str, str | Path], root: str) -> str:
    """The Markdown card of a version: ``manifest`` as written (with ``name`` and ``version``),
    ``files`` the artifact's files by relative path (read for their recorded details),
    ``root`` the registry root that :func:`~raytag.tagger.load_tagger` should be given."""
    paths = {rel: Path(path) for rel, path in files.items()}
    tagger, report = _json_file(paths, TAGGER_FILE), _json_file(paths, _REPORT)
    config = _source_config(manifest.get("config") or {})
    labels = list(manifest.get("labels") or [])
    entity = tagger.get("entity")
    task = ("entity tagging (IOB2 spans)" if entity else "tagging with a plain tag set") if entity is not None \
        else "sequence tagging"
    lines = [f"# {manifest['name']} v{manifest['version']}", "",
             f"A `{manifest.get('kind')}` sequence tagger for {task}, registered as "
             f"`{manifest['name']}@v{manifest['version']}` on {manifest.get('created_at', '?')} by raytag "
             f"{manifest.get('raytag_version', '?')}. This card was written when the version was published; "
             "aliases (`latest`, `best`, ...) move, see `../aliases.json`.", ""]
    lines += _data(manifest, config)
    lines += _metrics(manifest.get("metrics") or {}, report)
    lines += ["## Labels", "", f"{len(labels)} labels: " + ", ".join(_code(label) for label in labels), ""]
    lines += _model(manifest, config, tagger, _json_file(paths, _KERAS_CONFIG))
    lines += _how_to_load(manifest, root, paths, tagger)
    lines += _limitations(manifest, config, tagger, report)
    return "\n".join(lines).rstrip() + "\n"
