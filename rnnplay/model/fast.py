"""The fast execution path of :class:`rnnplay.model.RNN`.

Same maths as the seed's cell loop, reordered for speed:

* layer-major: all T steps of layer 1, then layer 2 (equivalent to the seed's time-major loop,
  because layer l at step t only needs layer l-1 at step t and layer l at step t-1);
* each layer's input projection ``x @ Wxh^T + b_xh + b_hh`` for the whole sequence in one matmul,
  left to autograd (so dWxh, both biases and dx are single large matmuls);
* the recurrence ``h_t = tanh(xp_t + h_{t-1} @ Whh^T)`` in :class:`Recurrence`, a custom
  autograd Function with a hand-written backward through time: per step one ``addmm`` and the tanh
  derivative, then dWhh as one matmul over all steps. Buffers are time-major and contiguous and
  are written in place with ``out=``, so the loop allocates nothing per step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Recurrence(torch.autograd.Function):
    """h_t = tanh(xp_t + h_{t-1} @ Whh^T) for t = 0..T-1, time-major.

    Inputs: xp (T, B, H) the projected input with both biases folded in, h0 (B, H), Whh (H, H).
    Output: hs (T, B, H), the hidden state after every step.
    """

    @staticmethod
    def forward(ctx, xp: torch.Tensor, h0: torch.Tensor, Whh: torch.Tensor) -> torch.Tensor:
        hs = torch.empty_like(xp)  # (T, B, H)
        WhhT = Whh.t()  # (H, H)
        h = h0  # (B, H)
        for t in range(xp.shape[0]):
            torch.addmm(xp[t], h, WhhT, out=hs[t])  # (B, H)
            h = hs[t].tanh_()
        ctx.save_for_backward(hs, h0, Whh)
        return hs

    @staticmethod
    def backward(ctx, grad_hs: torch.Tensor):  # type: ignore[override]
        hs, h0, Whh = ctx.saved_tensors
        T = hs.shape[0]
        grad_hs = grad_hs.contiguous()
        deriv = 1.0 - hs * hs  # (T, B, H) tanh'(pre) = 1 - h^2, all steps at once
        dpre = torch.empty_like(hs)  # (T, B, H) dLoss/d(pre-activation)
        torch.mul(grad_hs[T - 1], deriv[T - 1], out=dpre[T - 1])
        for t in range(T - 2, -1, -1):
            # dh_t = grad_hs[t] + dpre[t+1] @ Whh ; dpre[t] = dh_t * tanh'
            torch.addmm(grad_hs[t], dpre[t + 1], Whh, out=dpre[t])
            dpre[t].mul_(deriv[t])
        grad_h0 = dpre[0] @ Whh if ctx.needs_input_grad[1] else None  # (B, H)
        grad_Whh = None
        if ctx.needs_input_grad[2]:
            B, H = h0.shape
            h_prev = torch.cat([h0.unsqueeze(0), hs[:-1]], dim=0)  # (T, B, H)
            grad_Whh = dpre.reshape(T * B, H).t() @ h_prev.reshape(T * B, H)  # (H, H)
        return dpre, grad_h0, grad_Whh


def _input_projection(x: torch.Tensor, cell) -> torch.Tensor:
    """x (T, B, I) -> xp (T, B, H) = x @ Wxh^T + b_xh + b_hh, one matmul for the whole sequence."""
    T, B, I = x.shape
    W = cell.Wxh.weight  # (H, I)
    if cell.bias:
        bias = cell.Wxh.bias + cell.Whh.bias  # (H,)
        xp = torch.addmm(bias, x.reshape(T * B, I), W.t())  # (T*B, H)
    else:
        xp = x.reshape(T * B, I) @ W.t()  # (T*B, H)
    return xp.view(T, B, -1)


def forward_fast(
    cells, x: torch.Tensor, h0: torch.Tensor, dropout: float, training: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Layer-major forward. x (T, B, I) time-major, h0 (L, B, H) -> (outputs (T, B, H), h_n (L, B, H))."""
    layer_in = x
    finals = []
    for layer, cell in enumerate(cells):
        if layer > 0 and dropout > 0.0 and training:
            layer_in = F.dropout(layer_in, dropout, training=True)  # between layers only
        xp = _input_projection(layer_in, cell)  # (T, B, H)
        hs = Recurrence.apply(xp, h0[layer], cell.Whh.weight)  # (T, B, H)
        finals.append(hs[-1])
        layer_in = hs
    return layer_in, torch.stack(finals, dim=0)  # (T, B, H), (L, B, H)
