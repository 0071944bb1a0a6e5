"""The fast path (rnnplay.model.fast) against the seed's loop and torch.nn.RNN, gradcheck, dropout, make_adam."""

import itertools

import pytest
import torch
from torch.testing import assert_close

import rnnplay.model.fast as fast
from rnnplay import RNN, CharRNN
from rnnplay.model import tanh_cell
from rnnplay.model.cell import state_parts
from rnnplay.model.fast import StackedRNN, StackSpec
from rnnplay.model.sampler import Sampler
from rnnplay.training.optim import make_adam


@pytest.fixture(params=["sigmoid-form", "tanh-form"])
def form(request, monkeypatch):
    """Both forward forms: the CPU one (tanh via sigmoid) and the one other devices run (tanh_)."""
    if request.param == "tanh-form":
        monkeypatch.setattr(tanh_cell, "SIGMOID_FORM_DEVICES", set())
    return request.param


def _grads(model, x, h0, use_out=True, use_hn=True):
    out, h_n = model(x, h0)
    loss = 0.0
    if use_out:
        loss = loss + (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum()
    if use_hn:
        loss = loss + (h_n**2).sum()
    named = dict(model.named_parameters())
    if not isinstance(model, torch.nn.RNN):  # cells.1.Whh.bias -> bias_hh_l1, torch.nn.RNN's name
        named = {f"{n.split('.')[3]}_{'ih' if n.split('.')[2] == 'Wxh' else 'hh'}_l{n.split('.')[1]}": p
                 for n, p in named.items()}
    inputs = {"x": x, **({"h0": h0} if h0 is not None else {}), **dict(sorted(named.items()))}
    return out, h_n, torch.autograd.grad(loss, list(inputs.values()))


FLAGS = list(itertools.product([1, 2, 3], [True, False], [True, False], [True, False]))


def _stack(x, h0, emb, p, batch_first, L, bias, *params):
    """The tanh stack as one StackedRNN node: (out, h_n)."""
    spec = StackSpec(tanh_cell.KIND, L, bias, p, batch_first, emb is not None, 0 if h0 is None else 1)
    return StackedRNN.apply(spec, x, emb, *(() if h0 is None else (h0,)), *params)


@pytest.mark.parametrize("num_layers,batch_first,with_h0,bias", FLAGS)
def test_fast_matches_reference_float64(form, num_layers, batch_first, with_h0, bias):
    B, T, I, H = 3, 7, 4, 5
    fast_m = RNN(I, H, num_layers, batch_first=batch_first, bias=bias).double()
    ref = RNN(I, H, num_layers, batch_first=batch_first, bias=bias, impl="reference").double()
    ref.load_state_dict(fast_m.state_dict())
    x = torch.randn(*((B, T, I) if batch_first else (T, B, I)), dtype=torch.double, requires_grad=True)
    h0 = torch.randn(num_layers, B, H, dtype=torch.double, requires_grad=True) if with_h0 else None
    o1, h1, g1 = _grads(fast_m, x, h0)
    o2, h2, g2 = _grads(ref, x, h0)
    assert_close(o1, o2, rtol=1e-10, atol=1e-10)
    assert_close(h1, h2, rtol=1e-10, atol=1e-10)
    assert len(g1) == len(g2)
    for a, b in zip(g1, g2):
        assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("use_out,use_hn", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("batch_first", [True, False])
def test_fast_matches_torch_float32(form, use_out, use_hn, batch_first):
    """Only the outputs, only h_n (a classifier), or both reach the loss: gradients arrive as None."""
    ours = RNN(6, 16, 3, batch_first=batch_first)
    ref = ours.to_torch()
    x = torch.randn(*((4, 12, 6) if batch_first else (12, 4, 6)), requires_grad=True)
    h0 = torch.randn(3, 4, 16, requires_grad=True)
    o1, h1, g1 = _grads(ours, x, h0, use_out, use_hn)
    o2, h2, g2 = _grads(ref, x, h0, use_out, use_hn)
    assert_close(o1, o2, rtol=1e-5, atol=1e-5)
    assert_close(h1, h2, rtol=1e-5, atol=1e-5)
    for a, b in zip(g1, g2):
        assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_only_input_needs_grad():
    model = RNN(3, 5, 2).double().requires_grad_(False)
    x = torch.randn(2, 6, 3, dtype=torch.double, requires_grad=True)
    (gx,) = torch.autograd.grad(model(x)[0].sum(), [x])
    ref = model.to_torch()
    x2 = x.detach().clone().requires_grad_()
    (gx2,) = torch.autograd.grad(ref(x2)[0].sum(), [x2])
    assert_close(gx, gx2)


@pytest.mark.parametrize("batch_first,bias", [(True, True), (False, False)])
def test_stacked_rnn_gradcheck(form, batch_first, bias):
    B, T, I, H, L = 2, 4, 3, 4, 2
    x = torch.randn(*((B, T, I) if batch_first else (T, B, I)), dtype=torch.double, requires_grad=True)
    h0 = torch.randn(L, B, H, dtype=torch.double, requires_grad=True)
    params = []
    for layer in range(L):
        params += [(0.5 * torch.randn(H, I if layer == 0 else H, dtype=torch.double)).requires_grad_(),
                   (0.5 * torch.randn(H, H, dtype=torch.double)).requires_grad_()]
        if bias:
            params += [torch.randn(H, dtype=torch.double, requires_grad=True) for _ in range(2)]

    def f(x, h0, *params):
        return _stack(x, h0, None, 0.0, batch_first, L, bias, *params)

    assert torch.autograd.gradcheck(f, (x, h0, *params))


def test_stacked_rnn_gradcheck_with_dropout():
    """Dropout between layers: the same masks every call (the RNG reseeded), gradients still exact."""
    B, T, I, H, L = 2, 4, 3, 4, 3
    x = torch.randn(B, T, I, dtype=torch.double, requires_grad=True)
    params = []
    for layer in range(L):
        params += [(0.5 * torch.randn(H, I if layer == 0 else H, dtype=torch.double)).requires_grad_(),
                   (0.5 * torch.randn(H, H, dtype=torch.double)).requires_grad_(),
                   torch.randn(H, dtype=torch.double, requires_grad=True),
                   torch.randn(H, dtype=torch.double, requires_grad=True)]

    def f(x, *params):
        torch.manual_seed(5)
        return _stack(x, None, None, 0.4, True, L, True, *params)

    assert torch.autograd.gradcheck(f, (x, *params))


def test_dropout_masks_between_layers_only():
    """Train mode: redo the fast path's maths by hand with the masks it draws (same seed, same order)."""
    B, T, I, H, L, p = 3, 5, 4, 6, 3, 0.3
    model = RNN(I, H, L, dropout=p, batch_first=False).double()
    x = torch.randn(T, B, I, dtype=torch.double)
    torch.manual_seed(11)
    out, h_n = model(x)
    torch.manual_seed(11)
    layer_in, finals = x, []
    for k, cell in enumerate(model.cells):
        if k > 0:
            mask = fast._dropout_mask(layer_in, p)
            assert set(mask.unique().tolist()) <= {0.0, 1.0 / (1 - p)}
            layer_in = layer_in * mask
        h, hs = torch.zeros(B, H, dtype=torch.double), []
        for t in range(T):
            h = cell(layer_in[t], h)
            hs.append(h)
        layer_in = torch.stack(hs)
        finals.append(h)
    assert_close(out, layer_in)
    assert_close(h_n, torch.stack(finals))


@pytest.mark.parametrize("int_mask", [True, False])
def test_dropout_mask_drops_a_fraction_p_and_keeps_the_mean(monkeypatch, int_mask):
    if not int_mask:  # the uniform-based mask other devices use
        monkeypatch.setattr(fast, "INT_MASK_DEVICES", set())
    torch.manual_seed(0)
    mask = fast._dropout_mask(torch.empty(200_000, dtype=torch.double), 0.2)
    assert abs((mask == 0).double().mean().item() - 0.2) < 0.005
    assert abs(mask.mean().item() - 1.0) < 0.01


def test_no_grad_path_builds_no_graph():
    model = RNN(3, 4, 2)
    x = torch.randn(2, 5, 3)
    with torch.no_grad():
        out, h_n = model(x)
    assert not out.requires_grad and out.grad_fn is None
    assert_close(out, model(x)[0].detach())


def test_inplace_change_of_output_is_caught():
    """The time-major output is the saved top-layer buffer: changing it in place must not give silent wrong grads."""
    model = RNN(3, 4, 1, batch_first=False)
    out, _ = model(torch.randn(5, 2, 3))
    out.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_sampler_state_matches_forward():
    """stream's state after feeding each pick equals the full forward's h_n on prime + picks (B > 1)."""
    torch.manual_seed(2)
    model = CharRNN(12, hidden_size=8, num_layers=3, embed_size=5).eval()
    prime = torch.randint(0, 12, (3, 4))
    gen = torch.Generator().manual_seed(0)
    picks, states = [], []
    for nxt, h in Sampler(model).stream(prime, 6, temperature=torch.tensor([0.5, 1.0, 2.0]), generator=gen):
        picks.append(nxt.clone())
        states.append(h.clone())
    seq = torch.cat([prime, torch.stack(picks, dim=1)], dim=1)
    _, h_n = model(seq)
    assert_close(states[-1], h_n, rtol=1e-5, atol=1e-6)
    h0 = torch.randn(3, 3, 8)
    logits, h = Sampler(model).prime(prime, h0)
    full_logits, full_h = model(prime, h0)
    assert_close(logits, full_logits[:, -1], rtol=1e-5, atol=1e-6)
    assert_close(h, full_h, rtol=1e-5, atol=1e-6)


def test_make_adam_is_fused_on_cpu_and_matches_default():
    torch.manual_seed(0)
    a = RNN(3, 4, 2)
    b = RNN(3, 4, 2)
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = make_adam(a.parameters(), lr=1e-2), make_adam(b.parameters(), lr=1e-2, fused=False)
    assert opt_a.param_groups[0]["fused"] and not opt_b.param_groups[0]["fused"]
    x = torch.randn(2, 5, 3)
    for _ in range(3):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            model(x)[0].pow(2).sum().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert_close(p, q)
    opt_b.load_state_dict(opt_a.state_dict())  # fused and unfused state dicts are interchangeable


@pytest.mark.parametrize("fold", [True, False])
@pytest.mark.parametrize("with_h0", [True, False])
def test_charrnn_fast_matches_reference(form, monkeypatch, fold, with_h0):
    """CharRNN folds the embedding into layer 1 (V < T*B): logits, h_n and every gradient as the seed's loop."""
    monkeypatch.setattr(fast, "FOLD_EMBEDDING", fold)
    torch.manual_seed(4)
    ours = CharRNN(7, hidden_size=6, num_layers=2, embed_size=5, dropout=0.3).double().eval()
    ref = CharRNN(7, hidden_size=6, num_layers=2, embed_size=5, dropout=0.3, impl="reference").double().eval()
    ref.load_state_dict(ours.state_dict())
    idx = torch.randint(0, 7, (3, 9))
    idx[0, :7] = torch.arange(7)  # every token present; token 6 never appears in row 1 (zero-gradient rows)
    h0 = torch.randn(2, 3, 6, dtype=torch.double, requires_grad=True) if with_h0 else None
    results = []
    for model in (ours, ref):
        logits, h_n = model(idx, h0)
        loss = (logits * torch.linspace(-1, 1, 7, dtype=torch.double)).sum() + h_n.pow(2).sum()
        inputs = list(model.parameters()) + ([h0] if with_h0 else [])
        results.append((logits, h_n, torch.autograd.grad(loss, inputs)))
    (l1, h1, g1), (l2, h2, g2) = results
    assert_close(l1, l2, rtol=1e-10, atol=1e-10)
    assert_close(h1, h2, rtol=1e-10, atol=1e-10)
    for a, b in zip(g1, g2):
        assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_stacked_rnn_gradcheck_token_input(form):
    T, B, V, E, H, L = 4, 3, 5, 3, 4, 2
    idx = torch.randint(0, V, (T, B))
    emb = torch.randn(V, E, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(L, B, H, dtype=torch.double, requires_grad=True)
    params = []
    for layer in range(L):
        params += [(0.5 * torch.randn(H, E if layer == 0 else H, dtype=torch.double)).requires_grad_(),
                   (0.5 * torch.randn(H, H, dtype=torch.double)).requires_grad_(),
                   torch.randn(H, dtype=torch.double, requires_grad=True),
                   torch.randn(H, dtype=torch.double, requires_grad=True)]

    def f(emb, h0, *params):
        return _stack(idx, h0, emb, 0.0, False, L, True, *params)

    assert torch.autograd.gradcheck(f, (emb, h0, *params))


@pytest.mark.parametrize("cell", ["tanh", "gru", "lstm"])
def test_reused_buffers_give_the_forwards_own_outputs(cell):
    """In a Workspace, no-grad forwards write into the last call's buffers (the scorer's use) and
    give exactly what fresh buffers give, with the state carried from call to call and across
    shapes; forwards with autograd keep their own buffers."""
    torch.manual_seed(0)
    model = CharRNN(13, 24, 3, embed_size=8, cell=cell).eval()
    xs = [torch.randint(0, 13, (5, 7)), torch.randint(0, 13, (5, 7)), torch.randint(0, 13, (3, 4))]
    emb = model.embedding.weight
    with torch.no_grad():
        l0, s0 = model(xs[0])
        l1, s1 = model(xs[1], s0)
        l2, s2 = model(xs[2])
        with fast.reuse_buffers(fast.Workspace()):  # outputs live until the next call: copied here
            r0, t0 = model(xs[0])
            p0, r0 = r0.data_ptr(), r0.clone()
            r1, t1 = model(xs[1], t0)
            assert r1.data_ptr() == p0  # the logits' buffer too, call after call
            r1 = r1.clone()
            r2, t2 = model(xs[2])
            r2 = r2.clone()
            a, _ = model.rnn.forward_time_major(xs[0].t(), None, embedding=emb)  # (T, B, H)
            b, _ = model.rnn.forward_time_major(xs[1].t(), None, embedding=emb)
            assert a.data_ptr() == b.data_ptr()  # the same buffer, call after call
    for got, want in ((r0, l0), (r1, l1), (r2, l2)):
        assert torch.equal(got, want)
    for got, want in ((t1, s1), (t2, s2)):
        for x, y in zip(state_parts(got), state_parts(want)):
            assert torch.equal(x, y)
    with fast.reuse_buffers(fast.Workspace()):
        model.train()
        a, _ = model(xs[0])
        b, _ = model(xs[0])
        assert a.data_ptr() != b.data_ptr()
        (a.sum() + b.sum()).backward()
