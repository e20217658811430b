"""The plug-in point of the prepare pipeline: encode stages that add columns for one model kind."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from raytag.config import JobConfig
from raytag.corpus.vocab import Vocabulary


@dataclass
class PrepareContext:
    config: JobConfig
    words: Vocabulary
    chars: Vocabulary
    labels: Vocabulary
    scheme: str
    entity: bool


class EncodeStage(Protocol):
    """A pluggable encoding step, such as subword tokenization for transformers.

    ``fit`` sees the prepared context (vocabularies, labels) on the driver, ``apply``
    adds columns to the dataset, ``save`` writes the stage's files into the output
    directory and returns what the manifest should record about it. A stage with
    ``whole_documents`` true reads neighbouring sentences of a document, so prepare
    cuts the corpus into chunks (Ray Data blocks) that each hold whole documents.
    """

    name: str
    whole_documents: bool

    def fit(self, context: PrepareContext) -> None: ...

    def apply(self, dataset: Any) -> Any: ...

    def save(self, directory: Path) -> dict[str, Any]: ...
