"""Our RNN against torch.nn.RNN: outputs, h_n and every gradient, with the same weights."""

import itertools

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from rnnplay import RNN, BidirectionalRNN, RNNCell

DTYPES = [torch.float32, torch.float64]
FLAGS = list(itertools.product([1, 2, 3], [True, False], [True, False], [True, False], [1, 4]))


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)


def _inputs(batch_first, B, T, I, L, H, with_h0, dtype):
    shape = (B, T, I) if batch_first else (T, B, I)
    x = torch.randn(*shape, dtype=dtype, requires_grad=True)
    h0 = torch.randn(L, B, H, dtype=dtype, requires_grad=True) if with_h0 else None
    return x, h0


def torch_name(name: str) -> str:
    """Our parameter name -> torch.nn.RNN's: cells.1.Whh.bias -> bias_hh_l1 (backward_rnn -> _reverse)."""
    parts = name.split(".")
    suffix = "_reverse" if parts[0] == "backward_rnn" else ""
    k, lin, kind = parts[-3], parts[-2], parts[-1]
    return f"{kind}_{'ih' if lin == 'Wxh' else 'hh'}_l{k}{suffix}"


def _run(module, x, h0):
    """Forward, a loss touching outputs and h_n, and the gradients {'x', 'h0', param name: grad}."""
    out, h_n = module(x, h0) if h0 is not None else module(x)
    loss = (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum() + (h_n**2).sum()
    named = dict(module.named_parameters())
    if not isinstance(module, nn.RNN):
        named = {torch_name(n): p for n, p in named.items()}
    inputs = {"x": x, **({"h0": h0} if h0 is not None else {}), **named}
    grads = torch.autograd.grad(loss, list(inputs.values()))
    return out, h_n, dict(zip(inputs, grads))


@pytest.mark.parametrize("impl", ["fast", "reference"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("num_layers,batch_first,with_h0,bias,B", FLAGS)
def test_rnn_matches_torch(impl, dtype, num_layers, batch_first, with_h0, bias, B):
    I, H, T = 5, 7, 6
    ours = RNN(I, H, num_layers, batch_first=batch_first, bias=bias, impl=impl).to(dtype)
    ref = ours.to_torch()
    x, h0 = _inputs(batch_first, B, T, I, num_layers, H, with_h0, dtype)
    out, h_n, grads = _run(ours, x, h0)
    out_r, h_n_r, grads_r = _run(ref, x, h0)
    tol = _tol(dtype)
    assert_close(out, out_r, **tol)
    assert_close(h_n, h_n_r, **tol)
    assert grads.keys() == grads_r.keys()
    for name in grads:
        assert_close(grads[name], grads_r[name], **tol, msg=lambda m: f"grad of {name}: {m}")


def test_parameter_names():
    ours = RNN(3, 4, 2)
    names = [n for n, _ in ours.named_parameters()]
    assert names == [
        "cells.0.Wxh.weight", "cells.0.Wxh.bias", "cells.0.Whh.weight", "cells.0.Whh.bias",
        "cells.1.Wxh.weight", "cells.1.Wxh.bias", "cells.1.Whh.weight", "cells.1.Whh.bias",
    ]
    torch_names = {n for n, _ in ours.to_torch().named_parameters()}
    assert {torch_name(n) for n in names} == torch_names


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("bias", [True, False])
def test_cell_matches_torch_cell(dtype, bias):
    cell = RNNCell(4, 6, bias=bias).to(dtype)
    ref = nn.RNNCell(4, 6, bias=bias, nonlinearity="tanh").to(dtype)
    with torch.no_grad():
        ref.weight_ih.copy_(cell.Wxh.weight)
        ref.weight_hh.copy_(cell.Whh.weight)
        if bias:
            ref.bias_ih.copy_(cell.Wxh.bias)
            ref.bias_hh.copy_(cell.Whh.bias)
    x = torch.randn(3, 4, dtype=dtype)
    h = torch.randn(3, 6, dtype=dtype)
    assert_close(cell(x, h), ref(x, h), **_tol(dtype))
    assert_close(cell(x, None), ref(x), **_tol(dtype))


def test_from_torch_roundtrip():
    ref = nn.RNN(3, 5, num_layers=2, batch_first=True, dropout=0.1)
    ours = RNN.from_torch(ref)
    assert ours.num_layers == 2 and ours.batch_first and ours.dropout_p == 0.1
    ours.eval(), ref.eval()
    x = torch.randn(2, 7, 3)
    assert_close(ours(x)[0], ref(x)[0])
    back = ours.to_torch()
    for (n1, p1), (n2, p2) in zip(back.named_parameters(), ref.named_parameters()):
        assert n1 == n2
        assert torch.equal(p1, p2)


def test_from_torch_refuses_relu_and_bidirectional():
    with pytest.raises(ValueError, match="tanh"):
        RNN.from_torch(nn.RNN(3, 4, nonlinearity="relu"))
    with pytest.raises(ValueError, match="unidirectional"):
        RNN.from_torch(nn.RNN(3, 4, bidirectional=True))
    with pytest.raises(TypeError):
        RNN.from_torch(nn.Linear(3, 4))
    with pytest.raises(ValueError, match="proj_size"):
        RNN.from_torch(nn.LSTM(3, 4, proj_size=2))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("with_h0", [True, False])
def test_bidirectional_matches_torch(dtype, batch_first, with_h0):
    I, H, T, B = 4, 5, 6, 3
    ours = BidirectionalRNN(I, H, batch_first=batch_first).to(dtype)
    ref = ours.to_torch()
    x, h0 = _inputs(batch_first, B, T, I, 2, H, with_h0, dtype)
    out, h_n, grads = _run(ours, x, h0)
    out_r, h_n_r, grads_r = _run(ref, x, h0)
    tol = _tol(dtype)
    assert out.shape[-1] == 2 * H
    assert_close(out, out_r, **tol)
    assert_close(h_n, h_n_r, **tol)
    assert grads.keys() == grads_r.keys()
    for name in grads:
        assert_close(grads[name], grads_r[name], **tol, msg=lambda m: f"grad of {name}: {m}")


def test_bidirectional_from_torch():
    ref = nn.RNN(3, 4, bidirectional=True, batch_first=True)
    ours = BidirectionalRNN.from_torch(ref)
    x = torch.randn(2, 5, 3)
    assert_close(ours(x)[0], ref(x)[0])
    assert_close(ours(x)[1], ref(x)[1])
    with pytest.raises(ValueError, match="num_layers=1"):
        BidirectionalRNN(3, 4, num_layers=2).to_torch()
