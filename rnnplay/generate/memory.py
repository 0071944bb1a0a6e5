"""The memory view: how strongly each earlier character influenced one prediction.

For position ``t`` of a text, take log p(text[t] | text[:t]) (or of another chosen character) and
its gradient with respect to the input embedding of every earlier position; the L2 norm of each
gradient says how much that character mattered (the saliency picture of LSTMVis and of the Distill
article on memorisation in RNNs). Typically a trained vanilla tanh cell's strip fades within a few characters;
gated cells reach further back.

The embedding is taken per position (``model.embedding``, then ``model.rnn(emb, state)`` and
``model.fc``), so two occurrences of the same character get their own gradients. Works for any cell
``model.rnn`` is built with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rnnplay.generate.state import State


@dataclass(frozen=True)
class Saliency:
    norms: torch.Tensor  # (t,) float32: |d log p / d embedding of position i|, i < t
    logp: float  # log-probability (nats) of the chosen character at position t
    target: int  # the chosen character's index


def saliency(
    model: torch.nn.Module,
    idx: torch.Tensor,
    position: int,
    target: int | None = None,
    window: int | None = None,
    state: State | None = None,
) -> Saliency:
    """idx (T,) long: the text; position: 1 <= position <= T (T: the character after the text).

    target: the character whose log-probability at ``position`` is differentiated (default: the
    text's own character there; required when position == T). window: read only the last
    ``window`` characters before ``position`` (the state at the window's start is ``state`` or zeros).
    Returns norms for the positions read, oldest first.
    """
    if idx.dim() != 1:
        raise ValueError(f"idx: expected shape (T,), got {tuple(idx.shape)}")
    T = idx.numel()
    if not 1 <= position <= T:
        raise ValueError(f"position must be in 1..{T}, got {position}")
    if target is None:
        if position == T:
            raise ValueError("target is required when position is past the text")
        target = int(idx[position])
    start = 0 if window is None else max(0, position - window)
    device = next(model.parameters()).device
    x = idx[start:position].long().to(device).unsqueeze(0)  # (1, t)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            emb = model.embedding(x).detach().requires_grad_(True)  # (1, t, E): a leaf per position
            out, _ = model.rnn(emb, state)  # (1, t, H)
            logp = torch.log_softmax(model.fc(out[:, -1]), dim=-1)[0, target]  # scalar
            (grad,) = torch.autograd.grad(logp, emb)  # (1, t, E)
    finally:
        model.train(was_training)
    return Saliency(norms=grad[0].norm(dim=-1).float().cpu(), logp=float(logp.detach()), target=int(target))
