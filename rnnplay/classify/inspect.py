"""What the hidden states do (the seed's Part 3 question), as plain numbers a UI can draw.

``inspect_hidden(model, x, y)`` runs a trained SequenceClassifier (or SequenceTagger) in eval mode
and returns a frozen :class:`Inspection` of plain floats and tuples:

- for the first ``n_sequences`` sequences: every last-layer unit's activation at every step, the
  running mean of the input (the statistic the label thresholds at the last step), and the
  prediction trajectory: P(class 1) from applying the model's head to each step's last-layer
  state, as if the sequence ended there;
- over all sequences of ``x``: each unit's Pearson correlation with the running mean (across steps
  and sequences), the units that track it best, and the accuracy of the step-t readout against
  the final label (how early the model "knows").

``sparkline(values)`` turns a series into unicode blocks for terminals.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

BLOCKS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class SequenceTrace:
    """One inspected sequence. ``hidden[u][t]`` is unit u's activation at step t (last layer)."""

    index: int  # row of x
    label: int
    predicted: int  # the model's prediction at the last step
    prob_class1: tuple[float, ...]  # (T,): softmax(head(h_t))[1]
    running_mean: tuple[float, ...]  # (T,): mean of x[0..t] over steps and features
    hidden: tuple[tuple[float, ...], ...]  # (H, T)


@dataclass(frozen=True)
class Inspection:
    hidden_size: int  # units in the last layer's state (2H for a bidirectional tagger)
    seq_len: int
    sequences: tuple[SequenceTrace, ...]
    unit_correlation: tuple[float, ...]  # (H,): Pearson r of each unit with the running mean
    top_units: tuple[tuple[int, float], ...]  # (unit, r), strongest |r| first
    accuracy_by_step: tuple[float, ...]  # (T,): step-t readout vs the final label, all sequences
    prediction_mean_r: float  # Pearson r of P(class 1) with the running mean, all sequences
    n_points: int  # sequences * steps behind each correlation


def running_mean(x: torch.Tensor) -> torch.Tensor:
    """x (N, T, I) -> (N, T): mean of x[:, :t+1, :] over steps and features."""
    per_step = x.mean(dim=-1)  # (N, T)
    steps = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=per_step.dtype)  # (T,)
    return per_step.cumsum(dim=1) / steps  # (N, T)


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Column-wise Pearson r of a (P, K) with b (P,) -> (K,). A constant column gives 0."""
    a = a.double() - a.double().mean(dim=0)  # (P, K)
    b = b.double() - b.double().mean()  # (P,)
    denom = a.norm(dim=0) * b.norm()  # (K,)
    r = (a * b[:, None]).sum(dim=0) / denom  # (K,)
    return torch.where(denom > 0, r, torch.zeros_like(r))


@torch.no_grad()
def inspect_hidden(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    n_sequences: int = 4,
    top_k: int = 5,
) -> Inspection:
    """Inspect ``model`` (anything with ``.rnn`` returning (outputs, h_n) and a ``.fc`` head) on x (N, T, I).

    y (N,) are the labels (for ``label`` and ``accuracy_by_step``); by default the task's
    definition, running mean at the last step > 0. The model's training mode is restored.
    """
    if x.dim() != 3 or x.shape[0] < 1:
        raise ValueError(f"x must be (N, T, I) with N >= 1, got {tuple(x.shape)}")
    device = next(model.parameters(), torch.empty(0)).device
    x = x.to(device)
    rm = running_mean(x)  # (N, T)
    y = (rm[:, -1] > 0).long() if y is None else y.to(device).long()  # (N,)
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must be one label per sequence, ({x.shape[0]},), got {tuple(y.shape)}")
    was_training = model.training
    model.eval()
    try:
        states, _ = model.rnn(x)  # (N, T, H): last layer at every step
        probs = torch.softmax(model.fc(states).float(), dim=-1)[..., 1]  # (N, T)
    finally:
        model.train(was_training)
    N, T, H = states.shape
    r = pearson(states.reshape(N * T, H), rm.reshape(N * T))  # (H,)
    order = r.abs().argsort(descending=True)[: min(top_k, H)]  # (k,)
    accuracy = ((probs > 0.5).long() == y[:, None]).double().mean(dim=0)  # (T,)
    pred_r = pearson(probs.reshape(N * T, 1), rm.reshape(N * T))[0]

    traces = tuple(
        SequenceTrace(
            index=i,
            label=int(y[i]),
            predicted=int(probs[i, -1] > 0.5),
            prob_class1=_floats(probs[i]),
            running_mean=_floats(rm[i]),
            hidden=tuple(_floats(states[i, :, u]) for u in range(H)),
        )
        for i in range(min(n_sequences, N))
    )
    return Inspection(
        hidden_size=H,
        seq_len=T,
        sequences=traces,
        unit_correlation=_floats(r),
        top_units=tuple((int(u), float(r[u])) for u in order),
        accuracy_by_step=_floats(accuracy),
        prediction_mean_r=float(pred_r),
        n_points=N * T,
    )


def inspection_to_dict(ins: Inspection, units_per_sequence: int | None = None) -> dict:
    """JSON-able form. ``units_per_sequence`` keeps only the top units' traces (None: all units)."""
    keep = None if units_per_sequence is None else [u for u, _ in ins.top_units[:units_per_sequence]]
    seqs = []
    for s in ins.sequences:
        units = range(ins.hidden_size) if keep is None else keep
        seqs.append({
            "index": s.index, "label": s.label, "predicted": s.predicted,
            "prob_class1": _rounded(s.prob_class1), "running_mean": _rounded(s.running_mean),
            "hidden": {str(u): _rounded(s.hidden[u]) for u in units},
        })
    return {
        "hidden_size": ins.hidden_size, "seq_len": ins.seq_len, "n_points": ins.n_points,
        "top_units": [{"unit": u, "r": round(r, 4)} for u, r in ins.top_units],
        "unit_correlation": _rounded(ins.unit_correlation),
        "accuracy_by_step": _rounded(ins.accuracy_by_step),
        "prediction_mean_r": round(ins.prediction_mean_r, 4),
        "sequences": seqs,
    }


def sparkline(values: tuple[float, ...] | list[float], lo: float | None = None, hi: float | None = None) -> str:
    """Unicode block sparkline; ``lo``/``hi`` fix the scale (default: the values' own range)."""
    if not values:
        return ""
    lo = min(values) if lo is None else lo
    hi = max(values) if hi is None else hi
    span = hi - lo
    if not span > 0:
        return BLOCKS[(len(BLOCKS) - 1) // 2] * len(values)
    top = len(BLOCKS) - 1
    return "".join(BLOCKS[min(top, max(0, round((v - lo) / span * top)))] for v in values)


def _floats(t: torch.Tensor) -> tuple[float, ...]:
    return tuple(float(v) for v in t.detach().cpu().double().tolist())


def _rounded(values: tuple[float, ...]) -> list[float]:
    return [round(v, 4) for v in values]
