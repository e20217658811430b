"""Word, character and label vocabularies, serialised as JSON.

Word and char vocabularies reserve id 0 for padding and id 1 for out-of-vocabulary
items; label vocabularies have no specials (padding positions are masked instead).
Building is deterministic: by count descending, then by the item itself.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PAD = "<pad>"
OOV = "<unk>"
PAD_ID = 0
OOV_ID = 1


@dataclass
class Vocabulary:
    """An ordered item list; ``items[i]`` has id ``i``."""

    items: list[str]
    specials: int = 2
    lowercase: bool = False
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index = {item: i for i, item in enumerate(self.items)}
        if len(self._index) != len(self.items):
            raise ValueError("vocabulary items must be unique")

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item: str) -> bool:
        return self._norm(item) in self._index

    def _norm(self, item: str) -> str:
        return item.lower() if self.lowercase else item

    def id(self, item: str) -> int:
        found = self._index.get(self._norm(item))
        if found is None:
            if not self.specials:
                raise KeyError(f"{item!r} is not in the vocabulary and it has no OOV id")
            return OOV_ID
        return found

    def encode(self, items: Sequence[str]) -> list[int]:
        return [self.id(item) for item in items]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.items[i] for i in ids]

    @classmethod
    def build(
        cls,
        counts: Mapping[str, int],
        *,
        max_size: int | None = None,
        min_count: int = 1,
        lowercase: bool = False,
        specials: bool = True,
    ) -> Vocabulary:
        """Keep items seen ``min_count`` times, most frequent first, up to ``max_size`` ids in all."""
        merged: Counter[str] = Counter()
        for item, count in counts.items():
            merged[item.lower() if lowercase else item] += count
        ranked = sorted((c, w) for w, c in merged.items() if c >= min_count)
        ranked.sort(key=lambda cw: (-cw[0], cw[1]))
        head = [PAD, OOV] if specials else []
        room = None if max_size is None else max(max_size - len(head), 0)
        words = [w for _, w in ranked][:room]
        return cls(head + words, specials=len(head), lowercase=lowercase)

    @classmethod
    def labels(cls, labels: Sequence[str]) -> Vocabulary:
        return cls(list(labels), specials=0)

    def to_dict(self) -> dict:
        return {"items": self.items, "specials": self.specials, "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, data: Mapping) -> Vocabulary:
        return cls(list(data["items"]), specials=int(data["specials"]), lowercase=bool(data["lowercase"]))

    def save(self, path: str | os.PathLike[str]) -> Path:
        target = Path(path)
        target.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=0), encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocabulary:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
