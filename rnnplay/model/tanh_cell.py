"""The seed's cell, kind ``"tanh"``: h_t = tanh(Wxh x_t + Whh h_{t-1}); torch.nn.RNN(nonlinearity="tanh").

Fast path, per layer (the stack around it is in :mod:`rnnplay.model.fast`): the input projection
with both biases for the whole sequence is written into the layer's time-major output buffer; the
recurrence then runs in place there, per step one ``addmm_`` and one in-place activation. The
backward through time is per step one matmul and the tanh derivative in place; dWhh is one matmul
over all steps afterwards.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnplay.model.cell import Cell, CellKind, tanh_backward, whh_grad


class RNNCell(Cell):
    """One step of a vanilla tanh RNN: two Linear layers keep the input and hidden projections apart
    (``Wxh``, ``Whh``), as in the seed article. Weights are Xavier-uniform, biases start at zero."""

    gates = 1

    def forward(self, x: torch.Tensor, h_prev: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, I), h_prev (B, H) or None (zeros) -> h (B, H)."""
        self._check(x, None if h_prev is None else (h_prev,))
        if h_prev is None:
            h_prev = x.new_zeros(x.shape[0], self.hidden_size)  # (B, H)
        return torch.tanh(self.Wxh(x) + self.Whh(h_prev))  # (B, H)


# ---- fast path ------------------------------------------------------------------------------

def _recur_(buf: torch.Tensor, h0: torch.Tensor | None, WhhT: torch.Tensor) -> None:
    """In place: buf (T, B, H) holds xp_t on entry and h_t = tanh(xp_t + h_{t-1} @ WhhT) on exit."""
    rows = buf.unbind(0)  # T x (B, H) views, made once (indexing buf[t] costs a dispatch per step)
    prev = h0
    for cur in rows:
        if prev is not None:  # h0 None means zeros: nothing to add at t = 0
            cur.addmm_(prev, WhhT)
        cur.tanh_()
        prev = cur


def _bptt(g: torch.Tensor | None, owned: bool, last: torch.Tensor | None, hs: torch.Tensor,
          Whh: torch.Tensor) -> torch.Tensor:
    """Backward through time -> dpre (T, B, H), dpre_t = (g_t + dpre_{t+1} @ Whh) * (1 - h_t^2).

    g (T, B, H): dLoss/dh_t from outside the recurrence, or None (zeros); ``owned`` means it may
    be overwritten (then it becomes dpre). ``last`` (B, H) is an extra gradient at t = T-1 (h_n).
    """
    T = hs.shape[0]
    d = g if owned else torch.empty_like(hs)
    ds, hr = d.unbind(0), hs.unbind(0)
    gs = g.unbind(0) if (g is not None and not owned) else None
    if g is None:
        ds[T - 1].copy_(last) if last is not None else ds[T - 1].zero_()
    elif owned:
        if last is not None:
            ds[T - 1].add_(last)
    else:
        torch.add(gs[T - 1], last, out=ds[T - 1]) if last is not None else ds[T - 1].copy_(gs[T - 1])
    tanh_backward(ds[T - 1], hr[T - 1], grad_input=ds[T - 1])
    mm, addmm = torch.mm, torch.addmm
    for t in range(T - 2, -1, -1):
        if owned:
            ds[t].addmm_(ds[t + 1], Whh)
        elif gs is None:
            mm(ds[t + 1], Whh, out=ds[t])
        else:
            addmm(gs[t], ds[t + 1], Whh, out=ds[t])
        tanh_backward(ds[t], hr[t], grad_input=ds[t])
    return d


class Recurrence(torch.autograd.Function):
    """h_t = tanh(xp_t + h_{t-1} @ Whh^T) for t = 0..T-1, time-major: the one-layer building block
    kept for readers and for ``gradcheck``.

    Inputs: xp (T, B, H) the projected input with both biases folded in, h0 (B, H), Whh (H, H).
    Output: hs (T, B, H), the hidden state after every step.
    """

    @staticmethod
    def forward(ctx, xp: torch.Tensor, h0: torch.Tensor, Whh: torch.Tensor) -> torch.Tensor:
        hs = xp.contiguous().clone()  # (T, B, H), overwritten in place
        _recur_(hs, h0, Whh.t())
        ctx.save_for_backward(hs, h0, Whh)
        return hs

    @staticmethod
    def backward(ctx, grad_hs: torch.Tensor):  # type: ignore[override]
        hs, h0, Whh = ctx.saved_tensors
        dpre = _bptt(grad_hs, False, None, hs, Whh)  # (T, B, H)
        grad_h0 = dpre[0] @ Whh if ctx.needs_input_grad[1] else None  # (B, H)
        grad_Whh = whh_grad(dpre, hs, h0) if ctx.needs_input_grad[2] else None  # (H, H)
        return dpre, grad_h0, grad_Whh


# On CPU, torch's tanh kernel is about 2.5x slower than its sigmoid (AVX2, torch 2.13), and the
# per-step tanh is a large part of a small model's step. tanh(a) = 2 * sigmoid(2a) - 1, so the
# forward loop can run on s_t = sigmoid(2 a_t) instead of h_t = 2 s_t - 1 with the affine parts
# folded into the matmuls: 2 a_t = 2 xp_t + 2 h_{t-1} @ Whh^T = (2 xp_t - 2c) + 4 s_{t-1} @ Whh^T,
# c = Whh.sum(1) (= 1 @ Whh^T). Per step it is still one addmm_ and one in-place activation; the
# whole buffer is mapped back to h = 2s - 1 once at the end. Rounding: about 1.6x tanh's (float32).
SIGMOID_FORM_DEVICES = {"cpu"}


