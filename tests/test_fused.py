"""The fused execution path (torch._VF.rnn_tanh / gru / lstm with our parameters) against the fast path
and torch.nn.RNN / GRU / LSTM: outputs, final states and every gradient. On the CPU the same entry
points run ATen's native kernels; the CUDA tests (cuDNN, flattened weights) skip without a GPU."""

from __future__ import annotations

import warnings

import pytest
import torch

from rnnplay.model import RNN, CharRNN
from rnnplay.model.cell import state_parts
from rnnplay.model.fused import flat_weights, is_flat, torch_mode
from rnnplay.model.kinds import CELL_NAMES, cell_kind

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _state(model, B, seed, with_h0):
    if not with_h0:
        return None
    g = torch.Generator().manual_seed(seed)
    parts = [torch.randn(t.shape, generator=g, dtype=t.dtype).requires_grad_() for t in state_parts(model.init_state(B))]
    return parts[0] if len(parts) == 1 else tuple(parts)


def _params(model):
    """Parameters in our order (per layer Wxh.weight, Wxh.bias, Whh.weight, Whh.bias), for torch's module too."""
    if not isinstance(model, torch.nn.RNNBase):
        return list(model.parameters())
    out = []
    for k in range(model.num_layers):
        for name in ("ih", "hh"):
            out.append(getattr(model, f"weight_{name}_l{k}"))
            if model.bias:
                out.append(getattr(model, f"bias_{name}_l{k}"))
    return out


def _grads(model, x, h0, out, h_n, seed=7):
    g = torch.Generator().manual_seed(seed)
    loss = (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum()
    for t in state_parts(h_n):
        loss = loss + (t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum()
    inputs = [x] + ([] if h0 is None else list(state_parts(h0))) + _params(model)
    return torch.autograd.grad(loss, inputs)


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("with_h0", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_matches_fast_and_torch(cell, num_layers, batch_first, with_h0, bias):
    torch.manual_seed(0)
    I, H, B, T = 5, 6, 3, 4
    fused = RNN(I, H, num_layers, batch_first=batch_first, bias=bias, impl="fused", cell=cell).double()
    fast = RNN(I, H, num_layers, batch_first=batch_first, bias=bias, impl="fast", cell=cell).double()
    fast.load_state_dict(fused.state_dict())
    ref = fused.to_torch()
    x = torch.randn((B, T, I) if batch_first else (T, B, I), dtype=torch.float64, requires_grad=True)
    h0 = _state(fused, B, 1, with_h0)  # float64, like the models
    results = {}
    for name, model in (("fused", fused), ("fast", fast), ("torch", ref)):
        out, h_n = model(x, h0)
        results[name] = (out, h_n, _grads(model, x, h0, out, h_n))
    for name in ("fast", "torch"):
        out, h_n, grads = results[name]
        torch.testing.assert_close(results["fused"][0], out)
        for a, b in zip(state_parts(results["fused"][1]), state_parts(h_n)):
            torch.testing.assert_close(a, b)
        assert len(results["fused"][2]) == len(grads)
        for a, b in zip(results["fused"][2], grads):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_charrnn_fused_matches_fast_in_float32(cell):
    torch.manual_seed(0)
    fused = CharRNN(11, 8, 2, embed_size=4, cell=cell, impl="fused")
    fast = CharRNN(11, 8, 2, embed_size=4, cell=cell, impl="fast")
    fast.load_state_dict(fused.state_dict())
    idx = torch.randint(0, 11, (3, 9))
    h0 = fused.init_state(3)
    lf, hf = fused(idx, h0)
    ls, hs = fast(idx, h0)
    torch.testing.assert_close(lf, ls, atol=1e-5, rtol=1e-5)
    (lf.square().sum()).backward()
    (ls.square().sum()).backward()
    for (name, p), q in zip(fused.named_parameters(), fast.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_auto_is_fast_on_the_cpu_and_names_stay_the_seeds():
    model = CharRNN(7, 5, 2, embed_size=3)
    assert model.rnn.impl == "auto"
    names = [n for n, _ in model.named_parameters()]
    assert "rnn.cells.0.Wxh.weight" in names and "rnn.cells.1.Whh.bias" in names
    with pytest.raises(ValueError, match="impl"):
        RNN(3, 4, impl="cudnn")


def test_dropout_in_eval_mode_is_off_on_the_fused_path():
    torch.manual_seed(0)
    fused = RNN(4, 6, 3, dropout=0.5, impl="fused").eval()
    fast = RNN(4, 6, 3, dropout=0.5, impl="fast").eval()
    fast.load_state_dict(fused.state_dict())
    x = torch.randn(2, 5, 4)
    torch.testing.assert_close(fused(x)[0], fast(x)[0])


def test_torch_modes():
    assert [torch_mode(cell_kind(c)) for c in ("tanh", "gru", "lstm")] == ["rnn_tanh", "gru", "lstm"]


def test_fused_under_cpu_autocast_gives_float32_gradients():
    torch.manual_seed(0)
    model = CharRNN(11, 8, 2, embed_size=4, impl="fused")
    idx = torch.randint(0, 11, (3, 9))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, _ = model(idx)
    assert logits.dtype == torch.bfloat16
    logits.float().sum().backward()
    assert {p.grad.dtype for p in model.parameters()} == {torch.float32}


@CUDA
@pytest.mark.parametrize("cell", CELL_NAMES)
def test_cuda_fused_flattens_once_and_matches_cudnn(cell):
    torch.manual_seed(0)
    model = CharRNN(11, 32, 2, embed_size=16, cell=cell, impl="fused").cuda()
    opt = torch.optim.Adam(model.parameters())
    params_before = [id(p) for p in model.parameters()]
    idx = torch.randint(0, 11, (4, 10), device="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # cuDNN warns when it has to copy non-contiguous weights
        logits, _ = model(idx)
        logits.sum().backward()
        opt.step()
        logits, _ = model(idx)
    assert is_flat(flat_weights(model.rnn.cells))
    assert [id(p) for p in model.parameters()] == params_before  # the optimizer's parameters
    fast = CharRNN(11, 32, 2, embed_size=16, cell=cell, impl="fast").cuda()
    fast.load_state_dict(model.state_dict())
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):  # torch's default lets cuDNN use TF32
        torch.testing.assert_close(model(idx)[0], fast(idx)[0], atol=1e-4, rtol=1e-4)
    sd = model.state_dict()
    assert "rnn.cells.0.Wxh.weight" in sd
    model.cpu().cuda()  # new storages: flattened again at the next call
    model(idx)
    assert is_flat(flat_weights(model.rnn.cells))


@CUDA
@pytest.mark.parametrize("cell", CELL_NAMES)
def test_cuda_eval_mode_backward_matches_training_mode(cell):
    """torch.nn.RNN's cuDNN backward refuses eval mode; ours gives the gradients of training mode
    (no dropout in either)."""
    torch.manual_seed(0)
    model = CharRNN(11, 32, 2, embed_size=16, cell=cell).cuda()
    idx = torch.randint(0, 11, (4, 10), device="cuda")
    grads = []
    for training in (True, False):
        model.train(training).zero_grad()
        logits, _ = model(idx)
        logits.square().sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


@CUDA
def test_auto_is_fused_on_cuda():
    model = RNN(4, 6, 2).cuda()
    x = torch.randn(2, 5, 4, device="cuda")
    model(x)
    assert is_flat(flat_weights(model.cells))
