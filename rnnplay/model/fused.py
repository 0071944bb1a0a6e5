"""The fused execution path of :class:`rnnplay.model.RNN` (``impl="fused"``; ``"auto"`` picks it on CUDA).

The same model, the same parameters (``cells[k].Wxh`` / ``cells[k].Whh``, each an nn.Linear with
its bias), run by torch's own multi-layer recurrence: ``torch._VF.rnn_tanh``, ``torch._VF.gru``
or ``torch._VF.lstm``, the entry points torch.nn.RNN / GRU / LSTM call. On CUDA they dispatch to
cuDNN's fused kernels (one call for the whole stack and sequence, forward and backward); on the
CPU to ATen's native implementation, which is how the parity tests run here.

Weights: torch takes a flat list, per layer ``w_ih, w_hh, b_ih, b_hh``, which is exactly
``Wxh.weight, Whh.weight, Wxh.bias, Whh.bias`` (every cell kind keeps torch's gate order, see
rnnplay.model.cell). cuDNN wants them in one contiguous buffer, else it copies them on every call
(with a warning). As ``nn.RNNBase.flatten_parameters`` does, :func:`flatten` copies them once into
one buffer with ``torch._cudnn_rnn_flatten_weight``, which re-points each parameter at its slice
in place: the Parameter objects stay the same, so the optimizer, ``state_dict`` names
(``rnn.cells.0.Wxh.weight``, ...) and checkpoints are untouched. A later ``.to()``,
``load_state_dict(assign=True)`` or anything that swaps a parameter's storage is noticed at the
next call (the slices no longer share one storage) and flattened again.

Autocast: on CUDA torch's own autocast handles cuDNN RNNs (it casts the flat buffer once); on
other devices the inputs are cast to the autocast dtype here and the kernel runs with autocast
off (autograd records the casts, so gradients reach the float32 parameters as float32).

Eval mode with autograd on works on CUDA too (torch.nn.RNN's cuDNN backward refuses it): the
kernel then runs in cuDNN's training mode with no dropout, which gives the same outputs.

Precision on CUDA: like torch.nn.RNN, cuDNN's float32 recurrence uses TF32 tensor cores unless
``torch.backends.cudnn.allow_tf32`` is False (torch's default is True); the fast path's matrix
products follow ``torch.backends.cuda.matmul.allow_tf32`` (default False).

Differences from the fast path: dropout between layers draws torch's own masks (same
distribution, other random numbers), and the per-layer hidden states are not exposed
(``tap_hidden`` sees nothing; the trainer then takes its statistics with an extra no-grad pass).
"""

from __future__ import annotations

import torch
from torch import nn

from rnnplay.model import amp
from rnnplay.model.cell import CellKind
from rnnplay.model.fast import cell_params

_CUDNN_MODES = {"rnn_tanh": 1, "lstm": 2, "gru": 3}  # torch.backends.cudnn.rnn: RNN_RELU 0, RNN_TANH 1, LSTM 2, GRU 3


def torch_mode(kind: CellKind) -> str:
    """The _VF entry point of a cell kind: ``rnn_tanh``, ``rnn_relu``, ``gru`` or ``lstm``."""
    if kind.torch_module is nn.LSTM:
        return "lstm"
    if kind.torch_module is nn.GRU:
        return "gru"
    if kind.torch_module is nn.RNN:
        return "rnn_" + kind.torch_kwargs.get("nonlinearity", "tanh")
    raise ValueError(f"cell {kind.name!r} maps to {kind.torch_module.__name__}, which has no fused kernel")


def flat_weights(cells) -> list[torch.Tensor]:
    """The parameters in torch's flat-weight order, which is the fast path's: per layer Wxh.weight,
    Whh.weight (, Wxh.bias, Whh.bias)."""
    return cell_params(cells)


def is_flat(weights: list[torch.Tensor]) -> bool:
    """Whether the weights are slices of one storage (what flatten leaves)."""
    first = weights[0].untyped_storage().data_ptr()
    return all(w.untyped_storage().data_ptr() == first for w in weights[1:])


def flatten(rnn, weights: list[torch.Tensor] | None = None) -> bool:
    """Put the RNN's weights in one cuDNN buffer, once (as nn.RNNBase.flatten_parameters); True when done.

    Only on CUDA with cuDNN usable for these weights; elsewhere nothing to do (False).
    """
    weights = flat_weights(rnn.cells) if weights is None else weights
    w0 = weights[0]
    if not w0.is_cuda or is_flat(weights):
        return w0.is_cuda
    mode = torch_mode(rnn.kind)
    if mode not in _CUDNN_MODES or not torch.backends.cudnn.is_acceptable(w0.data):
        return False
    if any(w.dtype != w0.dtype or w.device != w0.device for w in weights):
        return False
    if not torch._use_cudnn_rnn_flatten_weight():
        return False
    with torch.no_grad():
        torch._cudnn_rnn_flatten_weight(weights, 4 if rnn.bias else 2, rnn.input_size, _CUDNN_MODES[mode],
                                        rnn.hidden_size, 0, rnn.num_layers, rnn.batch_first, False)
    return True


def forward_fused(rnn, x: torch.Tensor, state0: tuple[torch.Tensor, ...] | None, batch_first: bool,
                  embedding: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """x (B, T, I) if batch_first else (T, B, I) (token indices with ``embedding`` (V, E)),
    state0 parts (L, B, H) or None -> (outputs like x with H features, state_n parts (L, B, H))."""
    if embedding is not None:
        x = nn.functional.embedding(x, embedding)  # (B, T, E) or (T, B, E)
    weights = flat_weights(rnn.cells)
    flatten(rnn, weights)
    mode = torch_mode(rnn.kind)
    B = x.shape[0] if batch_first else x.shape[1]
    if state0 is None:
        state0 = tuple(x.new_zeros(rnn.num_layers, B, rnn.hidden_size) for _ in range(rnn.kind.n_state))
    p = rnn.dropout_p if rnn.training else 0.0
    device_type = x.device.type
    low = None if device_type == "cuda" else amp.active_dtype(device_type)
    if low is not None:  # cast once here, run the kernel outside autocast (see the module docstring)
        with torch.autocast(device_type, enabled=False):
            x, weights = amp.cast(x, low), [amp.cast(w, low) for w in weights]
            state0 = tuple(amp.cast(s, low) for s in state0)
            return _call(mode, x, state0, weights, rnn, p, batch_first)
    return _call(mode, x, state0, weights, rnn, p, batch_first)


def _call(mode: str, x, state0, weights, rnn, p: float, batch_first: bool):
    # cuDNN keeps what its backward needs only in training mode; in eval mode with autograd on
    # (gradients of a frozen model, say) it runs in training mode with no dropout: the same outputs.
    train = rnn.training or (x.is_cuda and torch.is_grad_enabled()
                             and (x.requires_grad or any(w.requires_grad for w in weights)))
    args = (weights, rnn.bias, rnn.num_layers, p, train, False, batch_first)
    if mode == "lstm":
        out, h, c = torch._VF.lstm(x, state0, *args)  # out like x with H features; h, c (L, B, H)
        return out, (h, c)
    out, h = getattr(torch._VF, mode)(x, state0[0], *args)
    return out, (h,)
