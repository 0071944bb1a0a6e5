"""Multi-layer and bidirectional RNNs built from :class:`RNNCell` (the seed's ``RNN``)."""

from __future__ import annotations

import warnings
from typing import Literal

import torch
from torch import nn

from rnnplay.model._checks import check_shape
from rnnplay.model.cell import RNNCell
from rnnplay.model.fast import forward_fast

Impl = Literal["fast", "reference"]


class RNN(nn.Module):
    """A stack of tanh RNN cells.

    Args:
        input_size: features per step of the input.
        hidden_size: units per layer.
        num_layers: stacked cells, kept in the ModuleList ``cells``.
        dropout: applied to each layer's outputs before the next layer; never across time and
            never after the last layer (torch.nn.RNN's semantics).
        batch_first: input and outputs are (B, T, *) when True, (T, B, *) when False. ``h0`` and
            ``h_n`` are (num_layers, B, H) either way, as in torch.
        bias: both Linear layers of every cell carry a bias.
        impl: ``"fast"`` (default) runs layer-major with one input matmul per layer and a
            hand-written backward through time; ``"reference"`` runs the seed's readable
            cell-per-step loop. Same weights, same results to float tolerance.

    ``forward(x, h0=None)`` returns ``(outputs, h_n)``: outputs are the last layer's hidden state at
    every step, h_n every layer's state after the last step.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        batch_first: bool = True,
        bias: bool = True,
        impl: Impl = "fast",
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if impl not in ("fast", "reference"):
            raise ValueError(f"impl must be 'fast' or 'reference', got {impl!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout acts only between layers, so it has no effect with num_layers=1",
                stacklevel=2,
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.batch_first = batch_first
        self.bias = bias
        self.impl: Impl = impl
        self.cells = nn.ModuleList(
            RNNCell(input_size if i == 0 else hidden_size, hidden_size, bias=bias)
            for i in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    @property
    def dropout_p(self) -> float:
        return self.dropout.p if self.dropout is not None else 0.0

    def _check_input(self, x: torch.Tensor, h0: torch.Tensor | None) -> None:
        layout = "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"
        check_shape("x", x, (None, None, self.input_size), f"{layout}")
        if h0 is not None:
            B = x.shape[0] if self.batch_first else x.shape[1]
            check_shape("h0", h0, (self.num_layers, B, self.hidden_size), "(num_layers, B, hidden_size)")

    def forward(
        self, x: torch.Tensor, h0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, I) or (T, B, I), h0 (L, B, H) or None -> (outputs like x with H features, h_n (L, B, H))."""
        self._check_input(x, h0)
        if self.impl == "reference":
            return self.forward_reference(x, h0)
        # the fast path takes either layout (one autograd node for the whole stack)
        return forward_fast(self.cells, x, h0, self.dropout_p, self.training, self.batch_first)

    def forward_time_major(
        self, x: torch.Tensor, h0: torch.Tensor | None = None, embedding: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The fast path on time-major input: x (T, B, I) -> ((T, B, H), (L, B, H)). No checks.

        With ``embedding`` (V, I), x is (T, B) token indices and layer 1 reads ``embedding[x]``
        (folded into its input projection, see rnnplay.model.fast).
        """
        return forward_fast(self.cells, x, h0, self.dropout_p, self.training, embedding=embedding)

    def forward_reference(
        self, x: torch.Tensor, h0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The seed's loop: for each time step, for each layer, one cell call."""
        if not self.batch_first:
            x = x.transpose(0, 1)  # (B, T, I)
        B, T, _ = x.shape
        if h0 is None:
            hidden_states = [x.new_zeros(B, self.hidden_size) for _ in range(self.num_layers)]
        else:
            hidden_states = list(h0.unbind(0))  # L x (B, H)
        outputs = []
        for t in range(T):
            x_t = x[:, t, :]  # (B, I): input at time t
            for layer in range(self.num_layers):
                hidden_states[layer] = self.cells[layer](x_t, hidden_states[layer])
                x_t = hidden_states[layer]
                if self.dropout is not None and layer < self.num_layers - 1:
                    x_t = self.dropout(x_t)
            outputs.append(hidden_states[-1].unsqueeze(1))  # (B, 1, H)
        out = torch.cat(outputs, dim=1)  # (B, T, H)
        if not self.batch_first:
            out = out.transpose(0, 1)  # (T, B, H)
        return out, torch.stack(hidden_states, dim=0)  # (L, B, H)

    # ---- interop with torch.nn.RNN ------------------------------------------------------------

    def to_torch(self) -> nn.RNN:
        """A torch.nn.RNN (tanh) with identical weights, on the same device and dtype."""
        ref = self.cells[0].Wxh.weight
        module = nn.RNN(
            self.input_size,
            self.hidden_size,
            num_layers=self.num_layers,
            nonlinearity="tanh",
            bias=self.bias,
            batch_first=self.batch_first,
            dropout=self.dropout_p,
            device=ref.device,
            dtype=ref.dtype,
        )
        with torch.no_grad():
            for k, cell in enumerate(self.cells):
                _copy_cell_to(module, cell, f"l{k}")
        module.train(self.training)
        return module

    @classmethod
    def from_torch(cls, module: nn.RNN, impl: Impl = "fast") -> RNN:
        """Build an RNN with the weights of a unidirectional tanh torch.nn.RNN."""
        _check_torch_rnn(module, bidirectional=False)
        ref = module.weight_ih_l0
        rnn = cls(
            module.input_size,
            module.hidden_size,
            num_layers=module.num_layers,
            dropout=module.dropout,
            batch_first=module.batch_first,
            bias=module.bias,
            impl=impl,
        ).to(device=ref.device, dtype=ref.dtype)
        with torch.no_grad():
            for k, cell in enumerate(rnn.cells):
                _copy_cell_from(module, cell, f"l{k}")
        rnn.train(module.training)
        return rnn

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.dropout_p:
            s += f", dropout={self.dropout_p}"
        if not self.batch_first:
            s += ", batch_first=False"
        if not self.bias:
            s += ", bias=False"
        if self.impl != "fast":
            s += f", impl={self.impl!r}"
        return s


def _copy_cell_to(module: nn.RNN, cell: RNNCell, suffix: str) -> None:
    getattr(module, f"weight_ih_{suffix}").copy_(cell.Wxh.weight)
    getattr(module, f"weight_hh_{suffix}").copy_(cell.Whh.weight)
    if cell.bias:
        getattr(module, f"bias_ih_{suffix}").copy_(cell.Wxh.bias)
        getattr(module, f"bias_hh_{suffix}").copy_(cell.Whh.bias)


def _copy_cell_from(module: nn.RNN, cell: RNNCell, suffix: str) -> None:
    cell.Wxh.weight.copy_(getattr(module, f"weight_ih_{suffix}"))
    cell.Whh.weight.copy_(getattr(module, f"weight_hh_{suffix}"))
    if cell.bias:
        cell.Wxh.bias.copy_(getattr(module, f"bias_ih_{suffix}"))
        cell.Whh.bias.copy_(getattr(module, f"bias_hh_{suffix}"))


def _check_torch_rnn(module: nn.Module, bidirectional: bool) -> None:
    if not isinstance(module, nn.RNN):
        raise TypeError(f"expected a torch.nn.RNN, got {type(module).__name__}")
    if module.nonlinearity != "tanh":
        raise ValueError(f"only tanh RNNs convert, this one uses {module.nonlinearity!r}")
    if module.bidirectional != bidirectional:
        want = "a bidirectional" if bidirectional else "a unidirectional"
        raise ValueError(f"expected {want} torch.nn.RNN, got bidirectional={module.bidirectional}")
    if getattr(module, "proj_size", 0):
        raise ValueError("torch.nn.RNN with proj_size does not convert")


class BidirectionalRNN(nn.Module):
    """Two independent RNN stacks, ``forward_rnn`` and ``backward_rnn`` (the seed's design).

    The backward stack reads the input flipped on time; its outputs are flipped back, so position
    t of the result is ``cat(forward state after x_0..x_t, backward state after x_{T-1}..x_t)``:
    outputs are (B, T, 2H) (or (T, B, 2H) when ``batch_first=False``).

    Final states, ``h_n`` (and ``h0``), are (2 * num_layers, B, H) laid out as in torch.nn.RNN:
    index ``2 * layer + direction``, direction 0 forward, 1 backward. The backward stack's final
    state is its state after reading x_0, i.e. at the start of the sequence.

    Unlike torch.nn.RNN(bidirectional=True, num_layers>1), each direction is its own stack, so
    layer 2 of the forward stack sees only layer 1 of the forward stack. With num_layers=1 the two
    are the same model, and ``to_torch`` / ``from_torch`` convert between them.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        batch_first: bool = True,
        bias: bool = True,
        impl: Impl = "fast",
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.batch_first = batch_first
        self.bias = bias
        kw = dict(num_layers=num_layers, dropout=dropout, batch_first=batch_first, bias=bias, impl=impl)
        self.forward_rnn = RNN(input_size, hidden_size, **kw)
        self.backward_rnn = RNN(input_size, hidden_size, **kw)

    def forward(
        self, x: torch.Tensor, h0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, I) -> (outputs (B, T, 2H), h_n (2L, B, H)); time-first likewise."""
        time_dim = 1 if self.batch_first else 0
        check_shape("x", x, (None, None, self.input_size))
        h0_f = h0_b = None
        if h0 is not None:
            B = x.shape[1 - time_dim]
            check_shape("h0", h0, (2 * self.num_layers, B, self.hidden_size), "(2 * num_layers, B, hidden_size)")
            h0_f, h0_b = h0[0::2], h0[1::2]  # (L, B, H) each
        fwd_out, fwd_h = self.forward_rnn(x, h0_f)
        bwd_out, bwd_h = self.backward_rnn(x.flip(dims=[time_dim]), h0_b)
        bwd_out = bwd_out.flip(dims=[time_dim])
        outputs = torch.cat([fwd_out, bwd_out], dim=-1)  # (B, T, 2H)
        h_n = torch.stack([fwd_h, bwd_h], dim=1).flatten(0, 1)  # (2L, B, H), index 2*layer + dir
        return outputs, h_n

    def to_torch(self) -> nn.RNN:
        """torch.nn.RNN(bidirectional=True) with identical weights (num_layers=1 only)."""
        if self.num_layers != 1:
            raise ValueError(
                "to_torch needs num_layers=1: with more layers torch's bidirectional RNN feeds both "
                "directions into each layer, a different model from two independent stacks"
            )
        ref = self.forward_rnn.cells[0].Wxh.weight
        module = nn.RNN(
            self.input_size, self.hidden_size, num_layers=1, nonlinearity="tanh", bias=self.bias,
            batch_first=self.batch_first, bidirectional=True, device=ref.device, dtype=ref.dtype,
        )
        with torch.no_grad():
            _copy_cell_to(module, self.forward_rnn.cells[0], "l0")
            _copy_cell_to(module, self.backward_rnn.cells[0], "l0_reverse")
        module.train(self.training)
        return module

    @classmethod
    def from_torch(cls, module: nn.RNN, impl: Impl = "fast") -> BidirectionalRNN:
        """Build from torch.nn.RNN(bidirectional=True, num_layers=1)."""
        _check_torch_rnn(module, bidirectional=True)
        if module.num_layers != 1:
            raise ValueError(f"from_torch needs num_layers=1, got {module.num_layers}")
        ref = module.weight_ih_l0
        birnn = cls(
            module.input_size, module.hidden_size, num_layers=1, batch_first=module.batch_first,
            bias=module.bias, impl=impl,
        ).to(device=ref.device, dtype=ref.dtype)
        with torch.no_grad():
            _copy_cell_from(module, birnn.forward_rnn.cells[0], "l0")
            _copy_cell_from(module, birnn.backward_rnn.cells[0], "l0_reverse")
        birnn.train(module.training)
        return birnn
