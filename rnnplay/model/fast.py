"""The fast execution path of :class:`rnnplay.model.RNN`, for every cell kind.

Same maths as the seed's cell loop, reordered for speed:

* layer-major: all T steps of layer 1, then layer 2 (equivalent to the seed's time-major loop,
  because layer l at step t only needs layer l-1 at step t and layer l at step t-1);
* each layer's input projection ``x @ Wxh^T + biases`` for the whole sequence in one matmul,
  written straight into a time-major buffer the cell's recurrence then works in, in place
  (the kind's ``forward_layer``: see rnnplay/model/<kind>_cell.py);
* the whole stack (every layer, the dropout between layers, batch-first in and out) is one
  autograd Function, :class:`StackedRNN`, with a hand-written backward through time: the kind's
  ``backward_layer`` gives the gradient of the projected input for every step, then per layer
  dWxh, the bias gradients and the gradient of the layer below are single large matmuls /
  reductions over all steps, here, the same for every kind.

One autograd node for the whole RNN instead of a dozen per layer and step matters for small
models, where a training step is bound by per-op overhead; the large matmuls matter for big ones.
Under ``torch.no_grad()`` the same forward runs without autograd and saves nothing.

With token input (CharRNN), an embedding followed by layer 1's input projection is one linear map
of one-hot vectors: ``E[idx] @ Wxh^T = (E @ Wxh^T)[idx]``. When the vocabulary is smaller than
the number of tokens in the batch, layer 1 reads rows of the (V, G*H) table ``E @ Wxh^T`` instead
of multiplying (T*B, E) by (E, G*H), and the backward scatters the gradient into a (V, G*H) table
(``index_add_``) before two small matmuls give dE and dWxh.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from rnnplay.model import amp

from rnnplay.model.cell import CellKind

FOLD_EMBEDDING = True  # read layer 1's input from the (V, G*H) table when V < T*B (see the docstring)
_TAP = threading.local()  # .fn: called with each layer's hidden states by this thread's next stack forward
_WS = threading.local()  # .ws: the Workspace this thread's no-grad stack forwards take buffers from


class Workspace:
    """The buffers of no-grad stack forwards, kept from one call to the next (see :func:`reuse_buffers`).

    One buffer per (layer, name): a call with other shapes replaces it, so the workspace holds one
    forward's worth of buffers, whatever the number of calls.
    """

    def __init__(self) -> None:
        self._bufs: dict[tuple[int, str], torch.Tensor] = {}

    def empty_for(self, layer: int, like: torch.Tensor) -> Callable[..., torch.Tensor]:
        """``empty(name, *shape)`` for one layer: its buffer of that name, uninitialized."""
        def empty(name: str, *shape: int) -> torch.Tensor:
            buf = self._bufs.get((layer, name))
            if buf is None or buf.shape != shape or buf.dtype != like.dtype or buf.device != like.device:
                buf = self._bufs[(layer, name)] = like.new_empty(shape)
            return buf
        return empty


@contextmanager
def reuse_buffers(ws: Workspace) -> Iterator[Workspace]:
    """Within the block, this thread's stack forwards without autograd write their large buffers
    (each layer's gates and hidden states, and CharRNN's logits through :func:`linear`) into
    ``ws`` instead of allocating them on every call.

    For a caller that runs many same-shaped forwards, as the scorer does: fresh large buffers
    each call cost page faults (the allocator maps and unmaps them), and reused ones cost nothing.
    The outputs of a call then live in ``ws``: they are valid until the next forward in ``ws``
    (the returned state is always a fresh copy). Forwards that record autograd are unaffected.
    """
    before = getattr(_WS, "ws", None)
    _WS.ws = ws
    try:
        yield ws
    finally:
        _WS.ws = before


def linear(fc: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``fc(x)`` for x (T, B, H) -> (T, B, out); inside :func:`reuse_buffers` without autograd or
    autocast, written into the workspace's buffer (valid until the next call, like the layers')."""
    ws = getattr(_WS, "ws", None)
    if ws is None or torch.is_grad_enabled() or fc.bias is None or torch.is_autocast_enabled(x.device.type):
        return fc(x)
    T, B, H = x.shape
    buf = ws.empty_for(-1, fc.weight)("head", T * B, fc.out_features)  # (T*B, out)
    return torch.addmm(fc.bias, x.reshape(T * B, H), fc.weight.t(), out=buf).view(T, B, -1)


