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

_tanh_backward = torch.ops.aten.tanh_backward.grad_input._op  # g * (1 - h^2), written to grad_input


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


# On CPU, torch's tanh kernel is about 2.5x slower than its sigmoid (AVX2, torch 2.13), and the
# per-step tanh is a large part of a small model's step. tanh(a) = 2 * sigmoid(2a) - 1, so the
# forward loop can run on s_t = sigmoid(2 a_t) instead of h_t = 2 s_t - 1 with the affine parts
# folded into the matmuls: 2 a_t = 2 xp_t + 2 h_{t-1} @ Whh^T = (2 xp_t - 2c) + 4 s_{t-1} @ Whh^T,
# c = Whh.sum(1) (= 1 @ Whh^T). Per step it is still one addmm_ and one in-place activation; the
# whole buffer is mapped back to h = 2s - 1 once at the end. Max deviation from tanh: ~1e-7 (float32).
SIGMOID_FORM_DEVICES = {"cpu"}


def _layer_forward(layer_in: torch.Tensor, h0: torch.Tensor | None, Wxh: torch.Tensor, Whh: torch.Tensor,
                   b: torch.Tensor | None) -> torch.Tensor:
    """One layer: layer_in (T, B, I) contiguous -> hidden states (T, B, H), a new contiguous buffer.

    b is b_xh + b_hh (H,) or None. The input projection of all steps is one matmul written into the
    buffer; the recurrence then runs in place in it.
    """
    T, B, _ = layer_in.shape
    H = Whh.shape[0]
    hs = layer_in.new_empty(T, B, H)  # (T, B, H)
    flat_in, flat_hs = layer_in.view(T * B, -1), hs.view(T * B, H)  # (T*B, I), (T*B, H)
    WhhT = Whh.t()
    if hs.device.type not in SIGMOID_FORM_DEVICES:
        if b is None:
            torch.mm(flat_in, Wxh.t(), out=flat_hs)
        else:
            torch.addmm(b, flat_in, Wxh.t(), out=flat_hs)
        _recur_(hs, h0, WhhT)
        return hs
    c = Whh.sum(1)  # (H,)
    # factors folded into the operands: a non-unit alpha/beta makes addmm take a slower path
    bias2 = c * -2.0 if b is None else (c - b).mul_(-2.0)  # (H,): 2b - 2c
    torch.addmm(bias2, flat_in, Wxh.t() * 2.0, out=flat_hs)  # 2 xp_t - 2c, every step at once
    W4T = WhhT * 4.0  # (H, H)
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
    return hs.mul_(2.0).sub_(1.0)  # h = 2s - 1


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
    T = layer_in.shape[0]
    per = 4 if bias else 2
    saved = []
    for layer in range(num_layers):
        Wxh, Whh = params[per * layer], params[per * layer + 1]
        mask = None
        if layer > 0 and p > 0.0:
            mask = _dropout_mask(layer_in, p)  # (T, B, H)
            layer_in = layer_in * mask
        b = params[per * layer + 2] + params[per * layer + 3] if bias else None  # (H,) both biases folded
        hs = _layer_forward(layer_in, None if h0 is None else h0[layer], Wxh, Whh, b)  # (T, B, H)
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
                flat_in = layer_in.view(T * B, -1)  # (T*B, I)
                # (H, I); with I < H the transposed product runs faster (MKL, small N)
                grads[per * layer] = (flat_in.t() @ dpre).t() if flat_in.shape[1] < H else dpre.t() @ flat_in
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
