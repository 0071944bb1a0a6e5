"""What every cell kind shares: the :class:`Cell` base module, the :class:`CellKind` record and the
recurrent state type.

A cell kind (tanh, gru, lstm) is one module, ``rnnplay/model/<kind>_cell.py``, that defines

* its cell, a :class:`Cell` subclass: one step of the seed's readable per-step loop;
* ``forward_layer`` / ``backward_layer``: one layer of the fast path over a whole sequence and its
  hand-written backward through time (see :mod:`rnnplay.model.fast` for the stack around them);
  ``forward_layer`` takes its (T, B, .) buffers from ``empty(name, *shape)``, which allocates or,
  in a :class:`rnnplay.model.fast.Workspace`, reuses that layer's buffer of that name;
* ``sampler_weights`` / ``stepper``: the snapshot and the one-character step of the Sampler;
* its state: ``n_state`` tensors of shape (L, B, H) each (1: ``h``; the LSTM's 2: ``(h, c)``);
* the torch module its parameters map to (``weight_ih_l{k}`` = ``cells[k].Wxh.weight`` and so on:
  the gate order is torch's, so the mapping is a plain copy),
* optionally ``probe``: what the app's hidden-state strips show besides h (its sigmoid gates'
  activations, its other state parts such as the LSTM's c), recomputed without gradients from a
  layer's input and its h (see :class:`Probe`); a kind without one shows h alone,

collected in one ``KIND = CellKind(...)`` and listed in :mod:`rnnplay.model.kinds`. Nothing else
knows which kinds exist.

Parameters of every kind are named as the seed's: ``Wxh`` (input projection, ``gates*H x I``)
and ``Whh`` (hidden projection, ``gates*H x H``), each an ``nn.Linear`` with its own bias.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Union

import torch
from torch import nn

from rnnplay.model._checks import check_shape

# A recurrent state: one (L, B, H) tensor (tanh, gru) or a tuple of them (lstm: (h, c)), as in torch.
State = Union[torch.Tensor, tuple[torch.Tensor, ...]]

# out= kernels for backward passes written in place: grad * (1 - y^2) and grad * y * (1 - y)
tanh_backward = torch.ops.aten.tanh_backward.grad_input._op
sigmoid_backward = torch.ops.aten.sigmoid_backward.grad_input._op


@dataclass(frozen=True, eq=False)
class CellKind:
    """Everything the models, the fast path and the sampler need to know about one kind of cell."""

    name: str
    gates: int  # blocks of H rows in Wxh / Whh (torch's order)
    n_state: int  # tensors in the state: 1 (h) or 2 (h, c)
    cell: type  # the Cell subclass
    forward_layer: Callable[..., Any]
    backward_layer: Callable[..., Any]
    sampler_weights: Callable[..., Any]
    stepper: Callable[..., Any]
    torch_module: type  # nn.RNN / nn.GRU / nn.LSTM
    torch_kwargs: dict = field(default_factory=dict)
    state_names: tuple[str, ...] = ("h",)
    # probe(cell, layer_in (T, b, I), hs (T, b, H), state0 parts (b, H) each or None) -> Probe
    probe: Callable[..., Any] | None = None
    gate_names: tuple[str, ...] = ()  # the sigmoid gates a probe reports, in its order

    def __repr__(self) -> str:
        return f"CellKind({self.name!r})"


@dataclass(frozen=True, eq=False)
class Probe:
    """One layer's insides over a sequence, as a kind's ``probe`` recomputes them (no gradients)."""

    gates: tuple[torch.Tensor, ...] = ()  # (T, b, H) each: the sigmoid gates' activations, kind.gate_names order
    states: tuple[torch.Tensor, ...] = ()  # (T, b, H) each: the state parts after h (kind.state_names[1:])


def gate_inputs(cell: "Cell", layer_in: torch.Tensor, hs: torch.Tensor,
                h0: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A layer's two projections at every step, for a probe: ``Wxh(x_t)`` and ``Whh(h_{t-1})``, each
    (T, b, G*H) with its bias, from layer_in (T, b, I), the layer's outputs hs (T, b, H) and h0 (b, H)
    (None: zeros). Inputs are cast to the weights' dtype (a low-precision run's tapped states)."""
    dtype = cell.Whh.weight.dtype
    hs = hs.to(dtype)
    first = hs.new_zeros(1, *hs.shape[1:]) if h0 is None else h0.to(dtype).unsqueeze(0)  # (1, b, H)
    prev = torch.cat([first, hs[:-1]])  # (T, b, H): h_{t-1}
    return cell.Wxh(layer_in.to(dtype)), cell.Whh(prev)


