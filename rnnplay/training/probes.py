"""Looks into a training run without changing it: hidden-state statistics and a live sample.

Both run under the trainer's lock between two steps, without gradients, and touch no global RNG
(the sample draws from its own generator), so a run with them is float-for-float the run without.
"""

from __future__ import annotations

import torch

from rnnplay.pipeline import Run
from rnnplay.training.events import HiddenStats


@torch.no_grad()
def hidden_stats(run: Run, last_batch: tuple[torch.Tensor, torch.Tensor], n_units: int) -> HiddenStats | None:
    """``n_units`` evenly spaced units' activations over the first sequence of the last batch, per
    layer, and each layer's tanh saturation (fraction of |h| > 0.95 over its first 8 sequences).

    ``last_batch`` is (x, h0): the batch's inputs (B, T) and the state carried into it (L, B, H).
    """
    from rnnplay.model.fast import forward_fast

    model = run.model
    rnn = getattr(model, "rnn", None)
    if rnn is None or not hasattr(rnn, "cells"):
        return None
    x, h0_all = last_batch
    xs = x[:8]  # (b, T): a few sequences for saturation; units from the first
    h0_all = h0_all[:, : xs.shape[0]]  # (L, b, H): the state carried into this batch
    layer_in = model.embedding(xs.t())  # (T, b, E)
    units, sat = [], []
    H = model.hidden_size
    pick = torch.linspace(0, H - 1, min(n_units, H)).round().long().tolist()
    for layer, cell in enumerate(rnn.cells):
        out, _ = forward_fast([cell], layer_in, h0_all[layer : layer + 1], 0.0, False)  # (T, b, H)
        first = out[:, 0, pick].t().tolist()  # (units, T)
        units.append(tuple(tuple(round(v, 4) for v in row) for row in first))
        sat.append(float((out.abs() > 0.95).float().mean()))
        layer_in = out
    return HiddenStats(run.state.step, tuple(units), tuple(sat))


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
