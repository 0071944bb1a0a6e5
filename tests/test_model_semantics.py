"""Semantics from the seed: dropout placement, bidirectional context, sizes, shape errors, paths."""

import pytest
import torch
from torch.testing import assert_close

from rnnplay import RNN, BidirectionalRNN, CharRNN, SequenceClassifier, SequenceTagger
from rnnplay.model.tanh_cell import Recurrence


def test_classifier_has_13314_parameters():
    model = SequenceClassifier(10, 64, 2)
    assert sum(p.numel() for p in model.parameters()) == 13_314
    assert model(torch.randn(32, 20, 10)).shape == (32, 2)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_tagger_shapes(bidirectional):
    model = SequenceTagger(3, 8, 5, num_layers=2, bidirectional=bidirectional)
    assert model(torch.randn(4, 9, 3)).shape == (4, 9, 5)


def test_charrnn_shapes():
    model = CharRNN(30, hidden_size=16, num_layers=3, embed_size=8)
    logits, h_n = model(torch.randint(0, 30, (2, 11)))
    assert logits.shape == (2, 11, 30) and h_n.shape == (3, 2, 16)


@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_dropout_ignored_in_eval(impl):
    model = RNN(4, 6, num_layers=3, dropout=0.5, impl=impl).eval()
    x = torch.randn(5, 7, 4)
    assert_close(model(x)[0], model.to_torch().eval()(x)[0])
    assert torch.equal(model(x)[0], model(x)[0])


@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_dropout_only_between_layers(impl):
    torch.manual_seed(1)
    model = RNN(4, 6, num_layers=3, dropout=0.5, impl=impl)
    x = torch.randn(5, 7, 4)
    model.eval()
    out_eval, h_eval = model(x)
    model.train()
    out_train, h_train = model(x)
    # dropout is active between layers ...
    assert not torch.allclose(out_train, out_eval)
    # ... but never on the last layer's outputs: tanh never gives exact zeros, dropout would
    assert (out_train != 0).all()
    assert_close(h_train[-1], out_train[:, -1])
    # ... and never inside a layer's recurrence: layer 1 sees no dropout at all
    assert_close(h_train[0], h_eval[0])


def test_single_layer_dropout_warns_and_does_nothing():
    with pytest.warns(UserWarning, match="no effect"):
        model = RNN(4, 6, num_layers=1, dropout=0.5)
    x = torch.randn(2, 5, 4)
    model.train()
    a = model(x)[0]
    model.eval()
    assert_close(a, model(x)[0])


@pytest.mark.parametrize("batch_first", [True, False])
def test_bidirectional_context(batch_first):
    H, T = 5, 6
    model = BidirectionalRNN(3, H, num_layers=2, batch_first=batch_first).eval()
    x = torch.randn(2, T, 3) if batch_first else torch.randn(T, 2, 3)
    x2 = x.clone()
    if batch_first:
        x2[:, -1] += 1.0
    else:
        x2[-1] += 1.0
    out, out2 = model(x)[0], model(x2)[0]
    if not batch_first:
        out, out2 = out.transpose(0, 1), out2.transpose(0, 1)  # (B, T, 2H)
    changed = (out - out2).abs() > 1e-7  # (B, T, 2H)
    fwd, bwd = changed[..., :H], changed[..., H:]
    assert not fwd[:, :-1].any(), "forward outputs before the last step must not see x_T"
    assert fwd[:, -1].any()
    assert bwd.any(dim=-1).all(), "backward outputs at every step must see x_T"


def test_bidirectional_final_state_layout():
    model = BidirectionalRNN(3, 4, num_layers=2).eval()
    x = torch.randn(2, 5, 3)
    out, h_n = model(x)
    assert h_n.shape == (4, 2, 4)
    _, fwd_h = model.forward_rnn(x)
    _, bwd_h = model.backward_rnn(x.flip(1))
    assert_close(h_n[0::2], fwd_h)
    assert_close(h_n[1::2], bwd_h)
    assert_close(out[:, -1, :4], h_n[2])  # last layer forward, at the last step
    assert_close(out[:, 0, 4:], h_n[3])  # last layer backward, at the first step


@pytest.mark.parametrize(
    "call, expected, got",
    [
        (lambda: RNN(5, 7)(torch.randn(2, 3, 4)), "(*, *, 5)", "(2, 3, 4)"),
        (lambda: RNN(5, 7)(torch.randn(3, 5)), "(*, *, 5)", "(3, 5)"),
        (lambda: RNN(5, 7, num_layers=2)(torch.randn(2, 3, 5), torch.zeros(1, 2, 7)), "(2, 2, 7)", "(1, 2, 7)"),
        (lambda: RNN(5, 7, batch_first=False)(torch.randn(3, 2, 5), torch.zeros(1, 3, 7)), "(1, 2, 7)", "(1, 3, 7)"),
        (lambda: SequenceClassifier(10, 64, 2)(torch.randn(4, 20, 9)), "(*, *, 10)", "(4, 20, 9)"),
        (lambda: CharRNN(10, 8)(torch.zeros(3, dtype=torch.long)), "(*, *)", "(3)"),
        (lambda: BidirectionalRNN(3, 4)(torch.randn(2, 5, 3), torch.zeros(1, 2, 4)), "(2, 2, 4)", "(1, 2, 4)"),
    ],
)
def test_shape_errors_name_expected_and_received(call, expected, got):
    with pytest.raises(ValueError) as info:
        call()
    assert expected in str(info.value) and got in str(info.value)


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("num_layers", [1, 3])
def test_fast_and_reference_agree(batch_first, num_layers):
    fast = RNN(4, 6, num_layers, batch_first=batch_first, dropout=0.3 if num_layers > 1 else 0.0).double().eval()
    ref = RNN(4, 6, num_layers, batch_first=batch_first, dropout=0.3 if num_layers > 1 else 0.0, impl="reference").double().eval()
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(*((3, 8, 4) if batch_first else (8, 3, 4)), dtype=torch.double, requires_grad=True)
    h0 = torch.randn(num_layers, 3, 6, dtype=torch.double, requires_grad=True)
    results = []
    for model in (fast, ref):
        out, h_n = model(x, h0)
        loss = out.pow(2).sum() + h_n.sum()
        results.append((out, h_n, torch.autograd.grad(loss, [x, h0, *model.parameters()])))
    (o1, h1, g1), (o2, h2, g2) = results
    assert_close(o1, o2)
    assert_close(h1, h2)
    for a, b in zip(g1, g2):
        assert_close(a, b)


def test_recurrence_gradcheck():
    T, B, H = 5, 3, 4
    xp = torch.randn(T, B, H, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(B, H, dtype=torch.double, requires_grad=True)
    W = (0.5 * torch.randn(H, H, dtype=torch.double)).requires_grad_()
    assert torch.autograd.gradcheck(Recurrence.apply, (xp, h0, W))


def test_fast_path_in_train_mode_with_dropout_backpropagates():
    model = RNN(4, 6, num_layers=2, dropout=0.5)
    x = torch.randn(3, 5, 4, requires_grad=True)
    out, _ = model(x)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert x.grad is not None