# ---- the state type -------------------------------------------------------------------------

def state_parts(state: State | None) -> tuple[torch.Tensor, ...] | None:
    """A state as a tuple of tensors (None stays None)."""
    if state is None:
        return None
    return tuple(state) if isinstance(state, (tuple, list)) else (state,)


def state_from_parts(parts, n_state: int) -> State:
    """The inverse of :func:`state_parts`: one tensor for a one-part state, else a tuple."""
    return parts[0] if n_state == 1 else tuple(parts)


def map_state(fn: Callable[[torch.Tensor], torch.Tensor], state: State | None) -> State | None:
    """``fn`` applied to every tensor of a state, keeping its type (tensor or tuple)."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return tuple(fn(t) for t in state)
    return fn(state)


def detach_state(state: State | None) -> State | None:
    """The state cut from the graph (what a trainer carries into the next batch)."""
    return map_state(torch.Tensor.detach, state)


def select_batch(state: State | None, index) -> State | None:
    """Rows of a state along its batch dimension (dim 1 of each (L, B, H) part)."""
    return map_state(lambda t: t[:, index], state)


def hidden_of(state: State) -> torch.Tensor:
    """The hidden outputs h (L, B, H) of a state (the first part; the LSTM's c is the second)."""
    return state[0] if isinstance(state, (tuple, list)) else state


# ---- the cell module ------------------------------------------------------------------------

class Cell(nn.Module):
    """One step of a recurrent cell with ``gates`` blocks: ``Wxh`` (I -> gates*H), ``Whh`` (H -> gates*H).

    Weights are Xavier-uniform per gate block (each block is one H x I or H x H matrix, as the
    seed's tanh cell), biases zero; a kind may change that in :meth:`reset_parameters`.
    """

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(
                f"input_size and hidden_size must be positive, got {input_size} and {hidden_size}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.Wxh = nn.Linear(input_size, self.gates * hidden_size, bias=bias)
        self.Whh = nn.Linear(hidden_size, self.gates * hidden_size, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weights per gate block and zero biases (the seed's ``_init_weights``)."""
        H = self.hidden_size
        with torch.no_grad():
            for lin in (self.Wxh, self.Whh):
                for k in range(self.gates):
                    nn.init.xavier_uniform_(lin.weight[k * H:(k + 1) * H])
                if self.bias:
                    nn.init.zeros_(lin.bias)

    def _check(self, x: torch.Tensor, parts: tuple[torch.Tensor, ...] | None) -> None:
        check_shape("x", x, (None, self.input_size))
        for name, t in zip(("h_prev", "c_prev"), parts or ()):
            check_shape(name, t, (x.shape[0], self.hidden_size))

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias else s + ", bias=False"


def whh_grad(dpre: torch.Tensor, hs: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
    """dWhh = sum_t dpre_t^T @ h_{t-1}: dpre (T, B, G*H), hs (T, B, H) -> (G*H, H), one matmul over
    steps 1..T-1 plus step 0 when h0 is given (h_{-1} = 0 otherwise)."""
    T, B, H = hs.shape
    GH = dpre.shape[-1]
    if T > 1:
        g = dpre[1:].reshape(-1, GH).t() @ hs[:-1].reshape(-1, H)  # (G*H, H)
        if h0 is not None:
            g.addmm_(dpre[0].t(), h0)
        return g
    return dpre[0].t() @ h0 if h0 is not None else dpre.new_zeros(GH, H)
