"""Co-writing with a model: it proposes its likeliest next characters, the writer picks one, types
their own, or lets the model run a few characters; the state carries on from whatever was chosen.

A plain object over the model's :class:`~rnnplay.model.Sampler` (one step per character, any cell,
the state treated opaquely), so the app's co-writing view and tests drive it alike. No Textual.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rnnplay.data.vocab import Vocab


@dataclass(frozen=True)
class Proposal:
    """The model's k likeliest next characters, most likely first, with their probabilities."""

    chars: tuple[str, ...]
    probs: tuple[float, ...]


class CoWriter:
    """Write a text with a model. ``text`` is everything read so far (the prime included).

    temperature scales the proposals' probabilities and the characters ``run`` draws; ``run``
    draws from ``generator`` (a seeded one gives the same text).
    """

    def __init__(self, model: torch.nn.Module, vocab: Vocab, prime: str = "", temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        from rnnplay.model import Sampler

        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.vocab, self.temperature, self.generator = vocab, temperature, generator
        self.sampler = Sampler(model)
        start = prime if prime else ("\n" if "\n" in vocab else vocab.chars[0])
        unknown = vocab.unknown(start)
        if unknown:
            raise ValueError(f"characters the model never saw: {''.join(unknown)!r}")
        idx = vocab.encode(start).long().to(self.sampler.device).unsqueeze(0)  # (1, T)
        self._logits, self._state = self.sampler.prime(idx)  # (1, V), state of batch 1
        self._state = _own(self._state)  # prime's views share one buffer: keep our copy
        self.text = prime

    def probabilities(self) -> torch.Tensor:
        """(V,) the next character's distribution, softmax(logits / temperature)."""
        return torch.softmax(self._logits[0].float() / self.temperature, dim=-1)

    def propose(self, k: int = 5) -> Proposal:
        probs = self.probabilities()
        top = torch.topk(probs, min(k, probs.numel()))
        chars = self.vocab.chars
        return Proposal(tuple(chars[i] for i in top.indices.tolist()), tuple(top.values.tolist()))

    def accept(self, text: str) -> list[str]:
        """Append ``text`` (a pick or the writer's own typing); characters the model never saw are
        skipped and returned (the state reads only the known ones)."""
        skipped = []
        for ch in text:
            i = self.vocab.stoi.get(ch)
            if i is None:
                skipped.append(ch)
                continue
            self._logits = self.sampler.step(torch.tensor([i], device=self.sampler.device), self._state)
            self.text += ch
        return skipped

    def run(self, n: int) -> str:
        """Let the model write ``n`` characters (drawn at the temperature); returns them."""
        out = []
        for _ in range(n):
            probs = self.probabilities()
            i = int(torch.multinomial(probs.cpu(), 1, generator=self.generator))
            ch = self.vocab.chars[i]
            self.accept(ch)
            out.append(ch)
        return "".join(out)


def _own(state):
    if isinstance(state, (tuple, list)):
        return tuple(t.clone() for t in state)
    return state.clone()
