"""Multi-layer and bidirectional RNNs of any cell kind (the seed's ``RNN``; torch's RNNBase with a mode)."""

from __future__ import annotations

import warnings
from typing import Literal

import torch
from torch import nn

from rnnplay.model._checks import check_shape
from rnnplay.model.cell import CellKind, State, hidden_of, map_state, state_from_parts, state_parts
from rnnplay.model.fast import forward_fast, tap_hidden
from rnnplay.model.kinds import cell_kind

Impl = Literal["auto", "fast", "fused", "reference"]
IMPLS = ("auto", "fast", "fused", "reference")


class RNN(nn.Module):
    """A stack of recurrent cells of one kind.

    Args:
        input_size: features per step of the input.
        hidden_size: units per layer.
        num_layers: stacked cells, kept in the ModuleList ``cells``.
        dropout: applied to each layer's outputs before the next layer; never across time and
            never after the last layer (torch.nn.RNN's semantics).
        batch_first: input and outputs are (B, T, *) when True, (T, B, *) when False. ``h0`` and
            ``h_n`` are (num_layers, B, H) either way, as in torch.
        bias: both Linear layers of every cell carry a bias.
        impl: ``"auto"`` (default): ``"fused"`` on CUDA, ``"fast"`` elsewhere. ``"fused"`` runs torch's
            own recurrence kernels (cuDNN on CUDA) with these parameters (rnnplay.model.fused).
            ``"fast"`` runs layer-major with one input matmul per layer and a
            hand-written backward through time; ``"reference"`` runs the seed's readable
            cell-per-step loop. Same weights, same results to float tolerance.
        cell: ``"tanh"`` (the seed's cell, default), ``"gru"`` or ``"lstm"``; see rnnplay.model.kinds.

    ``forward(x, h0=None)`` returns ``(outputs, h_n)``: outputs are the last layer's hidden state at
    every step, h_n every layer's state after the last step. The state is one (L, B, H) tensor,
    or for the LSTM the pair ``(h, c)`` of them, as in torch.
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
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {', '.join(map(repr, IMPLS))}, got {impl!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout acts only between layers, so it has no effect with num_layers=1",
                stacklevel=2,
            )
        self.kind: CellKind = cell_kind(cell)
        self.cell = self.kind.name
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.batch_first = batch_first
        self.bias = bias
        self.impl: Impl = impl
        self.cells = nn.ModuleList(
            self.kind.cell(input_size if i == 0 else hidden_size, hidden_size, bias=bias)
            for i in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    @property
    def dropout_p(self) -> float:
        return self.dropout.p if self.dropout is not None else 0.0

    # ---- the state --------------------------------------------------------------------------

    def init_state(self, batch: int, device=None, dtype=None) -> State:
        """Zeros in this cell's state type: (L, B, H), or a pair of them for the LSTM."""
        ref = self.cells[0].Whh.weight
        shape = (self.num_layers, batch, self.hidden_size)
        zeros = [torch.zeros(shape, device=device or ref.device, dtype=dtype or ref.dtype)
                 for _ in range(self.kind.n_state)]
        return state_from_parts(zeros, self.kind.n_state)

    def check_state(self, h0: State | None, batch: int, layers: int | None = None) -> None:
        """ValueError naming expected and received shapes unless h0 is None or a state for ``batch``
        (``layers`` rows per part: num_layers, or twice that for a bidirectional pair of stacks)."""
        if h0 is None:
            return
        what = "(num_layers, B, hidden_size)" if layers is None else "(2 * num_layers, B, hidden_size)"
        layers = self.num_layers if layers is None else layers
        n = self.kind.n_state
        if n > 1 and not (isinstance(h0, (tuple, list)) and len(h0) == n):
            raise ValueError(f"h0: a {self.cell} state is a tuple ({', '.join(self.kind.state_names)}) "
                             f"of {what} tensors, got {type(h0).__name__}")
        if n == 1 and not isinstance(h0, torch.Tensor):
            raise ValueError(f"h0: a {self.cell} state is one {what} tensor, got {type(h0).__name__}")
        for name, t in zip(self.kind.state_names, state_parts(h0)):
            check_shape("h0" if n == 1 else f"h0 ({name})", t, (layers, batch, self.hidden_size), what)

    # ---- running it --------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, h0: State | None = None) -> tuple[torch.Tensor, State]:
        """x (B, T, I) or (T, B, I), h0 state or None -> (outputs like x with H features, h_n)."""
        layout = "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"
        check_shape("x", x, (None, None, self.input_size), layout)
        self.check_state(h0, x.shape[0] if self.batch_first else x.shape[1])
        return self._run(x, h0, self.batch_first, None)

    def forward_time_major(
        self, x: torch.Tensor, h0: State | None = None, embedding: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, State]:
        """x (T, B, I) -> ((T, B, H), h_n) whatever ``batch_first`` says: what the heads call.

        With ``embedding`` (V, I), x is (T, B) token indices and layer 1 reads ``embedding[x]``
        (the fast path folds it into layer 1's input projection, see rnnplay.model.fast).
        """
        if embedding is None:
            check_shape("x", x, (None, None, self.input_size), "(T, B, input_size)")
        else:
            check_shape("x", x, (None, None), "(T, B) of token indices")
        self.check_state(h0, x.shape[1])
        return self._run(x, h0, False, embedding)

    def _run(self, x, h0, batch_first: bool, embedding):
        if self.impl == "fused" or (self.impl == "auto" and x.is_cuda):
            from rnnplay.model.fused import forward_fused

            out, parts = forward_fused(self, x, state_parts(h0), batch_first, embedding)
            return out, state_from_parts(parts, self.kind.n_state)
        if self.impl == "reference":
            if embedding is not None:
                x = nn.functional.embedding(x, embedding)  # (T, B, E)
            return self._reference(x, h0, batch_first)
        out, parts = forward_fast(self.kind, self.cells, x, state_parts(h0), self.dropout_p, self.training,
                                  batch_first, embedding)
        return out, state_from_parts(parts, self.kind.n_state)

    @torch.no_grad()
    def layer_outputs(
        self, x: torch.Tensor, h0: State | None = None, embedding: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Every layer's hidden outputs h for time-major x, L x (T, B, H), without gradients
        (the fast path in eval mode, whatever ``impl``): what a probe of the hidden states reads."""
        layers: list[torch.Tensor] = []
        with tap_hidden(layers.extend):
            out, parts = forward_fast(self.kind, self.cells, x, state_parts(h0), 0.0, False, False, embedding)
        return layers

    def forward_reference(self, x: torch.Tensor, h0: State | None = None) -> tuple[torch.Tensor, State]:
        """The seed's loop: for each time step, for each layer, one cell call."""
        return self._reference(x, h0, self.batch_first)

    def _reference(self, x: torch.Tensor, h0: State | None, batch_first: bool) -> tuple[torch.Tensor, State]:
        if not batch_first:
            x = x.transpose(0, 1)  # (B, T, I)
        T = x.shape[1]
        n = self.kind.n_state
        if h0 is None:
            states: list = [None] * self.num_layers  # each cell starts from zeros
        else:
            parts = state_parts(h0)
            states = [state_from_parts([p[k] for p in parts], n) for k in range(self.num_layers)]
        outputs = []
        for t in range(T):
            x_t = x[:, t, :]  # (B, I): input at time t
            for layer in range(self.num_layers):
                states[layer] = self.cells[layer](x_t, states[layer])
                x_t = hidden_of(states[layer])  # (B, H)
                if self.dropout is not None and layer < self.num_layers - 1:
                    x_t = self.dropout(x_t)
            outputs.append(hidden_of(states[-1]).unsqueeze(1))  # (B, 1, H)
        out = torch.cat(outputs, dim=1)  # (B, T, H)
        if not batch_first:
            out = out.transpose(0, 1)  # (T, B, H)
        finals = [state_parts(s) for s in states]
        h_n = [torch.stack([f[j] for f in finals], dim=0) for j in range(n)]  # (L, B, H) each
        return out, state_from_parts(h_n, n)

    # ---- interop with torch.nn.RNN / GRU / LSTM ------------------------------------------------

    def to_torch(self) -> nn.RNNBase:
        """torch's module of this kind (nn.RNN tanh / nn.GRU / nn.LSTM) with identical weights."""
        ref = self.cells[0].Wxh.weight
        module = self.kind.torch_module(
            self.input_size, self.hidden_size, num_layers=self.num_layers, bias=self.bias,
            batch_first=self.batch_first, dropout=self.dropout_p, device=ref.device, dtype=ref.dtype,
            **self.kind.torch_kwargs,
        )
        with torch.no_grad():
            for k, cell in enumerate(self.cells):
                copy_cell(cell, module, f"l{k}", to_torch=True)
        module.train(self.training)
        return module

    @classmethod
    def from_torch(cls, module: nn.RNNBase, impl: Impl = "auto") -> RNN:
        """Build an RNN with the weights of a unidirectional torch.nn.RNN (tanh), GRU or LSTM."""
        kind = torch_kind(module, bidirectional=False)
        ref = module.weight_ih_l0
        rnn = cls(
            module.input_size, module.hidden_size, num_layers=module.num_layers, dropout=module.dropout,
            batch_first=module.batch_first, bias=module.bias, impl=impl, cell=kind.name,
        ).to(device=ref.device, dtype=ref.dtype)
        with torch.no_grad():
            for k, cell in enumerate(rnn.cells):
                copy_cell(cell, module, f"l{k}", to_torch=False)
        rnn.train(module.training)
        return rnn

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.cell != "tanh":
            s += f", cell={self.cell!r}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.dropout_p:
            s += f", dropout={self.dropout_p}"
        if not self.batch_first:
            s += ", batch_first=False"
        if not self.bias:
            s += ", bias=False"
        if self.impl != "auto":
            s += f", impl={self.impl!r}"
        return s


TORCH_NAMES = (("Wxh", "weight", "weight_ih"), ("Whh", "weight", "weight_hh"),
               ("Wxh", "bias", "bias_ih"), ("Whh", "bias", "bias_hh"))  # ours -> torch's, + _l{k}[_reverse]


def copy_cell(cell, module: nn.Module, suffix: str, to_torch: bool) -> None:
    """Copy one cell's parameters to (or from) torch's ``weight_ih_{suffix}`` etc. Same gate order."""
    for lin, kind, name in TORCH_NAMES:
        if kind == "bias" and not cell.bias:
            continue
        ours, theirs = getattr(getattr(cell, lin), kind), getattr(module, f"{name}_{suffix}")
        (theirs if to_torch else ours).copy_(ours if to_torch else theirs)


def torch_kind(module: nn.Module, bidirectional: bool) -> CellKind:
    """The cell kind of a torch RNN module, or TypeError / ValueError saying why it does not convert."""
    from rnnplay.model.kinds import all_kinds

    kinds = all_kinds()
    kind = next((k for k in kinds if type(module) is k.torch_module), None)
    if kind is None:
        names = ", ".join(dict.fromkeys(f"torch.nn.{k.torch_module.__name__}" for k in kinds))
        raise TypeError(f"expected one of {names}, got {type(module).__name__}")
    for key, value in kind.torch_kwargs.items():
        if getattr(module, key) != value:
            raise ValueError(f"only {key}={value!r} converts, this one has {getattr(module, key)!r}")
    if module.bidirectional != bidirectional:
        want = "a bidirectional" if bidirectional else "a unidirectional"
        raise ValueError(f"expected {want} torch module, got bidirectional={module.bidirectional}")
    if getattr(module, "proj_size", 0):
        raise ValueError("a torch.nn.LSTM with proj_size does not convert")
    return kind


def interleave_directions(fwd: State, bwd: State) -> State:
    """Two (L, B, H) states -> (2L, B, H), index 2 * layer + direction (torch's layout)."""
    parts = [torch.stack([f, b], dim=1).flatten(0, 1) for f, b in zip(state_parts(fwd), state_parts(bwd))]
    return state_from_parts(parts, len(parts))


def split_directions(h0: State) -> tuple[State, State]:
    """The inverse of :func:`interleave_directions`."""
    return map_state(lambda t: t[0::2], h0), map_state(lambda t: t[1::2], h0)