def _new_empty(like: torch.Tensor) -> Callable[..., torch.Tensor]:
    """``empty(name, *shape)`` that allocates (no workspace)."""
    return lambda name, *shape: like.new_empty(shape)


@contextmanager
def tap_hidden(fn: Callable[[list[torch.Tensor]], None]) -> Iterator[None]:
    """Within the block, each stack forward on this thread calls ``fn`` with its layers' hidden
    states h, a list of (T, B, H) time-major tensors, read-only (the backward still needs them).

    The trainer takes its live hidden-state statistics from the training forward this way instead
    of a second pass. Only the fast path calls ``fn``; the seed's cell loop does not.
    """
    before = getattr(_TAP, "fn", None)
    _TAP.fn = fn
    try:
        yield
    finally:
        _TAP.fn = before


# ---- the input projection of a layer --------------------------------------------------------

def _dense_fill(layer_in: torch.Tensor, Wxh: torch.Tensor):
    """fill(out (T*B, G*H), scale, shift): out = scale * layer_in @ Wxh^T + shift (shift may be None)."""
    flat_in = layer_in.view(-1, layer_in.shape[-1])  # (T*B, I)

    def fill(out: torch.Tensor, scale: float, shift: torch.Tensor | None) -> None:
        W = Wxh.t() if scale == 1.0 else Wxh.t() * scale  # (I, G*H); the factor in the operand
        torch.mm(flat_in, W, out=out) if shift is None else torch.addmm(shift, flat_in, W, out=out)
    return fill


def _table_fill(idx: torch.Tensor, emb: torch.Tensor, Wxh: torch.Tensor):
    """The same for token indices (T*B,): rows of the (V, G*H) table scale * E @ Wxh^T + shift."""
    def fill(out: torch.Tensor, scale: float, shift: torch.Tensor | None) -> None:
        table = emb @ (Wxh.t() if scale == 1.0 else Wxh.t() * scale)  # (V, G*H)
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


# ---- the stack ------------------------------------------------------------------------------

@dataclass(frozen=True)
class StackSpec:
    """What :class:`StackedRNN` needs besides tensors: ``apply(spec, x, emb, *state0, *params)``.

    ``n_state0`` is 0 (no initial state: zeros) or ``kind.n_state``; params per layer are
    ``Wxh (G*H, I), Whh (G*H, H)`` and, with bias, ``b_xh, b_hh (G*H,)``.
    """

    kind: CellKind
    num_layers: int
    bias: bool
    p: float = 0.0  # dropout between layers (0 in eval mode)
    batch_first: bool = False
    has_emb: bool = False
    n_state0: int = 0

    @property
    def per(self) -> int:
        return 4 if self.bias else 2

    def layer_params(self, params, layer: int):
        """(Wxh, Whh, b_xh, b_hh) of one layer; biases None without bias."""
        w = params[self.per * layer:self.per * (layer + 1)]
        return (w[0], w[1], w[2], w[3]) if self.bias else (w[0], w[1], None, None)

    def param_arg(self, layer: int, j: int) -> int:
        """Position in apply's arguments of layer's j-th parameter (for ctx.needs_input_grad)."""
        return 3 + self.n_state0 + self.per * layer + j


