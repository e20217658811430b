"""File names inside prepared corpora, training checkpoints and tagger artifacts.

One module so that a writer and its readers (prepare and training, a worker loop and
the exporter, the exporter and the Tagger) can never disagree. Changing a name here
breaks registries written before the change: these names are a storage format.
"""

from __future__ import annotations

# --- a prepared corpus ---------------------------------------------------------------------------
MANIFEST = "manifest.json"
WORDS_FILE = "words.json"
CHARS_FILE = "chars.json"
LABELS_FILE = "labels.json"
VOCAB_FILES = (WORDS_FILE, CHARS_FILE, LABELS_FILE)
# The subword stage's tokenizer, saved so training and prediction use the windows' vocabulary.
TOKENIZER_DIR = "tokenizer"

# --- a training checkpoint -----------------------------------------------------------------------
KERAS_WEIGHTS = "weights.h5"
KERAS_STATE = "state.json"
HF_CHECKPOINT_DIR = "checkpoint"

# --- a tagger artifact (a registry version's ``artifact/``) -------------------------------------
TAGGER_FILE = "tagger.json"
CONFIG_FILE = "config.yaml"
HISTORY_FILE = "history.json"
CURVES_FILE = "curves.png"
EVALUATION_DIR = "evaluation"
# Inside a transformer artifact: the ``save_pretrained`` model and tokenizer.
TRANSFORMER_MODEL_DIR = "model"
# Inside an ONNX runtime variant of a transformer artifact: the graph and the tokenizer.
ONNX_MODEL_FILE = "model.onnx"
ONNX_TOKENIZER_DIR = "tokenizer"
