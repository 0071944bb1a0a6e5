"""Looks into a training run without changing it: hidden-state statistics and a live sample.

The statistics come from the training forward's own hidden states (the trainer taps them with
:func:`rnnplay.model.fast.tap_hidden` on the steps where they are due) or, for a model the tap
cannot reach, from an extra no-grad pass. A gated cell's gates (and the LSTM's c) are recomputed
from those states by its kind's ``probe`` with the current weights, over the same few sequences. The sample runs under the trainer's lock between two
steps without gradients and draws from its own generator. None of it touches a global RNG or the
weights, so a run with them is float-for-float the run without.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rnnplay.model.cell import CellKind, Probe, State, select_batch, state_parts
from rnnplay.pipeline import Run
from rnnplay.training.events import HiddenStats


SAT_SEQS = 8  # sequences whose states count towards a layer's saturation
GATE_LOW, GATE_HIGH = 0.05, 0.95  # a sigmoid gate's activation outside these is saturated


def _units(out: torch.Tensor, pick: list[int]) -> tuple[tuple[float, ...], ...]:
    """The picked units of (T, b, H) over the first sequence -> (units, T)."""
    return tuple(map(tuple, out[:, 0, pick].t().tolist()))


def _gate_saturation(gate: torch.Tensor) -> float:
    """Fraction of a gate's activations (T, b, H) below GATE_LOW or above GATE_HIGH."""
    return int(torch.count_nonzero((gate < GATE_LOW) | (gate > GATE_HIGH))) / max(1, gate.numel())


def stats_from_states(step: int, states: list[torch.Tensor], n_units: int,
                      probed: list[Probe] | None = None, kind: CellKind | None = None) -> HiddenStats:
    """Per layer (T, b, H) time-major states -> ``n_units`` evenly spaced units' activations over
    the first sequence, and each layer's tanh saturation (fraction of |h| > 0.95, all b sequences).

    With ``probed`` (one :class:`Probe` per layer, from :func:`probe_layers`) and its ``kind``, also
    the same units of the kind's other state parts and each gate's saturation per layer.
    """
    units, sat = [], []
    H = states[0].shape[-1]
    pick = torch.linspace(0, H - 1, min(n_units, H)).round().long().tolist()
    for out in states:  # (T, b, H)
        units.append(_units(out, pick))  # (units, T)
        sat.append(int(torch.count_nonzero(out.abs() > 0.95)) / out.numel())
    if not probed or kind is None:
        return HiddenStats(step, tuple(units), tuple(sat))
    n_more = len(probed[0].states)
    more = tuple(tuple(_units(p.states[s], pick) for p in probed) for s in range(n_more))  # (S-1, L, units, T)
    gates = tuple(tuple(_gate_saturation(g) for g in p.gates) for p in probed)  # (L, n_gates)
    return HiddenStats(step, tuple(units), tuple(sat), state_names=tuple(kind.state_names[:1 + n_more]),
                       more_units=more, gate_names=tuple(kind.gate_names), gate_saturation=gates)


def tapped_states(layers: list[torch.Tensor]) -> list[torch.Tensor]:
    """What :func:`stats_from_states` needs from a training forward's states (fast.tap_hidden): a
    copy of each layer's first SAT_SEQS sequences, L x (T, b, H), small and detached."""
    return [h[:, :SAT_SEQS].detach().clone() for h in layers]


@torch.no_grad()
def probe_layers(model, xs: torch.Tensor, h0: State | None, states: list[torch.Tensor]) -> list[Probe] | None:
    """Each layer's :class:`Probe` (its cell kind's ``probe``) with the current weights, from the
    token inputs xs (b, T), the state carried into them (each part (L, b, H), or None) and every
    layer's h, L x (T, b, H). Layer l's input is layer l-1's h (dropout, a training-only mask,
    left out). None for a kind without a probe (tanh) or a model without an embedding and ``rnn``.
    """
    rnn, emb = getattr(model, "rnn", None), getattr(model, "embedding", None)
    kind = getattr(rnn, "kind", None)
    if kind is None or kind.probe is None or emb is None or len(states) != len(rnn.cells):
        return None
    parts = state_parts(h0)
    layer_in = F.embedding(xs.t(), emb.weight)  # (T, b, E)
    out = []
    for k, (cell, hs) in enumerate(zip(rnn.cells, states)):
        s0 = None if parts is None else tuple(p[k] for p in parts)  # (b, H) each
        out.append(kind.probe(cell, layer_in, hs, s0))
        layer_in = hs  # (T, b, H)
    return out


def _slice(last_batch: tuple[torch.Tensor, State | None]) -> tuple[torch.Tensor, State | None]:
    """The first SAT_SEQS sequences of (x (B, T), the state carried into it)."""
    x, h0_all = last_batch
    xs = x[:SAT_SEQS]  # (b, T)
    return xs, select_batch(h0_all, slice(0, xs.shape[0]))  # (L, b, H) each part


def tapped_stats(run: Run, states: list[torch.Tensor], last_batch: tuple[torch.Tensor, State | None] | None,
                 n_units: int) -> HiddenStats:
    """The statistics of a tapped training forward's states (:func:`tapped_states`); with the step's
    batch ``last_batch`` (x, h0), also its cell kind's probe over the same sequences."""
    probed, kind = None, getattr(getattr(run.model, "rnn", None), "kind", None)
    if last_batch is not None and kind is not None and kind.probe is not None:
        xs, h0 = _slice(last_batch)
        if xs.shape[0] == states[0].shape[1]:
            probed = probe_layers(run.model, xs, h0, states)
    return stats_from_states(run.state.step, states, n_units, probed, kind)


@torch.no_grad()
def hidden_stats(run: Run, last_batch: tuple[torch.Tensor, torch.Tensor], n_units: int) -> HiddenStats | None:
    """The same statistics from an extra no-grad pass over the first SAT_SEQS sequences of the last
    batch with the current weights (for models whose training forward cannot be tapped).

    ``last_batch`` is (x, h0): the batch's inputs (B, T) and the state carried into it ((L, B, H)
    or the LSTM's (h, c)).
    """
    model = run.model
    rnn = getattr(model, "rnn", None)
    if rnn is None or not hasattr(rnn, "layer_outputs"):
        return None
    xs, h0 = _slice(last_batch)  # (b, T); the state carried into this batch
    states = rnn.layer_outputs(xs.t(), h0, embedding=model.embedding.weight)  # L x (T, b, H)
    return stats_from_states(run.state.step, states, n_units, probe_layers(model, xs, h0, states), rnn.kind)


def live_sample(run: Run, length: int) -> str | None:
    """``length`` characters from the current weights at temperature 0.8, after a newline.

    Seeded by the run's seed and step, so the same checkpoint gives the same sample.
    """
    from rnnplay.model import Sampler

    model, vocab = run.model, run.vocab
    if not hasattr(model, "embedding"):
        return None
    prime = vocab.stoi.get("\n", int(run.train_data[0]))
    gen = torch.Generator(device=run.device).manual_seed(run.config.seed * 1_000_003 + run.state.step)
    idx = Sampler(model).generate(torch.tensor([[prime]], device=run.device), length,
                                  temperature=0.8, generator=gen)  # (1, length)
    return vocab.decode(idx[0])
