"""The gated recurrent unit, kind ``"gru"``, with torch.nn.GRU's equations and gate order (r, z, n):

    r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

``Wxh`` holds [W_ir; W_iz; W_in] (3H, I), ``Whh`` [W_hr; W_hz; W_hn] (3H, H), as torch's
``weight_ih_l{k}`` / ``weight_hh_l{k}``. b_hn sits inside the reset gate's product, so unlike the
other biases it cannot be folded into the input projection.

Fast path, per layer: the input projection (with b_ih and the r, z parts of b_hh) for the whole
sequence into a (T, B, 3H) gate buffer; per step one ``addmm`` for h_{t-1} @ Whh^T + [0, 0, b_hn]
into a saved (T, B, 3H) buffer, then the gates in place in the gate buffer and ``lerp`` for h_t.
The backward through time is per step a few elementwise kernels writing the gate gradients in
place and one matmul for the gradient of h_{t-1}; dWhh is one matmul over all steps afterwards.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnplay.model.cell import Cell, CellKind, Probe, gate_inputs, sigmoid_backward, tanh_backward, whh_grad


class GRUCell(Cell):
    """One GRU step, from scratch (torch.nn.GRUCell's maths, the seed's Wxh/Whh names)."""

    gates = 3

    def forward(self, x: torch.Tensor, h_prev: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, I), h_prev (B, H) or None (zeros) -> h (B, H)."""
        self._check(x, None if h_prev is None else (h_prev,))
        if h_prev is None:
            h_prev = x.new_zeros(x.shape[0], self.hidden_size)  # (B, H)
        xr, xz, xn = self.Wxh(x).chunk(3, dim=-1)  # (B, H) each
        hr, hz, hn = self.Whh(h_prev).chunk(3, dim=-1)  # (B, H) each
        r = torch.sigmoid(xr + hr)  # reset gate
        z = torch.sigmoid(xz + hz)  # update gate
        n = torch.tanh(xn + r * hn)  # candidate state
        return (1 - z) * n + z * h_prev  # (B, H)


# ---- fast path ------------------------------------------------------------------------------

def _hidden_bias(b_hh: torch.Tensor, H: int) -> torch.Tensor:
    """[0, 0, b_hn] (3H,): the part of b_hh added to the per-step hidden product."""
    out = torch.zeros_like(b_hh)
    out[2 * H:] = b_hh[2 * H:]
    return out


def forward_layer(fill, T: int, B: int, Whh: torch.Tensor, b_xh, b_hh, state0, empty):
    """One layer -> (hs (T, B, H), saved (gates, hidden products, hs), final state parts)."""
    H = Whh.shape[1]
    shift = bh = None
    if b_xh is not None:
        shift = b_xh.clone()  # (3H,): b_ih + [b_hr, b_hz, 0]
        shift[:2 * H] += b_hh[:2 * H]
        bh = _hidden_bias(b_hh, H)
    G = empty("G", T, B, 3 * H)  # (T, B, 3H): projected input, then the gates r, z, n in place
    fill(G.view(T * B, 3 * H), 1.0, shift)
    P = empty("P", T, B, 3 * H)  # (T, B, 3H): h_{t-1} @ Whh^T + [0, 0, b_hn]
    hs = empty("h", T, B, H)  # (T, B, H)
    WhhT = Whh.t()  # (H, 3H)
    rz_, r_, z_, n_ = G[..., :2 * H].unbind(0), G[..., :H].unbind(0), G[..., H:2 * H].unbind(0), G[..., 2 * H:].unbind(0)
    P_, prz_, pn_, h_ = P.unbind(0), P[..., :2 * H].unbind(0), P[..., 2 * H:].unbind(0), hs.unbind(0)
    prev = None if state0 is None else state0[0]
    addmm, mm, lerp, addcmul = torch.addmm, torch.mm, torch.lerp, torch.addcmul
    for t in range(T):
        if prev is None:  # h_{-1} = 0: the hidden product is just the bias
            P_[t].zero_() if bh is None else P_[t].copy_(bh.expand(B, -1))
            rz_[t].sigmoid_()
        else:
            mm(prev, WhhT, out=P_[t]) if bh is None else addmm(bh, prev, WhhT, out=P_[t])
            rz_[t].add_(prz_[t]).sigmoid_()  # (B, 2H): r, z
        n_[t].addcmul_(r_[t], pn_[t]).tanh_()  # (B, H): n = tanh(xn + r * hn)
        if prev is None:
            addcmul(n_[t], z_[t], n_[t], value=-1.0, out=h_[t])  # (1 - z) * n
        else:
            lerp(n_[t], prev, z_[t], out=h_[t])  # n + z * (h_{t-1} - n)
        prev = h_[t]
    return hs, (G, P, hs), (h_[T - 1],)


