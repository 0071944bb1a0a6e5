"""Hidden-state inspection: correlations on a constructed case, shapes on a trained model, sparklines."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnplay.classify.experiment import ClassifyConfig, run_experiment
from rnnplay.classify.inspect import Inspection, inspect_hidden, inspection_to_dict, pearson, running_mean, sparkline


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Probe(nn.Module):
    """A stand-in 'rnn' whose last-layer states are known functions of the running mean."""

    def __init__(self, noise: torch.Tensor) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.noise = noise  # (N, T)

    def forward(self, x):
        rm = running_mean(x) * self.scale  # (N, T)
        const = torch.full_like(rm, 0.3)
        states = torch.stack([self.noise, rm, -2 * rm, rm + self.noise, const], dim=-1)  # (N, T, 5)
        return states, None


class _Model(nn.Module):
    def __init__(self, noise):
        super().__init__()
        self.rnn = _Probe(noise)
        self.fc = nn.Linear(5, 2)
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.bias.zero_()
            self.fc.weight[1, 1] = 50.0  # logit of class 1 = 50 * running mean


def test_correlations_on_a_constructed_case():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 12, 3, generator=g)
    noise = torch.randn(40, 12, generator=g)
    model = _Model(noise).train()
    ins = inspect_hidden(model, x, n_sequences=3, top_k=3)
    assert isinstance(ins, Inspection) and model.training  # mode restored
    r = ins.unit_correlation
    assert r[1] == pytest.approx(1.0) and r[2] == pytest.approx(-1.0) and r[4] == 0.0
    assert abs(r[0]) < 0.2 and 0.2 < r[3] < 0.95
    assert [u for u, _ in ins.top_units][:2] in ([1, 2], [2, 1]) and ins.top_units[2][0] == 3
    assert ins.n_points == 40 * 12 and ins.hidden_size == 5 and ins.seq_len == 12
    # the prediction is a monotone function of the running mean: the last step is always right
    assert ins.accuracy_by_step[-1] == 1.0 and ins.prediction_mean_r > 0.5
    s = ins.sequences[0]
    assert len(ins.sequences) == 3 and len(s.hidden) == 5 and len(s.hidden[1]) == 12
    assert s.hidden[1] == pytest.approx(s.running_mean)
    assert s.running_mean[-1] == pytest.approx(x[0].mean().item(), abs=1e-6)
    assert s.label == int(x[0].mean() > 0) == s.predicted
    assert s.prob_class1 == pytest.approx(torch.sigmoid(50 * torch.tensor(s.running_mean)).tolist(), abs=1e-5)
    d = inspection_to_dict(ins, units_per_sequence=2)
    assert set(d["sequences"][0]["hidden"]) == {"1", "2"} and d["top_units"][0]["unit"] in (1, 2)


def test_pearson_matches_torch_corrcoef():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(100, 4, generator=g)
    b = a[:, 0] * 0.5 + torch.randn(100, generator=g)
    want = [torch.corrcoef(torch.stack([a[:, k], b]))[0, 1].item() for k in range(4)]
    assert pearson(a, b).tolist() == pytest.approx(want, abs=1e-6)


def test_running_mean():
    x = torch.tensor([[[1.0, 3.0], [0.0, -2.0], [5.0, 5.0]]])  # (1, 3, 2)
    assert running_mean(x).tolist() == [[2.0, 0.5, 2.0]]


def test_inspect_a_trained_classifier():
    result = run_experiment(ClassifyConfig(epochs=1, n_train=256, n_test=64))
    ins = inspect_hidden(result.model, result.data.test.x, result.data.test.y, n_sequences=2, top_k=4)
    assert ins.hidden_size == 64 and ins.seq_len == 20 and ins.n_points == 64 * 20
    assert len(ins.unit_correlation) == 64 and len(ins.top_units) == 4
    assert all(-1.0 <= r <= 1.0 for r in ins.unit_correlation)
    rs = [abs(r) for _, r in ins.top_units]
    assert rs == sorted(rs, reverse=True) and rs[0] == max(abs(r) for r in ins.unit_correlation)
    assert all(-1.0 <= h <= 1.0 for s in ins.sequences for unit in s.hidden for h in unit)  # tanh
    assert all(0.0 <= p <= 1.0 for s in ins.sequences for p in s.prob_class1)
    # the readout at the last step is the model's own prediction
    with torch.no_grad():
        pred = result.model(result.data.test.x).argmax(-1)
    acc = (pred == result.data.test.y).double().mean().item()
    assert ins.accuracy_by_step[-1] == pytest.approx(acc)
    assert [s.predicted for s in ins.sequences] == pred[:2].tolist()
    with pytest.raises(ValueError, match="one label per sequence"):
        inspect_hidden(result.model, result.data.test.x, result.data.test.y[:3])


def test_sparkline():
    assert sparkline([]) == ""
    assert sparkline([0.0, 0.5, 1.0]) == "▁▅█"
    assert sparkline([2.0, 2.0]) == "▄▄"
    assert sparkline([-5.0, 5.0], -1.0, 1.0) == "▁█"  # clipped to the fixed scale
    assert len(sparkline([0.1] * 20, -1, 1)) == 20
