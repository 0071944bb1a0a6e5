"""Beam search over characters with a length-normalised score.

A hypothesis ends when its continuation ends with the stop sequence (if one is given) or when it
reaches ``length`` characters. Hypotheses are ranked by ``log p / n ** alpha`` (n: characters
generated, the stop sequence included), so a short finished one competes fairly with a long one;
with ``alpha = 0`` the rank is the plain log-probability. The search stops when ``width``
hypotheses have finished or every one has reached ``length``.

Each step runs the model once on the live beams as a batch (``forward(idx, state)``, any cell), and
the beams' states are reordered by batch row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rnnplay.generate.state import State, select_rows


@dataclass(frozen=True)
class Hypothesis:
    tokens: tuple[int, ...]  # the continuation, stop sequence included when finished
    logp: float  # its log-probability (nats) given the prime
    finished: bool  # ended with the stop sequence
    score: float  # logp / len(tokens) ** alpha: what the ranking uses


def _ranked(tokens: tuple[int, ...], logp: float, finished: bool, alpha: float) -> Hypothesis:
    n = max(len(tokens), 1)
    return Hypothesis(tokens, logp, finished, logp / (n ** alpha))


@torch.no_grad()
def beam_search(
    model: torch.nn.Module,
    prime: torch.Tensor,
    length: int,
    width: int,
    stop: tuple[int, ...] | None = None,
    alpha: float = 1.0,
    state: State | None = None,
) -> list[Hypothesis]:
    """prime (T,) long, T >= 1 -> the hypotheses found, best first (at most ``2 * width``).

    stop: a sequence of indices that ends a hypothesis (None: all run to ``length``).
    """
    if width < 1 or length < 1:
        raise ValueError(f"width and length must be >= 1, got {width} and {length}")
    if prime.dim() != 1 or prime.numel() < 1:
        raise ValueError(f"prime: expected shape (T,) with T >= 1, got {tuple(prime.shape)}")
    stop = tuple(stop) if stop else None
    device = next(model.parameters()).device
    logits, state = model(prime.long().to(device).unsqueeze(0), state)  # (1, T, V)
    next_logp = torch.log_softmax(logits[:, -1].double(), dim=-1)  # (K=1, V)
    V = next_logp.shape[-1]
    beams: list[tuple[tuple[int, ...], float]] = [((), 0.0)]
    finished: list[Hypothesis] = []
    for step in range(length):
        scores = torch.tensor([lp for _, lp in beams], dtype=torch.float64, device=device)  # (K,)
        cand = (scores.unsqueeze(1) + next_logp).view(-1)  # (K*V,)
        order = torch.argsort(cand, descending=True).tolist()
        values = cand.tolist()
        live: list[tuple[tuple[int, ...], float]] = []
        parents: list[int] = []
        for flat in order:
            k, c = divmod(flat, V)
            tokens = beams[k][0] + (c,)
            if stop is not None and tokens[-len(stop):] == stop:
                finished.append(_ranked(tokens, values[flat], True, alpha))
                continue
            live.append((tokens, values[flat]))
            parents.append(k)
            if len(live) == width:
                break
        if len(finished) >= width or not live or step == length - 1:
            break
        beams = live
        rows = torch.tensor(parents, dtype=torch.long, device=device)
        x = torch.tensor([[t[-1]] for t, _ in live], dtype=torch.long, device=device)  # (K, 1)
        logits, state = model(x, select_rows(state, rows))  # (K, 1, V)
        next_logp = torch.log_softmax(logits[:, -1].double(), dim=-1)  # (K, V)
    hyps = finished + [_ranked(t, lp, False, alpha) for t, lp in live]
    hyps.sort(key=lambda h: -h.score)
    return hyps[:2 * width]
