"""Several samples in one batch, each ending at its first stop text.

``sample_texts`` primes ``num_samples`` rows alike and samples them together with the model's
:class:`rnnplay.model.Sampler` (one step per character for the whole batch, any cell). A row that
has produced the stop text stops growing (the stop text itself is not part of the sample); the
batch ends when every row has stopped or ``length`` characters were drawn. The stop text is looked
for in the continuation only, not in the prime.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from rnnplay.data.vocab import Vocab

STREAM_EVERY = 64  # characters of the first sample handed to on_text at a time


def sample_texts(
    model: torch.nn.Module,
    vocab: Vocab,
    prime: str,
    num_samples: int,
    length: int,
    stop: str | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    greedy: bool = False,
    generator: torch.Generator | None = None,
    on_text: Callable[[str], None] | None = None,
    sampler=None,
) -> list[str]:
    """The continuations of ``prime`` (its characters must be in ``vocab``, at least one), one per sample.

    on_text: with ``num_samples == 1``, called with the continuation piece by piece as it is
    generated (never a character that could still turn out to be the start of the stop text).
    sampler: a :class:`rnnplay.model.Sampler` snapshot to use instead of ``model`` (may be None then).
    """
    from rnnplay.model import Sampler

    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if not prime:
        raise ValueError("prime must hold at least one character")
    stop = stop or None
    sampler = sampler if sampler is not None else Sampler(model)
    device = sampler.device
    idx = vocab.encode(prime).long().to(device).unsqueeze(0).expand(num_samples, -1).contiguous()  # (N, T)
    chars = vocab.chars
    texts: list[list[str]] = [[] for _ in range(num_samples)]
    ends: list[int | None] = [None] * num_samples  # where the stop text starts in texts[r]
    live, emitted = num_samples, 0
    hold = len(stop) - 1 if stop else 0
    stream = on_text is not None and num_samples == 1
    for nxt, _h in sampler.stream(idx, length, temperature=temperature, top_k=top_k,
                                         greedy=greedy, generator=generator):
        picks = nxt.tolist()  # (N,)
        for r in range(num_samples):
            if ends[r] is not None:
                continue
            t = texts[r]
            t.append(chars[picks[r]])
            if stop and t[-1] == stop[-1] and len(t) >= len(stop) and "".join(t[-len(stop):]) == stop:
                ends[r] = len(t) - len(stop)
                live -= 1
        if stream:
            safe = ends[0] if ends[0] is not None else len(texts[0]) - hold
            if safe - emitted >= STREAM_EVERY:
                on_text("".join(texts[0][emitted:safe]))
                emitted = safe
        if live == 0:
            break
    out = ["".join(t if e is None else t[:e]) for t, e in zip(texts, ends)]
    if stream and len(out[0]) > emitted:
        on_text(out[0][emitted:])
    return out
