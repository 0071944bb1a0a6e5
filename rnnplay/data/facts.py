"""Plain, typed facts about a corpus and its reference losses (no torch: events and the app carry them)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class References:
    """Reference cross-entropies on the validation text, nats/char (see rnnplay.data.reference)."""

    uniform: float
    unigram: float
    bigram: float

    def items(self) -> tuple[tuple[str, float], ...]:
        """(name, loss) pairs, simplest model first."""
        return (("uniform", self.uniform), ("unigram", self.unigram), ("bigram", self.bigram))

    def to_dict(self) -> dict[str, float]:
        return dict(self.items())

    @classmethod
    def from_dict(cls, d: dict) -> References:
        nan = float("nan")
        return cls(float(d.get("uniform", nan)), float(d.get("unigram", nan)), float(d.get("bigram", nan)))


@dataclass(frozen=True)
class CorpusInfo:
    """What a run says about its corpus (``rnnplay corpora`` prints the same facts)."""

    name: str
    kind: str  # "bundled", "file" or "folder"
    location: str
    files: int
    chars: int
    bytes: int
    vocab_size: int
    train_chars: int
    val_chars: int
    fingerprint: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
