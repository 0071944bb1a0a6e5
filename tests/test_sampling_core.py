"""CharRNN.generate and the one-step Sampler against the full forward pass."""

import pytest
import torch
from torch.testing import assert_close

from rnnplay import CharRNN
from rnnplay.model.sampler import Sampler


@pytest.fixture
def model():
    torch.manual_seed(3)
    return CharRNN(20, hidden_size=16, num_layers=3, embed_size=8).eval()


def test_step_matches_forward(model):
    idx = torch.randint(0, 20, (2, 9))
    logits_full, h_full = model(idx)
    sampler = Sampler(model)
    h = sampler.new_state(2)
    for t in range(9):
        logits = sampler.step(idx[:, t], h)
        assert_close(logits, logits_full[:, t], rtol=1e-5, atol=1e-5)
    assert_close(h, h_full, rtol=1e-5, atol=1e-5)


def test_greedy_generation_equals_rerunning_the_prefix(model):
    prime = torch.tensor([1, 2, 3])
    new = model.generate(prime, 15, greedy=True)
    seq = prime.clone()
    for _ in range(15):  # the slow way: re-run everything for each character
        logits, _ = model(seq.unsqueeze(0))
        seq = torch.cat([seq, logits[0, -1].argmax().view(1)])
    assert torch.equal(new, seq[3:])


def test_same_seed_same_text_and_shapes(model):
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    a = model.generate(torch.tensor([4]), 40, temperature=0.8, generator=g())
    b = model.generate(torch.tensor([4]), 40, temperature=0.8, generator=g())
    c = model.generate(torch.tensor([4]), 40, temperature=0.8, generator=torch.Generator().manual_seed(8))
    assert a.shape == (40,) and torch.equal(a, b) and not torch.equal(a, c)
    batched = model.generate(torch.tensor([[4], [5], [6]]), 12, temperature=torch.tensor([0.5, 1.0, 2.0]))
    assert batched.shape == (3, 12)


def test_stream_gives_same_characters_as_generate(model):
    kw = dict(temperature=1.3, top_k=5)
    a = model.generate(torch.tensor([1, 2]), 30, generator=torch.Generator().manual_seed(1), **kw)
    streamed = [int(i) for i, _ in Sampler(model).stream(torch.tensor([[1, 2]]), 30, generator=torch.Generator().manual_seed(1), **kw)]
    assert a.tolist() == streamed


def test_top_k_one_is_greedy(model):
    a = model.generate(torch.tensor([1, 2]), 20, top_k=1, temperature=2.0)
    b = model.generate(torch.tensor([1, 2]), 20, greedy=True)
    assert torch.equal(a, b)


def test_temperature_sharpens(model):
    # a very low temperature almost always picks the argmax
    sampler = Sampler(model)
    logits = torch.randn(1, 20) * 3
    picks = torch.stack([Sampler.choose(logits, 0.05) for _ in range(50)])
    assert (picks == logits.argmax()).float().mean() > 0.95
    assert sampler.vocab_size == 20


@pytest.mark.parametrize("kwargs", [dict(temperature=0.0), dict(temperature=-1.0), dict(top_k=0), dict(length=-1)])
def test_bad_sampling_arguments(model, kwargs):
    args = dict(length=5) | kwargs
    with pytest.raises(ValueError):
        model.generate(torch.tensor([1]), **args)


def test_sampler_is_a_snapshot(model):
    sampler = Sampler(model)
    before = model.generate(torch.tensor([1]), 10, greedy=True)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    after_snapshot = sampler.generate(torch.tensor([[1]]), 10, greedy=True)[0]
    assert torch.equal(before, after_snapshot)
