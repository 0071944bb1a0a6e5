"""Long short-term memory, kind ``"lstm"``, with torch.nn.LSTM's equations and gate order (i, f, g, o):

    [i, f, g, o] = Wxh x_t + b_ih + Whh h_{t-1} + b_hh        (4H pre-activations)
    i, f, o = sigmoid(.), g = tanh(.)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

The state is the pair (h, c), each (L, B, H) for a stack, as torch's ``(h_n, c_n)``.

Fast path, per layer: the input projection with both biases for the whole sequence into a
(T, B, 4H) gate buffer; per step one ``addmm_`` into that step's row, the activations in place,
and three elementwise kernels for c_t, tanh(c_t) and h_t into saved buffers. The backward through
time writes the four gates' gradients in place and does one matmul per step for dh_{t-1}.

Initialisation: Xavier-uniform per gate block as the other cells, zero biases except the forget
gate's hidden bias b_hf = 1, so that a fresh cell remembers by default (Jozefowicz et al. 2015;
char-rnn does the same).
"""

from __future__ import annotations

import torch
from torch import nn

from rnnplay.model.cell import Cell, CellKind, Probe, gate_inputs, sigmoid_backward, tanh_backward, whh_grad


class LSTMCell(Cell):
    """One LSTM step, from scratch (torch.nn.LSTMCell's maths, the seed's Wxh/Whh names)."""

    gates = 4

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.bias:
            with torch.no_grad():
                self.Whh.bias[self.hidden_size:2 * self.hidden_size].fill_(1.0)  # forget gate

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, I), state (h, c) each (B, H), or None (zeros) -> (h, c)."""
        self._check(x, state)
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)  # (B, H)
            state = (zeros, zeros)
        h_prev, c_prev = state
        i, f, g, o = (self.Wxh(x) + self.Whh(h_prev)).chunk(4, dim=-1)  # (B, H) each
        c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)  # (B, H)
        h = torch.sigmoid(o) * torch.tanh(c)  # (B, H)
        return h, c


# ---- fast path ------------------------------------------------------------------------------

def forward_layer(fill, T: int, B: int, Whh: torch.Tensor, b_xh, b_hh, state0, empty):
    """One layer -> (hs (T, B, H), saved (gates, c, tanh c, hs), final (h, c))."""
    H = Whh.shape[1]
    G = empty("G", T, B, 4 * H)  # (T, B, 4H): pre-activations, then the gates in place
    fill(G.view(T * B, 4 * H), 1.0, None if b_xh is None else b_xh + b_hh)
    cs, tcs, hs = (empty(n, T, B, H) for n in ("c", "tc", "h"))  # (T, B, H) each
    WhhT = Whh.t()  # (H, 4H)
    G_, ifg_, gg_ = G.unbind(0), G[..., :2 * H].unbind(0), G[..., 2 * H:3 * H].unbind(0)
    i_, f_, o_ = G[..., :H].unbind(0), G[..., H:2 * H].unbind(0), G[..., 3 * H:].unbind(0)
    c_, tc_, h_ = cs.unbind(0), tcs.unbind(0), hs.unbind(0)
    h_prev, c_prev = (None, None) if state0 is None else state0
    mul, tanh = torch.mul, torch.tanh
    for t in range(T):
        if h_prev is not None:
            G_[t].addmm_(h_prev, WhhT)
        ifg_[t].sigmoid_()  # i, f
        gg_[t].tanh_()  # g
        o_[t].sigmoid_()  # o
        if c_prev is None:
            mul(i_[t], gg_[t], out=c_[t])
        else:
            mul(f_[t], c_prev, out=c_[t]).addcmul_(i_[t], gg_[t])  # c = f c_prev + i g
        tanh(c_[t], out=tc_[t])
        mul(o_[t], tc_[t], out=h_[t])  # h = o tanh(c)
        h_prev, c_prev = h_[t], c_[t]
    return hs, (G, cs, tcs, hs), (h_[T - 1], c_[T - 1])


def backward_layer(g, owned: bool, last, saved, Whh: torch.Tensor, state0, need_state0: bool):
    """-> (dxp (T, B, 4H), dWhh (4H, H), db_hh None (= db_xh), dstate0 (dh0, dc0) or None).

    Per step, with dh and dc the gradients of h_t and c_t: do = dh tanh(c), dc += dh o (1 - tanh(c)^2),
    di = dc g, df = dc c_{t-1}, dg = dc i, then through the activations; dc_{t-1} = dc f and
    dh_{t-1} = dgates @ Whh.
    """
    G, cs, tcs, hs = saved
    T, B, H = hs.shape
    h0, c0 = (None, None) if state0 is None else state0
    D = torch.empty_like(G)  # (T, B, 4H): gradients of the pre-activations = dxp
    dh, dc = hs.new_zeros(B, H), hs.new_zeros(B, H)
    tmp = hs.new_empty(B, H)
    if last is not None:
        if last[0] is not None:
            dh.copy_(last[0])
        if last[1] is not None:
            dc.copy_(last[1])
    gs = None if g is None else g.unbind(0)
    i_, f_, gg_, o_ = (G[..., k * H:(k + 1) * H].unbind(0) for k in range(4))
    ifg_ = G[..., :2 * H].unbind(0)
    Di_, Df_, Dg_, Do_ = (D[..., k * H:(k + 1) * H].unbind(0) for k in range(4))
    Difg_, D_, c_, tc_ = D[..., :2 * H].unbind(0), D.unbind(0), cs.unbind(0), tcs.unbind(0)
    mul = torch.mul
    for t in range(T - 1, -1, -1):
        if gs is not None:
            dh.add_(gs[t])
        cprev = c_[t - 1] if t > 0 else c0
        mul(dh, tc_[t], out=Do_[t])  # do
        mul(dh, o_[t], out=tmp)
        tanh_backward(tmp, tc_[t], grad_input=tmp)
        dc.add_(tmp)  # dc_t in full
        mul(dc, gg_[t], out=Di_[t])  # di
        mul(dc, cprev, out=Df_[t]) if cprev is not None else Df_[t].zero_()  # df
        mul(dc, i_[t], out=Dg_[t])  # dg
        dc.mul_(f_[t])  # dc_{t-1}
        sigmoid_backward(Difg_[t], ifg_[t], grad_input=Difg_[t])
        tanh_backward(Dg_[t], gg_[t], grad_input=Dg_[t])
        sigmoid_backward(Do_[t], o_[t], grad_input=Do_[t])
        if t > 0 or need_state0:
            torch.mm(D_[t], Whh, out=dh)  # dh_{t-1}
    dWhh = whh_grad(D, hs, h0)  # (4H, H)
    return D, dWhh, None, ((dh, dc) if need_state0 else None)


# ---- sampler --------------------------------------------------------------------------------

def sampler_weights(cells, emb: torch.Tensor) -> dict:
    """Layer 1: the (V, 4H) table E @ Wxh^T + both biases; later layers [Wxh^T ; Whh^T] (2H, 4H)."""
    def bias(c):
        return (c.Wxh.bias + c.Whh.bias) if c.bias else emb.new_zeros(c.Wxh.weight.shape[0])

    c0 = cells[0]
    return {
        "table": (emb @ c0.Wxh.weight.t() + bias(c0)).contiguous(),  # (V, 4H)
        "Wh0": c0.Whh.weight.t().contiguous(),  # (H, 4H)
        "Wcat": [torch.cat([c.Wxh.weight.t(), c.Whh.weight.t()], dim=0).contiguous() for c in cells[1:]],
        "bias": [bias(c) for c in cells[1:]],
    }


def stepper(w: dict, flat, H: int, L: int):
    """A closure feeding one character per row into the state (flat[0] h, flat[1] c), each (B, L*H)."""
    S, C = flat
    B = S.shape[0]
    pre = S.new_empty(B, 4 * H)  # (B, 4H)
    ifg, i, f, gg, o = pre[:, :2 * H], pre[:, :H], pre[:, H:2 * H], pre[:, 2 * H:3 * H], pre[:, 3 * H:]
    tmp = S.new_empty(B, H)
    h = [S[:, k * H:(k + 1) * H] for k in range(L)]  # L x (B, H) views
    c = [C[:, k * H:(k + 1) * H] for k in range(L)]
    layers = [(None, None, w["Wh0"], h[0], c[0])] + [
        (w["bias"][k - 1], S[:, (k - 1) * H:(k + 1) * H], w["Wcat"][k - 1], h[k], c[k]) for k in range(1, L)]
    table = w["table"]
    index_select, addmm, mul, tanh = torch.index_select, torch.addmm, torch.mul, torch.tanh

    def step(idx: torch.Tensor) -> None:  # idx (B,) long
        for k, (bias, src, W, h_k, c_k) in enumerate(layers):
            if k == 0:
                index_select(table, 0, idx, out=pre)
                pre.addmm_(h_k, W)
            else:
                addmm(bias, src, W, out=pre)  # [h_{k-1} | h_k] @ (2H, 4H)
            ifg.sigmoid_()
            gg.tanh_()
            o.sigmoid_()
            c_k.mul_(f).addcmul_(i, gg)  # c = f c + i g
            tanh(c_k, out=tmp)
            mul(o, tmp, out=h_k)

    return step


# ---- probe (the app's strips) ----------------------------------------------------------------

@torch.no_grad()
def probe(cell: LSTMCell, layer_in: torch.Tensor, hs: torch.Tensor, state0) -> Probe:
    """The gates i, f, o and the cell state c, (T, b, H) each, from the layer's input (T, b, I), its
    h and the (h, c) carried into the sequence: c_t = f_t c_{t-1} + i_t g_t."""
    h0, c0 = (None, None) if state0 is None else state0
    xp, hp = gate_inputs(cell, layer_in, hs, h0)  # (T, b, 4H) each
    pre = xp.add_(hp)  # (T, b, 4H)
    i, f, g, o = pre.chunk(4, dim=-1)  # (T, b, H) each
    i, f, o, g = i.sigmoid(), f.sigmoid(), o.sigmoid(), g.tanh()
    cs = torch.empty_like(i)  # (T, b, H)
    prev = None if c0 is None else c0.to(cs.dtype)  # (b, H)
    for t in range(cs.shape[0]):
        torch.mul(i[t], g[t], out=cs[t]) if prev is None else torch.addcmul(i[t] * g[t], f[t], prev, out=cs[t])
        prev = cs[t]
    return Probe(gates=(i, f, o), states=(cs,))


KIND = CellKind(
    name="lstm", gates=4, n_state=2, cell=LSTMCell,
    forward_layer=forward_layer, backward_layer=backward_layer,
    sampler_weights=sampler_weights, stepper=stepper,
    torch_module=nn.LSTM, state_names=("h", "c"), probe=probe, gate_names=("i", "f", "o"),
)