def _stack_forward(spec: StackSpec, x, emb, state0, params, ws: Workspace | None = None):
    """The forward of StackedRNN, no autograd. x (B, T, I) or (T, B, I), or token indices (B, T) /
    (T, B) when emb (V, E) is given; state0: a tuple of (L, B, H) or None; ws: where the layers'
    buffers come from (None: new ones).

    Returns (out, state_n parts, saved): out like x with H features, state_n a tuple of (L, B, H),
    and per layer what the backward needs: (layer input (T, B, I_l) or flat indices, mask, kind's saved).
    """
    kind = spec.kind
    xt = x.transpose(0, 1) if spec.batch_first else x
    T, B = xt.shape[0], xt.shape[1]
    layer_in = xt.reshape(-1) if emb is not None else xt.contiguous()  # (T*B,) or (T, B, I)
    saved, finals, hidden = [], [], []
    for layer in range(spec.num_layers):
        Wxh, Whh, b_xh, b_hh = spec.layer_params(params, layer)
        mask = None
        if layer > 0 and spec.p > 0.0:
            mask = _dropout_mask(layer_in, spec.p)  # (T, B, H)
            layer_in = layer_in * mask
        fill = _table_fill(layer_in, emb, Wxh) if (layer == 0 and emb is not None) else _dense_fill(layer_in, Wxh)
        s0 = None if state0 is None else tuple(s[layer] for s in state0)
        empty = _new_empty(Whh) if ws is None else ws.empty_for(layer, Whh)
        hs, kept, final = kind.forward_layer(fill, T, B, Whh, b_xh, b_hh, s0, empty)  # hs (T, B, H)
        saved.append((layer_in, mask, kept))
        finals.append(final)
        hidden.append(hs)
        layer_in = hs
    tap = getattr(_TAP, "fn", None)
    if tap is not None:
        tap(hidden)  # L x (T, B, H)
    state_n = tuple(torch.stack([f[j] for f in finals]) for j in range(kind.n_state))  # (L, B, H) each
    out = layer_in.transpose(0, 1).contiguous() if spec.batch_first else layer_in
    return out, state_n, saved


class StackedRNN(torch.autograd.Function):
    """A whole multi-layer RNN of one cell kind as one autograd node (see the module docstring).

    ``apply(spec, x, emb, *state0, *params)`` -> ``(out, *state_n)``; see :class:`StackSpec`.
    emb (V, E) or None: with it, x holds token indices and layer 1 reads ``emb[x]``.
    """

    @staticmethod
    def forward(ctx, spec: StackSpec, x, emb, *rest):  # type: ignore[override]
        state0, params = rest[:spec.n_state0] or None, rest[spec.n_state0:]
        out, state_n, saved = _stack_forward(spec, x, emb, state0, params)
        tensors = list(rest[:spec.n_state0]) + ([] if emb is None else [emb])
        ctx.layout = []
        for layer_in, mask, kept in saved:
            tensors += [layer_in] + ([] if mask is None else [mask]) + list(kept)
            ctx.layout.append((mask is not None, len(kept)))
        ctx.save_for_backward(*tensors, *params)
        ctx.spec = spec
        ctx.set_materialize_grads(False)  # an unused output's gradient arrives as None
        return (out, *state_n)

    @staticmethod
    def backward(ctx, grad_out, *grad_state):  # type: ignore[override]
        spec: StackSpec = ctx.spec
        kind, L, n0 = spec.kind, spec.num_layers, spec.n_state0
        st = list(ctx.saved_tensors)
        state0 = tuple(st[:n0]) if n0 else None
        del st[:n0]
        emb = st.pop(0) if spec.has_emb else None
        params, layers = st[len(st) - spec.per * L:], []
        for has_mask, n_kept in ctx.layout:
            layer_in = st.pop(0)
            mask = st.pop(0) if has_mask else None
            layers.append((layer_in, mask, tuple(st[:n_kept])))
            del st[:n_kept]
        T, B = layers[0][2][-1].shape[:2]  # every kind keeps hs (T, B, H) last
        need = ctx.needs_input_grad  # (spec, x, emb, *state0, *params)
        grads: list = [None] * len(params)
        need_s0 = n0 > 0 and any(need[3:3 + n0])
        grad_s0 = [torch.empty_like(s) for s in state0] if need_s0 else None
        grad_x = grad_emb = None
        g, owned = None, False  # (T, B, H) dLoss/dh of the current layer from outside its recurrence
        if grad_out is not None:
            g = grad_out.transpose(0, 1) if spec.batch_first else grad_out
        for layer in range(L - 1, -1, -1):
            layer_in, mask, kept = layers[layer]
            Wxh, Whh, _, _ = spec.layer_params(params, layer)
            last = None
            if any(gs is not None for gs in grad_state):
                last = tuple(None if gs is None else gs[layer] for gs in grad_state)
            s0 = None if state0 is None else tuple(s[layer] for s in state0)
            dxp3, dWhh, db_hh, ds0 = kind.backward_layer(g, owned, last, kept, Whh, s0, need_s0)
            GH = dxp3.shape[-1]
            dxp = dxp3.view(T * B, GH)
            tokens = layer == 0 and emb is not None
            if tokens:  # layer 1 read rows of E @ Wxh^T: gather the gradient per token first
                dtable = dxp.new_zeros(emb.shape[0], GH).index_add_(0, layer_in, dxp)  # (V, G*H)
                if need[2]:
                    grad_emb = dtable @ Wxh  # (V, E)
            left = dtable if tokens else dxp
            if need[spec.param_arg(layer, 0)]:
                src = emb if tokens else layer_in.view(T * B, -1)  # (V, E) or (T*B, I)
                # (G*H, I); with I < G*H the transposed product runs faster (MKL, small N)
                grads[spec.per * layer] = (src.t() @ left).t() if src.shape[1] < GH else left.t() @ src
            if need[spec.param_arg(layer, 1)]:
                grads[spec.per * layer + 1] = dWhh
            if spec.bias:
                gb = left.sum(0)  # (G*H,)
                grads[spec.per * layer + 2] = gb
                grads[spec.per * layer + 3] = gb.clone() if db_hh is None else db_hh
            if grad_s0 is not None:
                for j, d in enumerate(ds0):
                    grad_s0[j][layer].copy_(d)
            if layer > 0:
                g, owned = (dxp @ Wxh).view(T, B, -1), True  # (T, B, H_below)
                if mask is not None:
                    g.mul_(mask)
            elif need[1] and not tokens:
                grad_x = (dxp @ Wxh).view(T, B, -1)  # (T, B, I)
                if spec.batch_first:
                    grad_x = grad_x.transpose(0, 1)
        gs0 = tuple(grad_s0) if grad_s0 is not None else (None,) * n0
        return (None, grad_x, grad_emb, *gs0, *grads)


