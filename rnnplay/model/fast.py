"""The fast execution path of :class:`rnnplay.model.RNN`.

Same maths as the seed's cell loop, reordered for speed:

* layer-major: all T steps of layer 1, then layer 2 (equivalent to the seed's time-major loop,
  because layer l at step t only needs layer l-1 at step t and layer l at step t-1);
* each layer's input projection ``x @ Wxh^T + b_xh + b_hh`` for the whole sequence in one matmul,
  written straight into the layer's time-major output buffer;
* the recurrence ``h_t = tanh(xp_t + h_{t-1} @ Whh^T)`` in place in that buffer: per step one
  ``addmm_`` and one in-place activation, no allocation;
* the whole stack (every layer, the dropout between layers, batch-first in and out) is one
  autograd Function, :class:`StackedRNN`, with a hand-written backward through time: per step one
  matmul and the tanh derivative in place, then per layer dWhh, dWxh, the bias gradient and the
  gradient of the layer below as single large matmuls / reductions over all steps.

One autograd node for the whole RNN instead of a dozen per layer matters for small models, where a
training step is bound by per-op overhead; the large matmuls matter for big ones. Under
``torch.no_grad()`` the same forward runs without autograd and saves nothing.

With token input (CharRNN), an embedding followed by layer 1's input projection is one linear map
of one-hot vectors: ``E[idx] @ Wxh^T = (E @ Wxh^T)[idx]``. When the vocabulary is smaller than
the number of tokens in the batch, layer 1 reads rows of the (V, H) table ``E @ Wxh^T`` instead
of multiplying (T*B, E) by (E, H), and the backward scatters the gradient into a (V, H) table
(``index_add_``) before two small matmuls give dE and dWxh.

:class:`Recurrence` is the one-layer building block (the recurrence alone) kept for readers and
for ``gradcheck``; :class:`StackedRNN` inlines the same loops.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

import torch

_tanh_backward = torch.ops.aten.tanh_backward.grad_input._op  # g * (1 - h^2), written to grad_input
FOLD_EMBEDDING = True  # read layer 1's input from the (V, H) table when V < T*B (see the docstring)
_TAP = threading.local()  # .fn: called with each layer's hidden states by this thread's next stack forward


@contextmanager
def tap_hidden(fn: Callable[[list[torch.Tensor]], None]) -> Iterator[None]:
    """Within the block, each stack forward on this thread calls ``fn`` with its layers' hidden
    states, a list of (T, B, H) time-major tensors, read-only (the backward still needs them).

    The trainer takes its live hidden-state statistics from the training forward this way instead
    of a second pass. Only the fast path calls ``fn``; the seed's cell loop does not.
    """
    before = getattr(_TAP, "fn", None)
    _TAP.fn = fn
    try:
        yield
    finally:
        _TAP.fn = before


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
    _tanh_backward(ds[T - 1], hr[T - 1], grad_input=ds[T - 1])
    mm, addmm = torch.mm, torch.addmm
    for t in range(T - 2, -1, -1):
        if owned:
            ds[t].addmm_(ds[t + 1], Whh)
        elif gs is None:
            mm(ds[t + 1], Whh, out=ds[t])
        else:
            addmm(gs[t], ds[t + 1], Whh, out=ds[t])
        _tanh_backward(ds[t], hr[t], grad_input=ds[t])
    return d


def _whh_grad(dpre: torch.Tensor, hs: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
    """dWhh = sum_t dpre_t^T @ h_{t-1}: one matmul over steps 1..T-1, plus step 0 if h0 is given."""
    T, B, H = hs.shape
    if T > 1:
        g = dpre[1:].reshape(-1, H).t() @ hs[:-1].reshape(-1, H)  # (H, H)
        if h0 is not None:
            g.addmm_(dpre[0].t(), h0)
        return g
    return dpre[0].t() @ h0 if h0 is not None else dpre.new_zeros(H, H)


class Recurrence(torch.autograd.Function):
    """h_t = tanh(xp_t + h_{t-1} @ Whh^T) for t = 0..T-1, time-major.

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
        grad_Whh = _whh_grad(dpre, hs, h0) if ctx.needs_input_grad[2] else None  # (H, H)
        return dpre, grad_h0, grad_Whh


