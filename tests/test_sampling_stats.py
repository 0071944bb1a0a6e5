"""The sampler's draws follow softmax(logits / T) (top-k: renormalised over the k best).

A chi-square goodness-of-fit test with a fixed seed on 40,000 draws of the first generated
character, for each of the sampler's picking paths (scalar temperature: the head pre-scaled by
1/T with its bias folded into the noise; per-row temperatures; top-k). Each test also checks the
statistic rejects a slightly wrong distribution (temperature 15% off, or the output bias
dropped), so the test can fail.
"""

import math

import pytest
import torch

from rnnplay import CharRNN

V, N = 12, 40_000


def chi2_critical(df: int, z: float = 3.719) -> float:
    """Upper critical value of chi-square with df degrees of freedom at p = 1e-4 (Wilson-Hilferty)."""
    a = 2.0 / (9.0 * df)
    return df * (1.0 - a + z * math.sqrt(a)) ** 3


def chi2(counts: torch.Tensor, probs: torch.Tensor) -> tuple[float, int]:
    """Pearson's statistic and its degrees of freedom; cells expected below 5 are pooled."""
    expected = probs.double() * counts.sum()
    big = expected >= 5
    obs = torch.cat([counts[big].double(), counts[~big].double().sum().view(1)])
    exp = torch.cat([expected[big], expected[~big].sum().view(1)])
    keep = exp > 0
    obs, exp = obs[keep], exp[keep]
    return float(((obs - exp) ** 2 / exp).sum()), int(keep.sum()) - 1


@pytest.fixture(scope="module", params=["tanh", "gru", "lstm"])
def model(request):
    """Each cell kind: the sampler reads the prime with the kind's own step (rnnplay.model.kinds)."""
    torch.manual_seed(11)
    m = CharRNN(V, hidden_size=16, num_layers=2, embed_size=8, cell=request.param).eval()
    with torch.no_grad():  # a peaked, biased head: a wrong temperature or a lost bias shows
        m.fc.weight.mul_(6.0)
        m.fc.bias.copy_(torch.linspace(-2.0, 2.0, V))
    return m


def first_draws(model, prime, **kw) -> torch.Tensor:
    """Counts (V,) of the first generated character over N rows primed alike, in one batch."""
    idx = prime.expand(N, -1).contiguous()  # (N, T)
    out = model.generate(idx, 1, generator=torch.Generator().manual_seed(1234), **kw)  # (N, 1)
    return torch.bincount(out[:, 0], minlength=V)


def next_logits(model, prime) -> torch.Tensor:
    with torch.no_grad():
        logits, _ = model(prime)  # (1, T, V)
    return logits[0, -1]  # (V,)


def assert_fits(counts, probs, wrong_probs):
    stat, df = chi2(counts, probs)
    assert stat < chi2_critical(df), f"draws do not follow the distribution: chi2 {stat:.1f}, df {df}"
    bad, bad_df = chi2(counts, wrong_probs)
    assert bad > chi2_critical(bad_df), f"the test cannot tell a wrong distribution: chi2 {bad:.1f}"


PRIME = torch.tensor([[3, 1, 4, 1, 5]])


@pytest.mark.parametrize("temperature", [0.7, 1.0, 1.6])
def test_scalar_temperature_draws_follow_softmax(model, temperature):
    logits = next_logits(model, PRIME)
    counts = first_draws(model, PRIME, temperature=temperature)
    assert_fits(counts, torch.softmax(logits / temperature, -1),
                torch.softmax(logits / (temperature * 1.15), -1))


def test_dropping_the_output_bias_would_be_caught(model):
    logits = next_logits(model, PRIME)
    counts = first_draws(model, PRIME, temperature=1.0)
    assert_fits(counts, torch.softmax(logits, -1), torch.softmax(logits - model.fc.bias.detach(), -1))


def test_per_row_temperatures_draw_from_their_own_softmax(model):
    logits = next_logits(model, PRIME)
    temps = torch.tensor([0.8, 1.5]).repeat_interleave(N // 2)  # rows 0..N/2-1 at 0.8, the rest at 1.5
    idx = PRIME.expand(N, -1).contiguous()
    out = model.generate(idx, 1, temperature=temps, generator=torch.Generator().manual_seed(99))[:, 0]
    for half, t in ((out[: N // 2], 0.8), (out[N // 2:], 1.5)):
        counts = torch.bincount(half, minlength=V)
        assert_fits(counts, torch.softmax(logits / t, -1), torch.softmax(logits / (t * 1.15), -1))


@pytest.mark.parametrize("top_k", [3, 6])
def test_top_k_draws_from_the_renormalised_best_k(model, top_k):
    logits = next_logits(model, PRIME)
    T = 1.2
    counts = first_draws(model, PRIME, temperature=T, top_k=top_k)
    best = torch.topk(logits, top_k).indices
    assert set(torch.nonzero(counts).flatten().tolist()) <= set(best.tolist())
    masked = torch.full_like(logits, float("-inf"))
    masked[best] = logits[best]
    assert_fits(counts, torch.softmax(masked / T, -1), torch.softmax(masked / (T * 1.3), -1))


def test_greedy_is_the_argmax(model):
    logits = next_logits(model, PRIME)
    counts = first_draws(model, PRIME, greedy=True)
    assert counts[logits.argmax()] == N