def cell_params(cells) -> list[torch.Tensor]:
    """The stack's parameters in StackedRNN's order: per layer Wxh, Whh (and b_xh, b_hh)."""
    params = []
    for cell in cells:
        params += [cell.Wxh.weight, cell.Whh.weight]
        if cell.bias:
            params += [cell.Wxh.bias, cell.Whh.bias]
    return params


def forward_fast(
    kind: CellKind, cells, x: torch.Tensor, state0: tuple[torch.Tensor, ...] | None, dropout: float,
    training: bool, batch_first: bool = False, embedding: torch.Tensor | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """x (B, T, I) if batch_first else (T, B, I), state0 parts (L, B, H) or None ->
    (outputs like x with H features, state_n parts (L, B, H)).

    With ``embedding`` (V, E), x holds token indices, (B, T) or (T, B), and layer 1 reads ``embedding[x]``.
    """
    if embedding is not None and not (FOLD_EMBEDDING and embedding.shape[0] < x.numel()):
        x, embedding = torch.nn.functional.embedding(x, embedding), None  # (B, T, E) or (T, B, E)
    params = cell_params(cells)
    spec = StackSpec(kind, len(cells), cells[0].bias, dropout if training else 0.0, batch_first,
                     embedding is not None, 0 if state0 is None else len(state0))
    inputs = (x, embedding, *(state0 or ()), *params)
    device_type = params[0].device.type
    low = amp.active_dtype(device_type)  # inside torch.autocast: the whole stack runs in its dtype
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs):
        fn = StackedRNN if low is None else amp.variant(StackedRNN, device_type, low)  # custom_fwd/custom_bwd
        out, *state_n = fn.apply(spec, x, embedding, *(state0 or ()), *params)
        return out, tuple(state_n)
    if low is not None:
        with torch.autocast(device_type, enabled=False):
            state0 = None if state0 is None else tuple(amp.cast(t, low) for t in state0)
            out, state_n, _ = _stack_forward(spec, amp.cast(x, low), amp.cast(embedding, low), state0,
                                             [amp.cast(t, low) for t in params])
        return out, state_n
    out, state_n, _ = _stack_forward(spec, x, embedding, state0, params, getattr(_WS, "ws", None))
    return out, state_n
