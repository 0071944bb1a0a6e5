"""The GRU and LSTM cells against torch.nn.GRU / nn.LSTM, gradcheck on their hand-written backward,
the fast path against the seed's loop, the sampler, and a fourth kind registered at runtime."""

import itertools

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import rnnplay.model.fast as fast
from rnnplay import RNN, BidirectionalRNN, CharRNN, GRUCell, LSTMCell, SequenceClassifier, SequenceTagger
from rnnplay.model import kinds
from rnnplay.model.cell import state_parts
from rnnplay.model.fast import StackedRNN, StackSpec
from rnnplay.model.sampler import Sampler

GATED = ["gru", "lstm"]
DTYPES = [torch.float32, torch.float64]
FLAGS = list(itertools.product([1, 2, 3], [True, False], [True, False], [True, False], [1, 4]))


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)


def _state(cell, L, B, H, dtype, requires_grad=True):
    """A random initial state of the kind: (L, B, H), or (h, c) for the LSTM."""
    parts = tuple(torch.randn(L, B, H, dtype=dtype, requires_grad=requires_grad)
                  for _ in range(kinds.cell_kind(cell).n_state))
    return parts[0] if len(parts) == 1 else parts


def torch_name(name: str) -> str:
    """Our parameter name -> torch's: cells.1.Whh.bias -> bias_hh_l1 (backward_rnn -> _reverse)."""
    parts = name.split(".")
    suffix = "_reverse" if parts[0] == "backward_rnn" else ""
    k, lin, what = parts[-3], parts[-2], parts[-1]
    return f"{what}_{'ih' if lin == 'Wxh' else 'hh'}_l{k}{suffix}"


