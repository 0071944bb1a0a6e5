"""The Write tab's model side: a text read one character at a time, with what the model made of
every position (no Textual; imports torch, so the tab loads it in its worker thread).

A :class:`Trail` holds the text so far and, for each position ``i`` (the point after ``text[:i]``):
the model's state there, its log-probabilities for the next character, and their top few. Adding a
character is one :meth:`Sampler.step` from the last state (never a re-read of the text); undo drops
the last position, so the previous state and proposals are there already.

Position 0 is the state after a newline, the corpus' usual boundary and what ``rnnplay sample`` and
``rnnplay score`` start from, so the first character is scored as they score it. A vocabulary
without a newline starts from the zero state (the first prediction is then the head's bias alone).

Memory: a state is L*H floats (x2 for the LSTM), 3 KB at 3x256. The last :data:`DENSE` positions
keep theirs; older ones keep one state in :data:`EVERY` (an undo that deep re-reads at most
EVERY-1 characters from the nearest kept state).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from rnnplay.model.cell import State, map_state

TOP = 9  # proposals kept per position (keys 1-9)
DENSE = 2048  # positions at the end that keep their state
EVERY = 64  # older positions: one kept state in EVERY
MAX_CHARS = 50_000
MEMORY_WINDOW = 256  # the memory view reads this many characters back (from the kept state before them)
LN2 = math.log(2.0)


@dataclass(frozen=True)
class Proposal:
    char: str
    prob: float


class Trail:
    """See the module docstring. ``sampler``: a :class:`~rnnplay.model.Sampler` snapshot; ``vocab``:
    its :class:`~rnnplay.data.vocab.Vocab`; ``dense`` and ``every``: which states are kept (see above)."""

    def __init__(self, sampler, vocab, dense: int = DENSE, every: int = EVERY) -> None:
        self.sampler = sampler
        self.vocab = vocab
        self.dense, self.every = max(1, dense), max(1, every)
        self.idx: list[int] = []  # the text's character indices
        self.surprisal: list[float] = []  # nats, per character of the text
        self.top: list[tuple[Proposal, ...]] = []  # per position 0..n: the likeliest next characters
        self._states: list[State | None] = []  # per position 0..n (None: thinned, see EVERY)
        self._logp: list[torch.Tensor | None] = []  # per position 0..n: (V,) log-probabilities
        self._logits = torch.empty(1, sampler.vocab_size, device=sampler.device, dtype=sampler.dtype)  # (1, V)
        self._one = torch.zeros(1, dtype=torch.long, device=sampler.device)  # (1,)
        state = sampler.new_state(1)  # (L, 1, H) or (h, c)
        self.starts_with_newline = "\n" in vocab
        if self.starts_with_newline:
            self._one.fill_(vocab.stoi["\n"])
            logits = sampler.step(self._one, state, self._logits)  # (1, V)
        else:  # the zero state's prediction: the head's bias
            logits = sampler.fc_b.unsqueeze(0)  # (1, V)
        self._push(state, logits)

    # ---- reading ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.idx)

    @property
    def full(self) -> bool:
        """At :data:`MAX_CHARS`: nothing more can be added."""
        return len(self.idx) >= MAX_CHARS

    @property
    def text(self) -> str:
        return self.vocab.decode(self.idx)

    @property
    def state(self) -> State:
        """The state after the whole text (a copy is not made: do not change it)."""
        return self._state_at(len(self.idx))

    def logp(self, pos: int) -> torch.Tensor:
        """(V,) log-probabilities of the character at ``pos`` given ``text[:pos]``."""
        self._state_at(pos)
        return self._logp[pos]  # type: ignore[return-value]

    # ---- changing ---------------------------------------------------------------------------

    def append(self, ch: str) -> None:
        """Add one character the vocabulary holds: one sampler step from the last state."""
        if len(self.idx) >= MAX_CHARS:
            raise ValueError(f"the text is at its limit of {MAX_CHARS:,} characters")
        i = self.vocab.stoi[ch]
        n = len(self.idx)
        self.surprisal.append(-float(self.logp(n)[i]))
        self.idx.append(i)
        state = map_state(torch.Tensor.clone, self._state_at(n))
        self._one.fill_(i)
        self._push(state, self.sampler.step(self._one, state, self._logits))
        self._thin(n + 1 - self.dense)

    def extend(self, text: str, stop: Callable[[], bool] | None = None) -> int:
        """Append every character of ``text`` (the vocabulary's); returns how many were added."""
        added = 0
        for ch in text:
            if stop is not None and added % 64 == 0 and stop():
                break
            if len(self.idx) >= MAX_CHARS:
                break
            self.append(ch)
            added += 1
        return added

    def pick(self, k: int) -> str | None:
        """Append the k-th proposal (1-based) after the whole text; the character, or None."""
        top = self.top[len(self.idx)]
        if not 1 <= k <= len(top):
            return None
        self.append(top[k - 1].char)
        return top[k - 1].char

    def sample(self, temperature: float, generator: torch.Generator) -> str:
        """Draw the next character from softmax(logits / T) and append it."""
        from rnnplay.model import Sampler

        logp = self.logp(len(self.idx)).unsqueeze(0)  # (1, V)
        ch = self.vocab.chars[int(Sampler.choose(logp, temperature, generator=generator)[0])]
        self.append(ch)
        return ch

    def undo(self, count: int = 1) -> int:
        """Drop the last ``count`` characters; how many were dropped."""
        count = max(0, min(count, len(self.idx)))
        for _ in range(count):
            self.idx.pop()
            self.surprisal.pop()
            self.top.pop()
            self._states.pop()
            self._logp.pop()
        return count

    def memory(self, model, pos: int, window: int = MEMORY_WINDOW) -> tuple[int, list[float], float]:
        """How strongly each earlier character influenced the prediction of ``text[pos]``: the size
        of the gradient of its log-probability with respect to each earlier input's embedding
        (rnnplay.generate.saliency), over at most ``window`` characters before it, read from the
        state kept before them, so the log-probability is the exact one. ``model``: the model the
        sampler was built from. -> (first text position read, norms for text[first:pos], log p)."""
        from rnnplay.generate import saliency

        if not 0 <= pos < len(self.idx):
            raise ValueError(f"pos must be in 0..{len(self.idx) - 1}, got {pos}")
        lead = 1 if self.starts_with_newline else 0
        full = torch.tensor(([self.vocab.stoi["\n"]] if lead else []) + self.idx[:pos + 1])  # (T,)
        position = pos + lead  # predicting full[position] = text[pos]
        start = max(0, position - window)
        if position == 0:  # the first character without a newline before it: nothing read
            return 0, [], float(self.logp(0)[self.idx[0]])
        state = None if start == 0 else self._state_at(start - lead)  # after full[:start]
        result = saliency(model, full, position, window=position - start, state=state)
        norms = result.norms.tolist()
        if start == 0 and lead:
            norms = norms[1:]  # the newline before the text
        return max(0, start - lead), norms, result.logp

    # ---- the per-position records -----------------------------------------------------------

    def _push(self, state: State, logits: torch.Tensor) -> None:
        logp = torch.log_softmax(logits[0].float(), dim=-1)  # (V,)
        k = min(TOP, logp.numel())
        values, indices = torch.topk(logp, k)  # (k,)
        chars = self.vocab.chars
        self.top.append(tuple(Proposal(chars[i], math.exp(v)) for v, i in zip(values.tolist(), indices.tolist())))
        self._states.append(state)
        self._logp.append(logp)

    def _thin(self, pos: int) -> None:
        if pos > 0 and pos % self.every:
            self._states[pos] = self._logp[pos] = None

    def _state_at(self, pos: int) -> State:
        """The state after ``text[:pos]``, re-read from the nearest kept state if it was thinned."""
        state = self._states[pos]
        if state is not None:
            return state
        start = pos
        while self._states[start] is None:
            start -= 1
        state = map_state(torch.Tensor.clone, self._states[start])
        for j in range(start, pos):
            self._one.fill_(self.idx[j])
            logits = self.sampler.step(self._one, state, self._logits)  # (1, V)
            if self._states[j + 1] is None:
                self._states[j + 1] = map_state(torch.Tensor.clone, state)
                self._logp[j + 1] = torch.log_softmax(logits[0].float(), dim=-1)
        return self._states[pos]  # type: ignore[return-value]
