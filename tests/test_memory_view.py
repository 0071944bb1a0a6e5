"""The memory view (rnnplay.generate.saliency): |d log p(x_t | x_<t) / d e_s| for every s < t,
against autograd through the reference loop and against finite differences, for every cell."""

import pytest
import torch

from rnnplay import CharRNN
from rnnplay.generate.memory import saliency

CELLS = ["tanh", "gru", "lstm"]
V = 6
TEXT = torch.tensor([1, 4, 2, 2, 5, 0, 3, 1, 4])


def tiny(cell: str, impl: str = "fast") -> CharRNN:
    torch.manual_seed(7)
    return CharRNN(V, hidden_size=7, num_layers=2, embed_size=3, cell=cell, impl=impl).eval()


def logp_from_embeddings(model: CharRNN, emb: torch.Tensor, target: int, state=None) -> torch.Tensor:
    """log p(target) after reading the embeddings emb (1, t, E), through the reference loop."""
    out, _ = model.rnn.forward_reference(emb, state)  # (1, t, H)
    return torch.log_softmax(model.fc(out[:, -1]), dim=-1)[0, target]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("t", [1, 4, 8])
def test_memory_view_equals_autograd_through_the_reference_loop(cell, t):
    model = tiny(cell)
    got = saliency(model, TEXT, t)
    emb = model.embedding.weight[TEXT[:t]].detach().clone().unsqueeze(0).requires_grad_(True)  # (1, t, E)
    lp = logp_from_embeddings(model, emb, int(TEXT[t]))
    (grad,) = torch.autograd.grad(lp, emb)
    assert got.norms.shape == (t,) and got.target == int(TEXT[t])
    torch.testing.assert_close(got.norms, grad[0].norm(dim=-1), rtol=1e-4, atol=1e-6)
    assert got.logp == pytest.approx(float(lp.detach()), rel=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_memory_view_against_finite_differences(cell):
    model = tiny(cell).double()
    t, target = 6, 2  # another character than the text's own one at position 6
    got = saliency(model, TEXT, t, target=target)
    base = model.embedding.weight[TEXT[:t]].detach().clone().unsqueeze(0)  # (1, t, E)
    eps = 1e-6
    fd = torch.zeros(t, base.shape[-1], dtype=torch.float64)
    with torch.no_grad():
        for s in range(t):
            for e in range(base.shape[-1]):
                plus, minus = base.clone(), base.clone()
                plus[0, s, e] += eps
                minus[0, s, e] -= eps
                fd[s, e] = (logp_from_embeddings(model, plus, target) - logp_from_embeddings(model, minus, target)) / (2 * eps)
    torch.testing.assert_close(got.norms.double(), fd.norm(dim=-1), rtol=1e-4, atol=1e-7)
    assert bool((fd.norm(dim=-1) > 0).all())  # every earlier character matters a little: the test can fail


@pytest.mark.parametrize("cell", CELLS)
def test_a_window_with_the_carried_state_gives_the_same_norms(cell):
    model = tiny(cell)
    full = saliency(model, TEXT, 8)
    with torch.no_grad():
        _, state = model(TEXT[:5].unsqueeze(0))  # the state after the first 5 characters
    windowed = saliency(model, TEXT, 8, window=3, state=state)
    torch.testing.assert_close(windowed.norms, full.norms[5:], rtol=1e-4, atol=1e-6)
    assert windowed.logp == pytest.approx(full.logp, rel=1e-5)


def test_position_past_the_text_needs_a_target_and_bad_positions_are_refused():
    model = tiny("tanh")
    past = saliency(model, TEXT, TEXT.numel(), target=3)
    assert past.norms.shape == (TEXT.numel(),) and past.target == 3
    for kw in [dict(position=0), dict(position=TEXT.numel() + 1), dict(position=TEXT.numel())]:
        with pytest.raises(ValueError):
            saliency(model, TEXT, **kw)
    assert model.training is False