def backward_layer(g, owned: bool, last, saved, Whh: torch.Tensor, state0, need_state0: bool):
    """-> (dxp (T, B, 3H), dWhh (3H, H), db_hh (3H,) or None without bias, dstate0 parts or None).

    Per step, with dh the gradient of h_t: dn = dh (1 - z), da_n = dn (1 - n^2), dhn = da_n r,
    dr = da_n hn, dz = dh (h_{t-1} - n), the gates' pre-activation gradients through sigmoid, and
    dh_{t-1} = dh z + [dr, dz, dhn]_pre @ Whh.
    """
    G, P, hs = saved
    T, B, H = hs.shape
    h0 = None if state0 is None else state0[0]
    D = torch.empty_like(G)  # (T, B, 3H): gradient of the hidden product [dr, dz, dhn] (pre-activation)
    dan = hs.new_empty(T, B, H)  # (T, B, H): gradient of n's pre-activation = dxp's n part
    tmp = hs.new_empty(B, H)
    dh = hs.new_zeros(B, H)  # gradient of h_t, carried down
    if last is not None and last[0] is not None:
        dh.copy_(last[0])
    gs = None if g is None else g.unbind(0)
    r_, z_, n_, rz_ = G[..., :H].unbind(0), G[..., H:2 * H].unbind(0), G[..., 2 * H:].unbind(0), G[..., :2 * H].unbind(0)
    pn_, D_, Dr_, Dz_ = P[..., 2 * H:].unbind(0), D.unbind(0), D[..., :H].unbind(0), D[..., H:2 * H].unbind(0)
    Drz_, Dn_, dan_, h_ = D[..., :2 * H].unbind(0), D[..., 2 * H:].unbind(0), dan.unbind(0), hs.unbind(0)
    mul, addcmul, sub = torch.mul, torch.addcmul, torch.sub
    for t in range(T - 1, -1, -1):
        if gs is not None:
            dh.add_(gs[t])
        hprev = h_[t - 1] if t > 0 else h0
        addcmul(dh, dh, z_[t], value=-1.0, out=tmp)  # dn = dh (1 - z)
        tanh_backward(tmp, n_[t], grad_input=dan_[t])  # da_n
        mul(dan_[t], r_[t], out=Dn_[t])  # dhn
        mul(dan_[t], pn_[t], out=Dr_[t])  # dr
        if hprev is None:
            mul(dh, n_[t], out=Dz_[t]).neg_()  # dz = dh (0 - n)
        else:
            sub(hprev, n_[t], out=Dz_[t]).mul_(dh)  # dz = dh (h_{t-1} - n)
        sigmoid_backward(Drz_[t], rz_[t], grad_input=Drz_[t])  # through the sigmoids
        if t > 0 or need_state0:
            dh.mul_(z_[t]).addmm_(D_[t], Whh)  # dh_{t-1} = dh z + D_t @ Whh
    dWhh = whh_grad(D, hs, h0)  # (3H, H)
    db_hh = D.sum((0, 1))  # (3H,)
    D[..., 2 * H:].copy_(dan)  # D becomes dxp: [dr, dz, da_n]
    return D, dWhh, db_hh, ((dh,) if need_state0 else None)


# ---- sampler --------------------------------------------------------------------------------
#
# Every layer fills one (B, 4H) row per step laid out [xn | rz | hn]: the input's n part, the r and
# z pre-activations (both sides summed), the hidden n part (with b_hn). The input side writes the
# first 3H columns and the hidden side adds into the last 3H, so each weight is read once and no
# zero blocks are multiplied (15 (H, H) blocks per character for 3 layers). Layer 1's input side
# is a table row of E (with every bias), later layers' one matmul on h_{l-1}. At batch 1 the
# products are matrix-vector ones on the weights as torch stores them, (3H, I) row-major: addmv
# there is faster than addmm on a transposed view.

