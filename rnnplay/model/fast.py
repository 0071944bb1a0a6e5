"""The fast execution path of :class:`rnnplay.model.RNN`.

Same maths as the seed's cell loop, reordered for speed:

* layer-major: all T steps of layer 1, then layer 2 (equivalent to the seed's time-major loop,
  because layer l at step t only needs layer l-1 at step t and layer l at step t-1);
* each layer's input projection ``x @ Wxh^T + b_xh + b_hh`` for the whole sequence in one matmul,
  written straight into the layer's time-major output buffer;
* the recurrence ``h_t = tanh(xp_t + h_{t-1} @ Whh^T)`` in place in that buffer: per step one
  ``addmm_`` and one ``tanh_``, no allocation;
* the whole stack (every layer, the dropout between layers, batch-first in and out) is one
  autograd Function, :class:`StackedRNN`, with a hand-written backward through time: per step one
  ``addmm_`` and the tanh derivative in place, then per layer dWhh, dWxh, the bias gradient and
  the gradient of the layer below as single large matmuls / reductions over all steps.

One autograd node for the whole RNN instead of a dozen per layer matters for small models, where a
training step is bound by per-op overhead; the large matmuls matter for big ones. Under
``torch.no_grad()`` the same forward runs without autograd and saves nothing.

:class:`Recurrence` is the one-layer building block (the recurrence alone) kept for readers and
for ``gradcheck``; :class:`StackedRNN` inlines the same loops.
"""

from __future__ import annotations

import torch

_tanh_backward = torch.ops.aten.tanh_backward.grad_input  # g * (1 - h^2), written to grad_input


def _recur_(buf: torch.Tensor, h0: torch.Tensor | None, WhhT: torch.Tensor) -> None:
    """In place: buf (T, B, H) holds xp_t on entry and h_t = tanh(xp_t + h_{t-1} @ WhhT) on exit."""
    rows = buf.unbind(0)  # T x (B, H) views, made once (indexing buf[t] costs a dispatch per step)
    prev = h0
    for cur in rows:
        if prev is not None:  # h0 None means zeros: nothing to add at t = 0
            cur.addmm_(prev, WhhT)
        cur.tanh_()
        prev = cur


def _bptt_(d: torch.Tensor, hs: torch.Tensor, Whh: torch.Tensor) -> None:
    """In place: d (T, B, H) holds dLoss/dh_t from outside the recurrence on entry, dLoss/dpre_t on exit.

    dpre_t = (g_t + dpre_{t+1} @ Whh) * (1 - h_t^2), from t = T-1 down to 0.
    """
    ds, hrows = d.unbind(0), hs.unbind(0)
    T = len(ds)
    _tanh_backward(ds[T - 1], hrows[T - 1], grad_input=ds[T - 1])
    for t in range(T - 2, -1, -1):
        ds[t].addmm_(ds[t + 1], Whh)
        _tanh_backward(ds[t], hrows[t], grad_input=ds[t])


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
        dpre = grad_hs.contiguous().clone()  # (T, B, H)
        _bptt_(dpre, hs, Whh)
        grad_h0 = dpre[0] @ Whh if ctx.needs_input_grad[1] else None  # (B, H)
        grad_Whh = _whh_grad(dpre, hs, h0) if ctx.needs_input_grad[2] else None  # (H, H)
        return dpre, grad_h0, grad_Whh


