"""The RNN cell from the seed: h_t = tanh(Wxh x_t + Whh h_{t-1})."""

from __future__ import annotations

import torch
from torch import nn

from rnnplay.model._checks import check_shape


class RNNCell(nn.Module):
    """One step of a vanilla tanh RNN.

    Two Linear layers keep the input and hidden projections apart (``Wxh``, ``Whh``), as in the
    seed article. Weights are Xavier-uniform, biases start at zero.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(
                f"input_size and hidden_size must be positive, got {input_size} and {hidden_size}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.Wxh = nn.Linear(input_size, hidden_size, bias=bias)
        self.Whh = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weights and zero biases (the seed's ``_init_weights``)."""
        nn.init.xavier_uniform_(self.Wxh.weight)
        nn.init.xavier_uniform_(self.Whh.weight)
        if self.bias:
            nn.init.zeros_(self.Wxh.bias)
            nn.init.zeros_(self.Whh.bias)

    def forward(self, x: torch.Tensor, h_prev: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, I), h_prev (B, H) or None (zeros) -> h (B, H)."""
        check_shape("x", x, (None, self.input_size))
        if h_prev is None:
            h_prev = x.new_zeros(x.shape[0], self.hidden_size)  # (B, H)
        else:
            check_shape("h_prev", h_prev, (x.shape[0], self.hidden_size))
        return torch.tanh(self.Wxh(x) + self.Whh(h_prev))  # (B, H)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias else s + ", bias=False"