def forward_layer(fill, T: int, B: int, Whh: torch.Tensor, b_xh, b_hh, state0, empty):
    """One layer -> (hs (T, B, H) a contiguous buffer from ``empty``, saved for backward, final state parts).

    ``fill(out (T*B, H), scale, shift)`` writes ``scale * x_t @ Wxh^T + shift`` for every step.
    """
    H = Whh.shape[0]
    h0 = None if state0 is None else state0[0]
    b = None if b_xh is None else b_xh + b_hh  # (H,): both biases folded into the projection
    hs = empty("h", T, B, H)  # (T, B, H)
    WhhT = Whh.t()
    if hs.device.type not in SIGMOID_FORM_DEVICES:
        fill(hs.view(T * B, H), 1.0, b)
        _recur_(hs, h0, WhhT)
        return hs, (hs,), (hs[T - 1],)
    c = Whh.sum(1)  # (H,)
    fill(hs.view(T * B, H), 2.0, (c if b is None else c - b).mul(-2.0))  # 2 xp_t - 2c, every step at once
    W4T = WhhT * 4.0  # (H, H); factors go into operands: a non-unit alpha makes addmm_ slower
    rows = hs.unbind(0)
    if h0 is None:
        rows[0].add_(c, alpha=2)  # h_{-1} = 0, i.e. s_{-1} = 1/2: 4 s @ Whh^T = 2c
        prev = None
    else:
        prev = (h0 + 1.0).mul_(0.5)  # (B, H): s-form of h0
    for cur in rows:
        if prev is not None:
            cur.addmm_(prev, W4T)
        cur.sigmoid_()
        prev = cur
    torch.add(hs.new_full((), -1.0), hs, alpha=2.0, out=hs)  # h = 2s - 1, one pass
    return hs, (hs,), (hs[T - 1],)


def backward_layer(g, owned: bool, last, saved, Whh: torch.Tensor, state0, need_state0: bool):
    """-> (dxp (T, B, H), dWhh (H, H), db_hh (None: equals db_xh), dstate0 parts or None)."""
    (hs,) = saved
    h0 = None if state0 is None else state0[0]
    dpre = _bptt(g, owned, None if last is None else last[0], hs, Whh)  # (T, B, H)
    dWhh = whh_grad(dpre, hs, h0)
    return dpre, dWhh, None, ((dpre[0] @ Whh,) if need_state0 else None)


# ---- sampler --------------------------------------------------------------------------------

def sampler_weights(cells, emb: torch.Tensor) -> dict:
    """Layer 1: the (V, H) table E @ Wxh^T + both biases; later layers: [Wxh^T ; Whh^T] (2H, H)
    so that ``[h_{l-1} | h_l] @ Wcat`` is one matmul."""
    c0 = cells[0]
    table = emb @ c0.Wxh.weight.t()  # (V, H)
    if c0.bias:
        table = table + (c0.Wxh.bias + c0.Whh.bias)
    zero = torch.zeros_like(c0.Whh.weight[0])
    return {
        "table": table.contiguous(),
        "Whh0T": c0.Whh.weight.t().contiguous(),  # (H, H)
        "Wcat": [torch.cat([c.Wxh.weight.t(), c.Whh.weight.t()], dim=0).contiguous() for c in cells[1:]],
        "bias": [(c.Wxh.bias + c.Whh.bias) if c.bias else zero.clone() for c in cells[1:]],  # (H,)
    }


def stepper(w: dict, flat, H: int, L: int):
    """A closure feeding one character per row into the state flat[0] (B, L*H), in place."""
    (S,) = flat
    tmp = S.new_empty(S.shape[0], H)  # (B, H)
    table, Whh0T = w["table"], w["Whh0T"]
    h = [S[:, k * H:(k + 1) * H] for k in range(L)]  # L x (B, H) views
    pairs = [(w["bias"][k - 1], S[:, (k - 1) * H:(k + 1) * H], w["Wcat"][k - 1], h[k]) for k in range(1, L)]
    index_select, addmm, tanh = torch.index_select, torch.addmm, torch.tanh

    def step(idx: torch.Tensor) -> None:  # idx (B,) long
        index_select(table, 0, idx, out=tmp)  # (B, H): layer 1's projected input
        tmp.addmm_(h[0], Whh0T)
        tanh(tmp, out=h[0])
        for bias, pair, W, h_k in pairs:
            addmm(bias, pair, W, out=tmp)  # (B, H): [h_{k-1} | h_k] @ [Wxh^T ; Whh^T]
            tanh(tmp, out=h_k)

    return step


KIND = CellKind(
    name="tanh", gates=1, n_state=1, cell=RNNCell,
    forward_layer=forward_layer, backward_layer=backward_layer,
    sampler_weights=sampler_weights, stepper=stepper,
    torch_module=nn.RNN, torch_kwargs={"nonlinearity": "tanh"},
)
