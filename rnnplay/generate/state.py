"""Recurrent state helpers that work for any cell: a state is a tensor (L, B, H) or a tuple of them
(an LSTM's (h, c)), with the batch on dim 1, as ``CharRNN.forward(idx, state)`` takes and returns it.
Built on rnnplay.model.cell's one-state helpers; these combine several states."""

from __future__ import annotations

import torch

from rnnplay.model.cell import State, map_state, select_batch, state_parts


def select_rows(state: State, rows: torch.Tensor) -> State:
    """The batch rows ``rows`` (K,) of a state: (L, B, H) -> (L, K, H) per tensor."""
    return select_batch(state, rows)


def cat_rows(*states: State) -> State:
    """Concatenate states of one structure along the batch dim."""
    parts = [torch.cat(p, dim=1) for p in zip(*(state_parts(s) for s in states))]
    return parts[0] if isinstance(states[0], torch.Tensor) else tuple(parts)


def zeros_like_rows(state: State, batch: int) -> State:
    """A zero state of ``batch`` rows shaped like ``state`` (what a model starts from)."""
    return map_state(lambda s: s.new_zeros(s.shape[0], batch, *s.shape[2:]), state)