def _x_rows(cell, H: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The input side reordered [n; r; z]: weight (3H, I), bias (3H,) with b_hr, b_hz folded in."""
    W = cell.Wxh.weight
    Wx = torch.cat([W[2 * H:], W[:2 * H]]).contiguous()  # (3H, I)
    if not cell.bias:
        return Wx, W.new_zeros(3 * H)
    bx, bh = cell.Wxh.bias, cell.Whh.bias
    return Wx, torch.cat([bx[2 * H:], bx[:2 * H] + bh[:2 * H]])  # (3H,)


def _b_hn(cell, H: int, like: torch.Tensor) -> torch.Tensor:
    return cell.Whh.bias[2 * H:].clone() if cell.bias else like.new_zeros(H)  # (H,)


def sampler_weights(cells, emb: torch.Tensor) -> dict:
    H = cells[0].hidden_size
    Wx, bx = _x_rows(cells[0], H)
    b_hn = _b_hn(cells[0], H, emb).expand(emb.shape[0], H)
    w = {"table": torch.cat([emb @ Wx.t() + bx, b_hn], dim=1).contiguous(),  # (V, 4H)
         "Whh": [c.Whh.weight.contiguous() for c in cells],  # (3H, H) each: [r; z; n] = [rz | hn]
         "Wx": [], "bx": [], "b_hn": []}
    for c in cells[1:]:
        Wx, bx = _x_rows(c, H)
        w["Wx"].append(Wx)
        w["bx"].append(bx)
        w["b_hn"].append(_b_hn(c, H, emb))
    return w


def stepper(w: dict, flat, H: int, L: int):
    """A closure feeding one character per row into the state flat[0] (B, L*H), in place."""
    (S,) = flat
    B = S.shape[0]
    pre = S.new_empty(B, 4 * H)  # (B, 4H) [xn | rz | hn]
    n = S.new_empty(B, H)
    table = w["table"]
    index_select, addcmul, lerp = torch.index_select, torch.addcmul, torch.lerp
    if B == 1:  # vectors: y = W @ v on the (3H, I) weights
        row, n_, h = pre[0], n[0], [S[0, k * H:(k + 1) * H] for k in range(L)]

        def x_side(bias, W, v, out):
            torch.addmv(bias, W, v, out=out)

        def h_side(out, W, v):
            out.addmv_(W, v)
    else:  # rows: Y = V @ W^T
        row, n_, h = pre, n, [S[:, k * H:(k + 1) * H] for k in range(L)]

        def x_side(bias, W, v, out):
            torch.addmm(bias, v, W.t(), out=out)

        def h_side(out, W, v):
            out.addmm_(v, W.t())
    xn, rz, r, z, hn = row[..., :H], row[..., H:3 * H], row[..., H:2 * H], row[..., 2 * H:3 * H], row[..., 3 * H:]
    x3, h3 = row[..., :3 * H], row[..., H:]
    later = list(zip(w["bx"], w["Wx"], w["b_hn"], w["Whh"][1:], h[:-1], h[1:]))
    Whh0, h0 = w["Whh"][0], h[0]

    def gates(h_k: torch.Tensor) -> None:
        rz.sigmoid_()
        addcmul(xn, r, hn, out=n_).tanh_()
        lerp(n_, h_k, z, out=h_k)

    def step(idx: torch.Tensor) -> None:  # idx (B,) long
        index_select(table, 0, idx, out=pre)
        h_side(h3, Whh0, h0)
        gates(h0)
        for bx, Wx, b_hn, Whh, below, h_k in later:
            hn.copy_(b_hn)
            x_side(bx, Wx, below, x3)
            h_side(h3, Whh, h_k)
            gates(h_k)

    return step


# ---- probe (the app's strips) ----------------------------------------------------------------

@torch.no_grad()
def probe(cell: GRUCell, layer_in: torch.Tensor, hs: torch.Tensor, state0) -> Probe:
    """The reset and update gates r, z (T, b, H) each, from the layer's input (T, b, I) and its h."""
    H = cell.hidden_size
    xp, hp = gate_inputs(cell, layer_in, hs, None if state0 is None else state0[0])  # (T, b, 3H) each
    rz = torch.sigmoid(xp[..., :2 * H] + hp[..., :2 * H])  # (T, b, 2H)
    return Probe(gates=(rz[..., :H], rz[..., H:]))


KIND = CellKind(
    name="gru", gates=3, n_state=1, cell=GRUCell,
    forward_layer=forward_layer, backward_layer=backward_layer,
    sampler_weights=sampler_weights, stepper=stepper,
    torch_module=nn.GRU, probe=probe, gate_names=("r", "z"),
)
