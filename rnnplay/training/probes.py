"""Looks into a training run without changing it: hidden-state statistics and a live sample.

The statistics come from the training forward's own hidden states (the trainer taps them with
:func:`rnnplay.model.fast.tap_hidden` on the steps where they are due) or, for a model the tap
cannot reach, from an extra no-grad pass. The sample runs under the trainer's lock between two
steps without gradients and draws from its own generator. None of it touches a global RNG or the
weights, so a run with them is float-for-float the run without.
"""

from __future__ import annotations

import torch

from rnnplay.pipeline import Run
from rnnplay.training.events import HiddenStats


SAT_SEQS = 8  # sequences whose states count towards a layer's saturation


def stats_from_states(step: int, states: list[torch.Tensor], n_units: int) -> HiddenStats:
    """Per layer (T, b, H) time-major states -> ``n_units`` evenly spaced units' activations over
    the first sequence, and each layer's tanh saturation (fraction of |h| > 0.95, all b sequences).
    """
    units, sat = [], []
    H = states[0].shape[-1]
    pick = torch.linspace(0, H - 1, min(n_units, H)).round().long().tolist()
    for out in states:  # (T, b, H)
        units.append(tuple(map(tuple, out[:, 0, pick].t().tolist())))  # (units, T)
        sat.append(int(torch.count_nonzero(out.abs() > 0.95)) / out.numel())
    return HiddenStats(step, tuple(units), tuple(sat))


def tapped_states(layers: list[torch.Tensor]) -> list[torch.Tensor]:
    """What :func:`stats_from_states` needs from a training forward's states (fast.tap_hidden): a
    copy of each layer's first SAT_SEQS sequences, L x (T, b, H), small and detached."""
    return [h[:, :SAT_SEQS].detach().clone() for h in layers]


@torch.no_grad()
def hidden_stats(run: Run, last_batch: tuple[torch.Tensor, torch.Tensor], n_units: int) -> HiddenStats | None:
    """The same statistics from an extra no-grad pass over the first SAT_SEQS sequences of the last
    batch with the current weights (for models whose training forward cannot be tapped).

    ``last_batch`` is (x, h0): the batch's inputs (B, T) and the state carried into it ((L, B, H)
    or the LSTM's (h, c)).
    """
    from rnnplay.model.cell import select_batch

    model = run.model
    rnn = getattr(model, "rnn", None)
    if rnn is None or not hasattr(rnn, "layer_outputs"):
        return None
    x, h0_all = last_batch
    xs = x[:SAT_SEQS]  # (b, T)
    h0 = select_batch(h0_all, slice(0, xs.shape[0]))  # (L, b, H) (each part): the state carried into this batch
    states = rnn.layer_outputs(xs.t(), h0, embedding=model.embedding.weight)  # L x (T, b, H)
    return stats_from_states(run.state.step, states, n_units)


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