# On CPU, torch's tanh kernel is about 2.5x slower than its sigmoid (AVX2, torch 2.13), and the
# per-step tanh is a large part of a small model's step. tanh(a) = 2 * sigmoid(2a) - 1, so the
# forward loop can run on s_t = sigmoid(2 a_t) instead of h_t = 2 s_t - 1 with the affine parts
# folded into the matmuls: 2 a_t = 2 xp_t + 2 h_{t-1} @ Whh^T = (2 xp_t - 2c) + 4 s_{t-1} @ Whh^T,
# c = Whh.sum(1) (= 1 @ Whh^T). Per step it is still one addmm_ and one in-place activation; the
# whole buffer is mapped back to h = 2s - 1 once at the end. Rounding: about 1.6x tanh's (float32).
SIGMOID_FORM_DEVICES = {"cpu"}


def _layer_forward(fill, T: int, B: int, Whh: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
    """One layer -> hidden states (T, B, H), a new contiguous buffer.

    ``fill(out (T*B, H), scale, c)`` writes ``scale * (xp + b - c)`` for every step (c None: 0):
    the input projection with both biases, computed once for the whole sequence. The recurrence
    then runs in place in the buffer.
    """
    H = Whh.shape[0]
    hs = Whh.new_empty(T, B, H)  # (T, B, H)
    WhhT = Whh.t()
    if hs.device.type not in SIGMOID_FORM_DEVICES:
        fill(hs.view(T * B, H), 1.0, None)
        _recur_(hs, h0, WhhT)
        return hs
    c = Whh.sum(1)  # (H,)
    fill(hs.view(T * B, H), 2.0, c)  # 2 xp_t - 2c, every step at once
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
    return torch.add(hs.new_full((), -1.0), hs, alpha=2.0, out=hs)  # h = 2s - 1, one pass


def _shift(b: torch.Tensor | None, c: torch.Tensor | None, scale: float) -> torch.Tensor | None:
    """scale * (b - c), either may be None."""
    if c is None:
        return None if b is None else (b if scale == 1.0 else b * scale)
    return (c if b is None else c - b).mul(-scale)


def _dense_fill(layer_in: torch.Tensor, Wxh: torch.Tensor, b: torch.Tensor | None):
    flat_in = layer_in.view(-1, layer_in.shape[-1])  # (T*B, I)

    def fill(out: torch.Tensor, scale: float, c: torch.Tensor | None) -> None:
        W = Wxh.t() if scale == 1.0 else Wxh.t() * scale  # (I, H)
        shift = _shift(b, c, scale)
        torch.mm(flat_in, W, out=out) if shift is None else torch.addmm(shift, flat_in, W, out=out)
    return fill


def _table_fill(idx: torch.Tensor, emb: torch.Tensor, Wxh: torch.Tensor, b: torch.Tensor | None):
    def fill(out: torch.Tensor, scale: float, c: torch.Tensor | None) -> None:
        table = emb @ (Wxh.t() if scale == 1.0 else Wxh.t() * scale)  # (V, H)
        shift = _shift(b, c, scale)
        torch.index_select(table if shift is None else table.add_(shift), 0, idx, out=out)
    return fill


INT_MASK_DEVICES = {"cpu"}  # where dropout masks come from 32-bit integers (see _dropout_mask)


def _dropout_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted-dropout mask like x: 0 with probability p, else 1/(1-p).

    On CPU it is drawn as 32-bit random integers, two per 64-bit draw: that costs half of
    ``torch.rand_like`` (and a third of F.dropout's ``bernoulli_``) with torch's CPU generator,
    and p is resolved to 2^-32 (float32 uniforms resolve it to 2^-24). Elsewhere: uniforms.
    """
    if x.device.type not in INT_MASK_DEVICES:
        return torch.rand_like(x).ge_(p).mul_(1.0 / (1.0 - p))
    n = x.numel()
    bits = torch.empty((n + 1) // 2, dtype=torch.int64, device=x.device).random_(-(2**63), None)  # full range
    u = bits.view(torch.int32)[:n].view(x.shape)  # uniform over all int32 values
    keep = u >= min(2**31 - 1, -(2**31) + round(p * 2**32))  # P(keep) = 1 - p
    return keep.to(x.dtype).mul_(1.0 / (1.0 - p))


def _stack_forward(x, h0, emb, p, batch_first, num_layers, bias, params):
    """The forward of StackedRNN, no autograd. x (B, T, I) or (T, B, I), or token indices (B, T) /
    (T, B) when emb (V, E) is given; h0 (L, B, H) or None.

    Returns (out, h_n, saved): out like x with H features, h_n (L, B, H), and per layer the
    tensors the backward needs: (layer input (T, B, I_l) or flat indices, hidden states (T, B, H), mask).
    """
    xt = x.transpose(0, 1) if batch_first else x
    T, B = xt.shape[0], xt.shape[1]
    layer_in = xt.reshape(-1) if emb is not None else xt.contiguous()  # (T*B,) or (T, B, I)
    per = 4 if bias else 2
    saved = []
    for layer in range(num_layers):
        Wxh, Whh = params[per * layer], params[per * layer + 1]
        mask = None
        if layer > 0 and p > 0.0:
            mask = _dropout_mask(layer_in, p)  # (T, B, H)
            layer_in = layer_in * mask
        b = params[per * layer + 2] + params[per * layer + 3] if bias else None  # (H,) both biases folded
        fill = _table_fill(layer_in, emb, Wxh, b) if (layer == 0 and emb is not None) else \
            _dense_fill(layer_in, Wxh, b)
        hs = _layer_forward(fill, T, B, Whh, None if h0 is None else h0[layer])  # (T, B, H)
        saved.append((layer_in, hs, mask))
        layer_in = hs
    tap = getattr(_TAP, "fn", None)
    if tap is not None:
        tap([s[1] for s in saved])  # L x (T, B, H)
    h_n = torch.stack([s[1][T - 1] for s in saved])  # (L, B, H)
    out = layer_in.transpose(0, 1).contiguous() if batch_first else layer_in
    return out, h_n, saved


class StackedRNN(torch.autograd.Function):
    """A whole multi-layer tanh RNN as one autograd node (see the module docstring).

    ``apply(x, h0, emb, p, batch_first, num_layers, bias, *params)``: params per layer are
    ``Wxh (H, I), Whh (H, H)`` and, with bias, ``b_xh (H,), b_hh (H,)``. h0 may be None (zeros);
    emb (V, E) or None: with it, x holds token indices and layer 1 reads ``emb[x]``.
    Returns ``(out, h_n)``.
    """

    @staticmethod
    def forward(ctx, x, h0, emb, p, batch_first, num_layers, bias, *params):  # type: ignore[override]
        out, h_n, saved = _stack_forward(x, h0, emb, p, batch_first, num_layers, bias, params)
        tensors = ([] if h0 is None else [h0]) + ([] if emb is None else [emb])
        for layer_in, hs, mask in saved:
            tensors += [layer_in, hs] + ([] if mask is None else [mask])
        ctx.save_for_backward(*tensors, *params)
        ctx.cfg = (h0 is not None, emb is not None, p > 0.0, batch_first, num_layers, bias)
        ctx.set_materialize_grads(False)  # an unused output's gradient arrives as None
        return out, h_n

    @staticmethod
    def backward(ctx, grad_out, grad_hn):  # type: ignore[override]
        has_h0, has_emb, has_mask, batch_first, L, bias = ctx.cfg
        st = list(ctx.saved_tensors)
        h0 = st.pop(0) if has_h0 else None
        emb = st.pop(0) if has_emb else None
        per = 4 if bias else 2
        params, layers = st[len(st) - per * L:], []
        for layer in range(L):
            n = 3 if (has_mask and layer > 0) else 2
            layers.append(tuple(st[:n]) + ((None,) if n == 2 else ()))
            del st[:n]
        T, B, _ = layers[0][1].shape
        need = ctx.needs_input_grad  # (x, h0, emb, p, batch_first, num_layers, bias, *params)
        grads: list = [None] * len(params)
        grad_h0 = torch.empty_like(h0) if has_h0 and need[1] else None
        grad_x = grad_emb = None
        g, owned = None, False  # (T, B, H) dLoss/dh of the current layer from outside its recurrence
        if grad_out is not None:
            g = grad_out.transpose(0, 1) if batch_first else grad_out
        for layer in range(L - 1, -1, -1):
            layer_in, hs, mask = layers[layer]
            Wxh, Whh = params[per * layer], params[per * layer + 1]
            H = Whh.shape[0]
            dpre3 = _bptt(g, owned, None if grad_hn is None else grad_hn[layer], hs, Whh)  # (T, B, H)
            dpre = dpre3.view(T * B, H)
            tokens = layer == 0 and has_emb
            if tokens:  # layer 1 read rows of E @ Wxh^T: gather the gradient per token first
                dtable = dpre.new_zeros(emb.shape[0], H).index_add_(0, layer_in, dpre)  # (V, H)
                if need[2]:
                    grad_emb = dtable @ Wxh  # (V, E)
            if need[7 + per * layer]:
                src = emb if tokens else layer_in.view(T * B, -1)  # (V, E) or (T*B, I)
                left = dtable if tokens else dpre
                # (H, I); with I < H the transposed product runs faster (MKL, small N)
                grads[per * layer] = (src.t() @ left).t() if src.shape[1] < H else left.t() @ src
            if need[7 + per * layer + 1]:
                grads[per * layer + 1] = _whh_grad(dpre3, hs, None if h0 is None else h0[layer])
            if bias:
                gb = (dtable if tokens else dpre).sum(0)  # (H,)
                grads[per * layer + 2], grads[per * layer + 3] = gb, gb.clone()
            if grad_h0 is not None:
                torch.mm(dpre3[0], Whh, out=grad_h0[layer])
            if layer > 0:
                g, owned = (dpre @ Wxh).view(T, B, -1), True  # (T, B, H_below)
                if mask is not None:
                    g.mul_(mask)
            elif need[0] and not tokens:
                grad_x = (dpre @ Wxh).view(T, B, -1)  # (T, B, I)
                if batch_first:
                    grad_x = grad_x.transpose(0, 1)
        return (grad_x, grad_h0, grad_emb, None, None, None, None, *grads)


def forward_fast(
    cells, x: torch.Tensor, h0: torch.Tensor | None, dropout: float, training: bool, batch_first: bool = False,
    embedding: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, T, I) if batch_first else (T, B, I), h0 (L, B, H) or None -> (outputs like x with H features, h_n).

    With ``embedding`` (V, E), x holds token indices, (B, T) or (T, B), and layer 1 reads ``embedding[x]``.
    """
    if embedding is not None and not (FOLD_EMBEDDING and embedding.shape[0] < x.numel()):
        x, embedding = torch.nn.functional.embedding(x, embedding), None  # (B, T, E) or (T, B, E)
    bias = cells[0].bias
    params = []
    for cell in cells:
        params += [cell.Wxh.weight, cell.Whh.weight]
        if bias:
            params += [cell.Wxh.bias, cell.Whh.bias]
    p = dropout if training else 0.0
    inputs = (x, h0, embedding, *params)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs):
        return StackedRNN.apply(x, h0, embedding, p, batch_first, len(cells), bias, *params)
    out, h_n, _ = _stack_forward(x, h0, embedding, p, batch_first, len(cells), bias, params)
    return out, h_n
