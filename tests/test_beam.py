"""Beam search over characters against an exhaustive search on a tiny model (every cell kind)."""

import itertools

import pytest
import torch

from rnnplay import CharRNN
from rnnplay.generate.beam import beam_search

V = 4
PRIME = torch.tensor([0, 1, 3])


def tiny(cell: str) -> CharRNN:
    torch.manual_seed(3)
    m = CharRNN(V, hidden_size=8, num_layers=2, embed_size=5, cell=cell).eval()
    with torch.no_grad():
        m.fc.weight.mul_(3.0)  # a peaked model: the best sequence is not the greedy one everywhere
    return m


def logp_of(model, seqs: list[tuple[int, ...]]) -> torch.Tensor:
    """log p(seq | PRIME) for sequences of one length, computed by one plain forward pass."""
    x = torch.cat([PRIME.expand(len(seqs), -1), torch.tensor(seqs)], dim=1)  # (S, P + n)
    with torch.no_grad():
        logits, _ = model(x[:, :-1])  # (S, P + n - 1, V)
    lp = torch.log_softmax(logits[:, PRIME.numel() - 1:].double(), -1)  # (S, n, V)
    return lp.gather(-1, x[:, PRIME.numel():].unsqueeze(-1)).squeeze(-1).sum(-1)  # (S,)


def all_hypotheses(model, length: int, stop: tuple[int, ...] | None, alpha: float):
    """Every sequence beam search may return: ending at its first stop, or `length` long without one."""
    out = {}
    for n in range(1, length + 1):
        seqs = list(itertools.product(range(V), repeat=n))
        keep = []
        for s in seqs:
            ends = [i + len(stop) for i in range(n - len(stop) + 1) if s[i:i + len(stop)] == stop] if stop else []
            if (ends and ends[0] == n) or (not ends and n == length):
                keep.append(s)
        if keep:
            for s, lp in zip(keep, logp_of(model, keep).tolist()):
                out[s] = (lp, lp / n ** alpha)
    return out


CELLS = ["tanh", "gru", "lstm"]


@pytest.mark.parametrize("cell", CELLS)
def test_wide_beam_equals_exhaustive_search(cell):
    model = tiny(cell)
    space = all_hypotheses(model, 4, None, 1.0)
    hyps = beam_search(model, PRIME, 4, width=V ** 4)
    best = max(space, key=lambda s: space[s][1])
    assert hyps[0].tokens == best and not hyps[0].finished
    assert len(hyps) == len(space)  # every sequence was kept and ranked
    for h in hyps:
        assert h.logp == pytest.approx(space[h.tokens][0], abs=1e-9 + 1e-5 * abs(h.logp))
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


@pytest.mark.parametrize("cell", CELLS)
def test_wide_beam_with_a_stop_equals_exhaustive_length_normalised_search(cell):
    model = tiny(cell)
    stop = (2, 2)
    for alpha in (0.0, 1.0):
        space = all_hypotheses(model, 4, stop, alpha)
        hyps = beam_search(model, PRIME, 4, width=V ** 4, stop=stop, alpha=alpha)
        ranked = sorted(space, key=lambda s: -space[s][1])
        assert hyps[0].tokens == ranked[0], alpha
        assert hyps[0].score == pytest.approx(space[ranked[0]][1], rel=1e-5)
        for h in hyps:
            assert h.finished == (h.tokens[-2:] == stop) and h.tokens in space
    # a stop reached early competes by its per-character score, not its (larger) total log-probability
    assert any(len(h.tokens) < 4 for h in beam_search(model, PRIME, 4, width=V ** 4, stop=stop))


@pytest.mark.parametrize("cell", CELLS)
def test_narrow_beams_are_consistent_and_deterministic(cell):
    model = tiny(cell)
    space = all_hypotheses(model, 5, None, 1.0)
    best = max(v[1] for v in space.values())
    greedy = model.generate(PRIME, 5, greedy=True)
    one = beam_search(model, PRIME, 5, width=1)
    assert one[0].tokens == tuple(greedy.tolist())  # width 1 is greedy decoding
    for width in (1, 2, 3, 8, V ** 5):
        hyps = beam_search(model, PRIME, 5, width=width)
        assert hyps == beam_search(model, PRIME, 5, width=width)  # deterministic
        assert hyps[0].score <= best + 1e-6 and hyps[0].logp == pytest.approx(space[hyps[0].tokens][0], rel=1e-5)
    assert hyps[0].score == pytest.approx(best)


def test_bad_arguments():
    model = tiny("tanh")
    for kw in [dict(length=0, width=2), dict(length=3, width=0)]:
        with pytest.raises(ValueError):
            beam_search(model, PRIME, **kw)
    with pytest.raises(ValueError):
        beam_search(model, torch.tensor([], dtype=torch.long), 3, 2)
