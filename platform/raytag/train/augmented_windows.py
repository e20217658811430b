"""Noise-aware training data for transformer taggers: windows re-cut from perturbed sentences.

The Hugging Face Trainer takes a map-style dataset of subword windows. With
``train.augment`` on, :class:`AugmentedWindows` serves the prepared (clean) windows
and, for the sentences :func:`raytag.augment.augment_sentence` picks in the current
epoch, windows re-tokenized from the perturbed words, labels realigned to their
first subwords by :func:`raytag.models.subwords.encode_sentences`. The epoch comes
from :class:`AugmentEpochs`, a Trainer callback. A perturbed sentence that is cut
into a different number of windows than its clean copy (rare: a perturbation only
adds or removes a few subwords) keeps its clean windows, so the dataset's length and
every item's place never change. With ``model.context`` a perturbed sentence keeps its
(clean) document context, so its windows are cut exactly as the prepared ones, unless
``model.context_dropout`` drops that context for the epoch: a seeded draw per sentence
and epoch (like the perturbations, from the sentence's words alone) re-cuts the
sentence's windows without the words around it, so one model learns both the
documents of evaluation and the lone sentences of ``predict`` and Serve.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from transformers import TrainerCallback

from raytag.augment import augment_sentence, entity_flags, sentence_rng
from raytag.config import AugmentConfig, TransformerConfig

__all__ = ["AugmentEpochs", "AugmentedWindows", "WindowSource", "drops_context"]


@dataclass(frozen=True)
class WindowSource:
    """Where a training window comes from: its sentence, and which of the sentence's windows it is."""

    sentence: int
    window: int
    windows: int


class AugmentedWindows:
    """The training windows of one worker, perturbed (and cut without context) per epoch; see the module docstring."""

    def __init__(self, features: list[dict[str, list[int]]], sources: list[WindowSource],
                 sentences: list[tuple[list[str], list[int]]], tokenizer: Any, model: TransformerConfig,
                 augment: AugmentConfig, seed: int, contexts: list[Any] | None = None,
                 entity_ids: frozenset[int] = frozenset()) -> None:
        if len(features) != len(sources):
            raise ValueError(f"{len(features)} windows but {len(sources)} sources")
        self.features = features
        self.sources = sources
        self.sentences = sentences
        self.tokenizer = tokenizer
        self.model = model
        self.augment = augment
        self.seed = seed
        # Per sentence, its document context (None: the model takes none).
        self.contexts = contexts
        # The tag ids of entity words (for augment.entity_words).
        self.entity_ids = entity_ids
        self.epoch = 0
        # Sentence index → its perturbed windows this epoch (None: not perturbed).
        self._cache: dict[int, list[Any] | None] = {}

    @classmethod
    def from_batches(cls, batches: Iterable[Any], tokenizer: Any, model: TransformerConfig, augment: AugmentConfig,
                     seed: int, entity_ids: frozenset[int] = frozenset()) -> AugmentedWindows:
        """From Arrow batches of the prepared window columns plus ``tokens`` and ``tag_ids``
        (and ``sid`` and ``document`` with ``model.context``)."""
        rows: list[tuple[dict[str, list[int]], WindowSource, list[str]]] = []
        sentences: list[tuple[list[str], list[int]]] = []
        places: list[tuple[int, int]] = []
        for batch in batches:
            if model.context:
                places += zip(batch.column("document").to_pylist(), batch.column("sid").to_pylist(), strict=True)
            ids = batch.column("window_input_ids").to_pylist()
            labels = batch.column("window_labels").to_pylist()
            tokens = batch.column("tokens").to_pylist()
            tag_ids = batch.column("tag_ids").to_pylist()
            types = batch.column("window_type_ids").to_pylist() if model.casing else [None] * len(ids)
            for sentence_ids, sentence_labels, words, tags, sentence_types in zip(
                    ids, labels, tokens, tag_ids, types, strict=True):
                index = len(sentences)
                sentences.append((words, tags))
                for k, (window_ids, window_labels) in enumerate(zip(sentence_ids, sentence_labels, strict=True)):
                    feature = {"input_ids": window_ids, "labels": window_labels}
                    if model.casing:
                        feature["token_type_ids"] = sentence_types[k]
                    rows.append((feature, WindowSource(index, k, len(sentence_ids)), words))
        # The order of training_features (every worker and restart sees the same dataset);
        # the words break ties between equal windows of different sentences.
        rows.sort(key=lambda r: (len(r[0]["input_ids"]), r[0]["input_ids"], r[0]["labels"], r[2], r[1].window))
        contexts = _contexts(sentences, places, model.context) if model.context else None
        return cls([r[0] for r in rows], [r[1] for r in rows], sentences, tokenizer, model, augment, seed, contexts,
                   entity_ids)

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch = epoch
            self._cache.clear()

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        source = self.sources[index]
        windows = self._perturbed_windows(source.sentence)
        if windows is None or len(windows) != source.windows:
            return self.features[index]
        window = windows[source.window]
        if window.token_type_ids is not None:
            return {"input_ids": window.input_ids, "labels": window.labels, "token_type_ids": window.token_type_ids}
        return {"input_ids": window.input_ids, "labels": window.labels}

    def _perturbed_windows(self, sentence: int) -> list[Any] | None:
        if sentence not in self._cache:
            from raytag.models.subwords import encode_sentences

            words, tags = self.sentences[sentence]
            entities = entity_flags(tags, self.entity_ids) if self.augment.entity_words is not None else None
            changed = augment_sentence(words, self.augment, self.seed, self.epoch, entities)
            alone = self.contexts is not None and drops_context(words, self.model.context_dropout, self.seed,
                                                                self.epoch)
            self._cache[sentence] = None if changed is None and not alone else encode_sentences(
                self.tokenizer, [words if changed is None else changed], [tags], self.model.max_length,
                self.model.stride, self.model.label_all_subwords, casing=self.model.casing,
                contexts=None if self.contexts is None or alone else [self.contexts[sentence]],
            )
        return self._cache[sentence]


def drops_context(words: Sequence[str], rate: float, seed: int, epoch: int) -> bool:
    """Whether the sentence ``words`` is cut without its document context in ``epoch``."""
    # Its own stream: switching dropout on leaves every perturbation as it was.
    return rate > 0 and sentence_rng(seed, epoch, words, stream="context").random() < rate


def _contexts(sentences: list[tuple[list[str], list[int]]], places: list[tuple[int, int]], size: int) -> list[Any]:
    """Each sentence's document context; ``places`` holds its (document, sid), which orders a document."""
    from raytag.models.doc_context import sentence_contexts

    order = sorted(range(len(sentences)), key=lambda i: places[i][1])
    found = sentence_contexts([sentences[i][0] for i in order], [places[i][0] for i in order], size)
    out: list[Any] = [None] * len(sentences)
    for position, index in enumerate(order):
        out[index] = found[position]
    return out


class AugmentEpochs(TrainerCallback):
    """Moves the dataset to each epoch before the epoch's batches are drawn."""

    def __init__(self, dataset: AugmentedWindows) -> None:
        self.dataset = dataset

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # state.epoch counts the passes done: 0 (or None), then 1.0, ...; 2.5 when resumed mid-pass.
        self.dataset.set_epoch(int(state.epoch or 0))