def _dropout_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted-dropout mask like x: 0 with probability p, else 1/(1-p). Three in-place ops on one buffer."""
    return torch.rand_like(x).ge_(p).mul_(1.0 / (1.0 - p))


def _stack_forward(x, h0, p, batch_first, num_layers, bias, params):
    """The forward of StackedRNN, no autograd. x (B, T, I) or (T, B, I); h0 (L, B, H) or None.

    Returns (out, h_n, saved): out like x with H features, h_n (L, B, H), and per layer the
    tensors the backward needs: (layer input (T, B, I_l), hidden states (T, B, H), mask or None).
    """
    xt = x.transpose(0, 1) if batch_first else x
    layer_in = xt.contiguous()  # (T, B, I)
    T, B, _ = layer_in.shape
    per = 4 if bias else 2
    saved = []
    for layer in range(num_layers):
        Wxh, Whh = params[per * layer], params[per * layer + 1]
        mask = None
        if layer > 0 and p > 0.0:
            mask = _dropout_mask(layer_in, p)  # (T, B, H)
            layer_in = layer_in * mask
        H = Whh.shape[0]
        hs = layer_in.new_empty(T, B, H)  # (T, B, H): xp, then the hidden states
        flat_in = layer_in.view(T * B, -1)  # (T*B, I)
        if bias:
            b = params[per * layer + 2] + params[per * layer + 3]  # (H,) both biases folded
            torch.addmm(b, flat_in, Wxh.t(), out=hs.view(T * B, H))
        else:
            torch.mm(flat_in, Wxh.t(), out=hs.view(T * B, H))
        _recur_(hs, None if h0 is None else h0[layer], Whh.t())
        saved.append((layer_in, hs, mask))
        layer_in = hs
    h_n = torch.stack([s[1][T - 1] for s in saved])  # (L, B, H)
    out = layer_in.transpose(0, 1).contiguous() if batch_first else layer_in
    return out, h_n, saved


class StackedRNN(torch.autograd.Function):
    """A whole multi-layer tanh RNN as one autograd node (see the module docstring).

    ``apply(x, h0, p, batch_first, num_layers, bias, *params)``: params per layer are
    ``Wxh (H, I), Whh (H, H)`` and, with bias, ``b_xh (H,), b_hh (H,)``. h0 may be None (zeros).
    Returns ``(out, h_n)``.
    """

    @staticmethod
    def forward(ctx, x, h0, p, batch_first, num_layers, bias, *params):  # type: ignore[override]
        out, h_n, saved = _stack_forward(x, h0, p, batch_first, num_layers, bias, params)
        tensors = [] if h0 is None else [h0]
        for layer_in, hs, mask in saved:
            tensors += [layer_in, hs] + ([] if mask is None else [mask])
        ctx.save_for_backward(*tensors, *params)
        ctx.cfg = (h0 is not None, p > 0.0, batch_first, num_layers, bias)
        ctx.set_materialize_grads(False)  # an unused output's gradient arrives as None
        return out, h_n

    @staticmethod
    def backward(ctx, grad_out, grad_hn):  # type: ignore[override]
        has_h0, has_mask, batch_first, L, bias = ctx.cfg
        st = list(ctx.saved_tensors)
        h0 = st.pop(0) if has_h0 else None
        per = 4 if bias else 2
        params = st[len(st) - per * L:]
        layers, i = [], 0
        for layer in range(L):
            n = 3 if (has_mask and layer > 0) else 2
            layers.append(tuple(st[i:i + n]) + ((None,) if n == 2 else ()))
            i += n
        T, B, _ = layers[0][1].shape
        need = ctx.needs_input_grad
        grads: list = [None] * len(params)
        grad_h0 = torch.empty_like(h0) if has_h0 and need[1] else None
        grad_x = None
        g = None  # (T, B, H) dLoss/dh of the current layer from above; ours to overwrite
        if grad_out is not None:
            g = (grad_out.transpose(0, 1) if batch_first else grad_out).clone(
                memory_format=torch.contiguous_format)
        for layer in range(L - 1, -1, -1):
            layer_in, hs, mask = layers[layer]
            Wxh, Whh = params[per * layer], params[per * layer + 1]
            H = Whh.shape[0]
            if g is None:
                g = torch.zeros_like(hs)
            if grad_hn is not None:
                g[T - 1].add_(grad_hn[layer])
            _bptt_(g, hs, Whh)  # g is now dpre (T, B, H)
            dpre = g.view(T * B, H)
            if need[6 + per * layer]:
                grads[per * layer] = dpre.t() @ layer_in.view(T * B, -1)  # (H, I)
            if need[6 + per * layer + 1]:
                grads[per * layer + 1] = _whh_grad(g, hs, None if h0 is None else h0[layer])
            if bias:
                gb = dpre.sum(0)  # (H,)
                grads[per * layer + 2], grads[per * layer + 3] = gb, gb.clone()
            if grad_h0 is not None:
                torch.mm(g[0], Whh, out=grad_h0[layer])
            if layer > 0:
                g_below = (dpre @ Wxh).view(T, B, -1)  # (T, B, H_below)
                if mask is not None:
                    g_below.mul_(mask)
                g = g_below
            elif need[0]:
                grad_x = (dpre @ Wxh).view(T, B, -1)  # (T, B, I)
                if batch_first:
                    grad_x = grad_x.transpose(0, 1)
        return (grad_x, grad_h0, None, None, None, None, *grads)


def forward_fast(
    cells, x: torch.Tensor, h0: torch.Tensor | None, dropout: float, training: bool, batch_first: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, T, I) if batch_first else (T, B, I), h0 (L, B, H) or None -> (outputs like x with H features, h_n)."""
    bias = cells[0].bias
    params = []
    for cell in cells:
        params += [cell.Wxh.weight, cell.Whh.weight]
        if bias:
            params += [cell.Wxh.bias, cell.Whh.bias]
    p = dropout if training else 0.0
    if torch.is_grad_enabled() and (x.requires_grad or any(t.requires_grad for t in params)
                                    or (h0 is not None and h0.requires_grad)):
        return StackedRNN.apply(x, h0, p, batch_first, len(cells), bias, *params)
    out, h_n, _ = _stack_forward(x, h0, p, batch_first, len(cells), bias, params)
    return out, h_n
