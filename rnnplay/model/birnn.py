"""The seed's bidirectional RNN, of any cell kind: two independent stacks, one per direction."""

from __future__ import annotations

import torch
from torch import nn

from rnnplay.model._checks import check_shape
from rnnplay.model.cell import State
from rnnplay.model.rnn import RNN, Impl, copy_cell, interleave_directions, split_directions, torch_kind


class BidirectionalRNN(nn.Module):
    """Two independent RNN stacks, ``forward_rnn`` and ``backward_rnn`` (the seed's design).

    The backward stack reads the input flipped on time; its outputs are flipped back, so position
    t of the result is ``cat(forward state after x_0..x_t, backward state after x_{T-1}..x_t)``:
    outputs are (B, T, 2H) (or (T, B, 2H) when ``batch_first=False``).

    Final states, ``h_n`` (and ``h0``), are (2 * num_layers, B, H) laid out as in torch.nn.RNN:
    index ``2 * layer + direction``, direction 0 forward, 1 backward (for the LSTM, each of h and
    c so). The backward stack's final state is its state after reading x_0, i.e. at the start of
    the sequence.

    Unlike torch's bidirectional modules with num_layers > 1, each direction is its own stack, so
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
        impl: Impl = "auto",
        cell: str = "tanh",
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.batch_first = batch_first
        self.bias = bias
        kw = dict(num_layers=num_layers, dropout=dropout, batch_first=batch_first, bias=bias, impl=impl, cell=cell)
        self.forward_rnn = RNN(input_size, hidden_size, **kw)
        self.backward_rnn = RNN(input_size, hidden_size, **kw)
        self.kind = self.forward_rnn.kind
        self.cell = self.kind.name

    @property
    def impl(self) -> Impl:
        return self.forward_rnn.impl

    def forward(self, x: torch.Tensor, h0: State | None = None) -> tuple[torch.Tensor, State]:
        """x (B, T, I) -> (outputs (B, T, 2H), h_n (2L, B, H) or the LSTM's pair); time-first likewise."""
        time_dim = 1 if self.batch_first else 0
        check_shape("x", x, (None, None, self.input_size))
        h0_f = h0_b = None
        if h0 is not None:
            self.forward_rnn.check_state(h0, x.shape[1 - time_dim], layers=2 * self.num_layers)
            h0_f, h0_b = split_directions(h0)  # (L, B, H) each (per part)
        fwd_out, fwd_h = self.forward_rnn(x, h0_f)
        bwd_out, bwd_h = self.backward_rnn(x.flip(dims=[time_dim]), h0_b)
        bwd_out = bwd_out.flip(dims=[time_dim])
        outputs = torch.cat([fwd_out, bwd_out], dim=-1)  # (B, T, 2H)
        return outputs, interleave_directions(fwd_h, bwd_h)  # (2L, B, H), index 2*layer + dir

    def to_torch(self) -> nn.RNNBase:
        """torch's bidirectional module of this kind with identical weights (num_layers=1 only)."""
        if self.num_layers != 1:
            raise ValueError(
                "to_torch needs num_layers=1: with more layers torch's bidirectional RNN feeds both "
                "directions into each layer, a different model from two independent stacks"
            )
        ref = self.forward_rnn.cells[0].Wxh.weight
        module = self.kind.torch_module(
            self.input_size, self.hidden_size, num_layers=1, bias=self.bias, batch_first=self.batch_first,
            bidirectional=True, device=ref.device, dtype=ref.dtype, **self.kind.torch_kwargs,
        )
        with torch.no_grad():
            copy_cell(self.forward_rnn.cells[0], module, "l0", to_torch=True)
            copy_cell(self.backward_rnn.cells[0], module, "l0_reverse", to_torch=True)
        module.train(self.training)
        return module

    @classmethod
    def from_torch(cls, module: nn.RNNBase, impl: Impl = "auto") -> BidirectionalRNN:
        """Build from torch's bidirectional nn.RNN (tanh), nn.GRU or nn.LSTM with num_layers=1."""
        kind = torch_kind(module, bidirectional=True)
        if module.num_layers != 1:
            raise ValueError(f"from_torch needs num_layers=1, got {module.num_layers}")
        ref = module.weight_ih_l0
        birnn = cls(
            module.input_size, module.hidden_size, num_layers=1, batch_first=module.batch_first,
            bias=module.bias, impl=impl, cell=kind.name,
        ).to(device=ref.device, dtype=ref.dtype)
        with torch.no_grad():
            copy_cell(birnn.forward_rnn.cells[0], module, "l0", to_torch=False)
            copy_cell(birnn.backward_rnn.cells[0], module, "l0_reverse", to_torch=False)
        birnn.train(module.training)
        return birnn