def _run(module, x, h0, use_out=True, use_state=True):
    """Forward, a loss touching outputs and every part of the final state, and the gradients by name."""
    out, h_n = module(x, h0) if h0 is not None else module(x)
    loss = 0.0
    if use_out:
        loss = loss + (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum()
    if use_state:
        for k, part in enumerate(state_parts(h_n)):
            loss = loss + (k + 1) * (part**2).sum()
    named = dict(module.named_parameters())
    if not isinstance(module, nn.RNNBase):
        named = {torch_name(n): p for n, p in named.items()}
    h0_inputs = {f"h0_{k}": t for k, t in enumerate(state_parts(h0) or ())}
    inputs = {"x": x, **h0_inputs, **dict(sorted(named.items()))}
    grads = torch.autograd.grad(loss, list(inputs.values()))
    return out, h_n, dict(zip(inputs, grads))


def _compare(a, b, tol):
    out, h_n, grads = a
    out_r, h_n_r, grads_r = b
    assert_close(out, out_r, **tol)
    assert type(h_n) is type(h_n_r)
    for p, q in zip(state_parts(h_n), state_parts(h_n_r)):
        assert_close(p, q, **tol)
    assert grads.keys() == grads_r.keys()
    for name in grads:
        assert_close(grads[name], grads_r[name], **tol, msg=lambda m: f"grad of {name}: {m}")


# ---- against torch ----------------------------------------------------------------------------

@pytest.mark.parametrize("cell", GATED)
@pytest.mark.parametrize("impl", ["fast", "reference"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("num_layers,batch_first,with_h0,bias,B", FLAGS)
def test_rnn_matches_torch(cell, impl, dtype, num_layers, batch_first, with_h0, bias, B):
    I, H, T = 5, 7, 6
    torch.manual_seed(num_layers * 100 + B)
    ours = RNN(I, H, num_layers, batch_first=batch_first, bias=bias, impl=impl, cell=cell).to(dtype)
    if bias:  # non-zero biases, so that every bias path (b_hn inside the reset product) is exercised
        with torch.no_grad():
            for p in ours.parameters():
                if p.dim() == 1:
                    p.normal_()
    ref = ours.to_torch()
    assert type(ref) is {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
    x = torch.randn(*((B, T, I) if batch_first else (T, B, I)), dtype=dtype, requires_grad=True)
    h0 = _state(cell, num_layers, B, H, dtype) if with_h0 else None
    _compare(_run(ours, x, h0), _run(ref, x, h0), _tol(dtype))


@pytest.mark.parametrize("cell", GATED)
@pytest.mark.parametrize("use_out,use_state", [(True, False), (False, True)])
def test_only_outputs_or_only_the_state_reach_the_loss(cell, use_out, use_state):
    """A classifier uses only h_n; a language model mostly the outputs: unused gradients arrive as None."""
    ours = RNN(6, 16, 3, cell=cell)
    ref = ours.to_torch()
    x = torch.randn(4, 12, 6, requires_grad=True)
    h0 = _state(cell, 3, 4, 16, torch.float32)
    _compare(_run(ours, x, h0, use_out, use_state), _run(ref, x, h0, use_out, use_state), _tol(torch.float32))


@pytest.mark.parametrize("cell,cls,ref_cls", [("gru", GRUCell, nn.GRUCell), ("lstm", LSTMCell, nn.LSTMCell)])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("bias", [True, False])
def test_cell_matches_torch_cell(cell, cls, ref_cls, dtype, bias):
    ours = cls(4, 6, bias=bias).to(dtype)
    ref = ref_cls(4, 6, bias=bias).to(dtype)
    with torch.no_grad():
        ref.weight_ih.copy_(ours.Wxh.weight)
        ref.weight_hh.copy_(ours.Whh.weight)
        if bias:
            ref.bias_ih.copy_(torch.randn_like(ours.Wxh.bias))
            ref.bias_hh.copy_(torch.randn_like(ours.Whh.bias))
            ours.Wxh.bias.copy_(ref.bias_ih)
            ours.Whh.bias.copy_(ref.bias_hh)
    x = torch.randn(3, 4, dtype=dtype)
    state = _state(cell, 1, 3, 6, dtype, requires_grad=False)
    state = state[0] if cell == "gru" else (state[0][0], state[1][0])  # (B, H) per part
    tol = _tol(dtype)
    for got, want in zip(state_parts(ours(x, state)), state_parts(ref(x, state))):
        assert_close(got, want, **tol)
    for got, want in zip(state_parts(ours(x)), state_parts(ref(x))):
        assert_close(got, want, **tol)


@pytest.mark.parametrize("cell", GATED)
def test_parameter_shapes_and_torch_names(cell):
    ours = RNN(3, 4, 2, cell=cell)
    G = kinds.cell_kind(cell).gates
    shapes = {n: tuple(p.shape) for n, p in ours.named_parameters()}
    assert shapes["cells.0.Wxh.weight"] == (G * 4, 3) and shapes["cells.1.Whh.weight"] == (G * 4, 4)
    torch_shapes = {n: tuple(p.shape) for n, p in ours.to_torch().named_parameters()}
    assert {torch_name(n): s for n, s in shapes.items()} == torch_shapes


@pytest.mark.parametrize("cell", GATED)
def test_from_torch_roundtrip(cell):
    ref = {"gru": nn.GRU, "lstm": nn.LSTM}[cell](3, 5, num_layers=2, batch_first=True, dropout=0.1)
    ours = RNN.from_torch(ref)
    assert ours.cell == cell and ours.num_layers == 2 and ours.batch_first and ours.dropout_p == 0.1
    ours.eval(), ref.eval()
    x = torch.randn(2, 7, 3)
    assert_close(ours(x)[0], ref(x)[0])
    back = ours.to_torch()
    assert type(back) is type(ref)
    for (n1, p1), (n2, p2) in zip(back.named_parameters(), ref.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2)


@pytest.mark.parametrize("cell", GATED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("with_h0", [True, False])
def test_bidirectional_matches_torch(cell, dtype, batch_first, with_h0):
    I, H, T, B = 4, 5, 6, 3
    ours = BidirectionalRNN(I, H, batch_first=batch_first, cell=cell).to(dtype)
    ref = ours.to_torch()
    assert ref.bidirectional and type(ref) is {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
    x = torch.randn(*((B, T, I) if batch_first else (T, B, I)), dtype=dtype, requires_grad=True)
    h0 = _state(cell, 2, B, H, dtype) if with_h0 else None
    _compare(_run(ours, x, h0), _run(ref, x, h0), _tol(dtype))
    back = BidirectionalRNN.from_torch(ref)
    assert back.cell == cell
    assert_close(back(x)[0], ref(x)[0])


# ---- the hand-written backward -------------------------------------------------------------------

def _params(cell, L, I, H, bias, dtype=torch.double):
    G = kinds.cell_kind(cell).gates
    params = []
    for layer in range(L):
        params += [(0.5 * torch.randn(G * H, I if layer == 0 else H, dtype=dtype)).requires_grad_(),
                   (0.5 * torch.randn(G * H, H, dtype=dtype)).requires_grad_()]
        if bias:
            params += [torch.randn(G * H, dtype=dtype, requires_grad=True) for _ in range(2)]
    return params


@pytest.mark.parametrize("cell", GATED)
@pytest.mark.parametrize("batch_first,bias,with_h0", [(True, True, True), (False, False, True), (True, True, False)])
def test_stacked_gradcheck(cell, batch_first, bias, with_h0):
    kind = kinds.cell_kind(cell)
    B, T, I, H, L = 2, 4, 3, 3, 2
    x = torch.randn(*((B, T, I) if batch_first else (T, B, I)), dtype=torch.double, requires_grad=True)
    state0 = state_parts(_state(cell, L, B, H, torch.double)) if with_h0 else ()
    params = _params(cell, L, I, H, bias)
    spec = StackSpec(kind, L, bias, 0.0, batch_first, False, len(state0))

    def f(x, *rest):
        return StackedRNN.apply(spec, x, None, *rest)

    assert torch.autograd.gradcheck(f, (x, *state0, *params))


@pytest.mark.parametrize("cell", GATED)
def test_stacked_gradcheck_token_input_and_dropout(cell):
    """Token input read from the folded (V, G*H) table, and dropout between layers (the RNG reseeded)."""
    kind = kinds.cell_kind(cell)
    T, B, V, E, H, L = 4, 3, 5, 3, 3, 3
    idx = torch.randint(0, V, (T, B))
    emb = torch.randn(V, E, dtype=torch.double, requires_grad=True)
    state0 = state_parts(_state(cell, L, B, H, torch.double))
    params = _params(cell, L, E, H, True)
    spec = StackSpec(kind, L, True, 0.3, False, True, len(state0))

    def f(emb, *rest):
        torch.manual_seed(3)
        return StackedRNN.apply(spec, idx, emb, *rest)

    assert torch.autograd.gradcheck(f, (emb, *state0, *params))


# ---- fast path against the seed's loop ----------------------------------------------------------

@pytest.mark.parametrize("cell", GATED)
@pytest.mark.parametrize("fold", [True, False])
@pytest.mark.parametrize("with_h0", [True, False])
def test_charrnn_fast_matches_reference(monkeypatch, cell, fold, with_h0):
    monkeypatch.setattr(fast, "FOLD_EMBEDDING", fold)
    torch.manual_seed(4)
    ours = CharRNN(7, hidden_size=6, num_layers=2, embed_size=5, dropout=0.3, cell=cell).double().eval()
    ref = CharRNN(7, hidden_size=6, num_layers=2, embed_size=5, dropout=0.3, impl="reference", cell=cell).double().eval()
    ref.load_state_dict(ours.state_dict())
    idx = torch.randint(0, 7, (3, 9))
    idx[0, :7] = torch.arange(7)
    h0 = _state(cell, 2, 3, 6, torch.double) if with_h0 else None
    results = []
    for model in (ours, ref):
        logits, h_n = model(idx, h0)
        loss = (logits * torch.linspace(-1, 1, 7, dtype=torch.double)).sum()
        loss = loss + sum(p.pow(2).sum() for p in state_parts(h_n))
        inputs = list(model.parameters()) + list(state_parts(h0) or ())
        results.append((logits, h_n, torch.autograd.grad(loss, inputs)))
    (l1, h1, g1), (l2, h2, g2) = results
    tol = dict(rtol=1e-10, atol=1e-10)
    assert_close(l1, l2, **tol)
    for a, b in zip(state_parts(h1), state_parts(h2)):
        assert_close(a, b, **tol)
    for a, b in zip(g1, g2):
        assert_close(a, b, **tol)


@pytest.mark.parametrize("cell", GATED)
def test_every_model_builds_with_the_cell(cell):
    x = torch.randn(2, 5, 4)
    clf = SequenceClassifier(4, 6, 3, cell=cell)
    assert clf(x).shape == (2, 3) and clf.rnn.cell == cell
    ref = SequenceClassifier(4, 6, 3, cell=cell, impl="reference")
    ref.load_state_dict(clf.state_dict())
    clf.eval(), ref.eval()
    assert_close(clf(x), ref(x))
    for bidirectional in (False, True):
        tagger = SequenceTagger(4, 6, 2, num_layers=2, bidirectional=bidirectional, cell=cell)
        assert tagger(x).shape == (2, 5, 2)
    model = CharRNN(9, 8, 2, cell=cell)
    assert model.cell == cell and model.describe()["cell"] == cell
    state = model.init_state(3)
    assert [tuple(p.shape) for p in state_parts(state)] == [(2, 3, 8)] * kinds.cell_kind(cell).n_state


def test_lstm_state_is_a_pair_and_a_wrong_state_is_refused():
    model = RNN(3, 4, 2, cell="lstm")
    x = torch.randn(2, 5, 3)
    _, (h, c) = model(x)
    assert h.shape == c.shape == (2, 2, 4)
    assert_close(model(x)[0][:, -1], h[-1])
    with pytest.raises(ValueError, match=r"tuple \(h, c\)"):
        model(x, torch.zeros(2, 2, 4))
    with pytest.raises(ValueError, match=r"h0 \(c\): expected shape \(2, 2, 4\)"):
        model(x, (torch.zeros(2, 2, 4), torch.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match="one"):
        RNN(3, 4, cell="gru")(x, (torch.zeros(1, 2, 4),))
    with pytest.raises(ValueError, match="unknown cell 'relu'"):
        RNN(3, 4, cell="relu")
    assert RNN(3, 4, cell="rnn").cell == "tanh"


def test_lstm_forget_gate_bias_starts_at_one():
    cell = LSTMCell(3, 4)
    assert torch.equal(cell.Whh.bias[4:8], torch.ones(4))
    assert torch.count_nonzero(cell.Wxh.bias) == 0 and torch.count_nonzero(cell.Whh.bias) == 4


# ---- sampling ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", GATED)
def test_sampler_state_matches_forward(cell):
    """stream's state after each pick equals the full forward's state on prime + picks (B > 1)."""
    torch.manual_seed(2)
    model = CharRNN(12, hidden_size=8, num_layers=3, embed_size=5, cell=cell).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    prime = torch.randint(0, 12, (3, 4))
    gen = torch.Generator().manual_seed(0)
    picks, states = [], []
    for nxt, h in Sampler(model).stream(prime, 6, temperature=torch.tensor([0.5, 1.0, 2.0]), generator=gen):
        picks.append(nxt.clone())
        states.append([p.clone() for p in state_parts(h)])
    seq = torch.cat([prime, torch.stack(picks, dim=1)], dim=1)
    _, h_n = model(seq)
    for a, b in zip(states[-1], state_parts(h_n)):
        assert_close(a, b, rtol=1e-5, atol=1e-6)
    h0 = _state(cell, 3, 3, 8, torch.float32, requires_grad=False)
    logits, h = Sampler(model).prime(prime, h0)
    full_logits, full_h = model(prime, h0)
    assert_close(logits, full_logits[:, -1], rtol=1e-5, atol=1e-6)
    for a, b in zip(state_parts(h), state_parts(full_h)):
        assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", GATED)
def test_sampler_step_and_greedy_generate_follow_the_forward(cell):
    torch.manual_seed(5)
    model = CharRNN(10, hidden_size=8, num_layers=2, cell=cell).eval()
    idx = torch.randint(0, 10, (2, 7))
    sampler = Sampler(model)
    h = sampler.new_state(2)
    for t in range(idx.shape[1]):
        logits = sampler.step(idx[:, t], h)
    full_logits, full_h = model(idx)
    assert_close(logits, full_logits[:, -1], rtol=1e-5, atol=1e-6)
    for a, b in zip(state_parts(h), state_parts(full_h)):
        assert_close(a, b, rtol=1e-5, atol=1e-6)
    out = model.generate(idx[:, :3], 5, greedy=True)  # (2, 5)
    seq = idx[:, :3]
    for _ in range(5):  # greedy by the full forward, one character at a time
        seq = torch.cat([seq, model(seq)[0][:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, seq[:, 3:])


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("cell", GATED)
def test_sampler_at_batch_one_and_more_follows_the_forward(cell, batch):
    """Batch 1 takes the matrix-vector path, larger batches the matrix one: both equal the forward
    (logits and every layer's state after each character, over 3 layers and an embedding narrower
    than the hidden size)."""
    torch.manual_seed(7)
    model = CharRNN(11, hidden_size=6, num_layers=3, embed_size=4, cell=cell).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    idx = torch.randint(0, 11, (batch, 9))
    sampler = Sampler(model)
    h = sampler.new_state(batch)
    for t in range(idx.shape[1]):
        logits = sampler.step(idx[:, t], h)
        full_logits, full_h = model(idx[:, :t + 1])
        assert_close(logits, full_logits[:, -1], rtol=1e-5, atol=1e-6)
        for a, b in zip(state_parts(h), state_parts(full_h)):
            assert_close(a, b, rtol=1e-5, atol=1e-6)
    gen = torch.Generator().manual_seed(1)
    picks = [nxt.clone() for nxt, _ in Sampler(model).stream(idx[:, :3], 5, generator=gen)]
    again = Sampler(model).generate(idx[:, :3], 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.stack(picks, dim=1), again)
