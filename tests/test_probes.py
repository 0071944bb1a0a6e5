"""The hidden-state probes for every cell kind (rnnplay.training.probes, each kind's ``probe``).

The gates' saturation and the LSTM's c are checked against torch.nn.GRUCell / torch.nn.LSTMCell
with our weights copied, stepped over the same sequences, the gates recomputed from torch's own
parameters by torch's documented equations.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import torch

from rnnplay.config import TrainConfig
from rnnplay.model import CharRNN
from rnnplay.pipeline import build_run
from rnnplay.training import events as ev
from rnnplay.training import probes
from rnnplay.training.trainer import Trainer

V, E, H, L, B, T = 11, 5, 12, 2, 10, 17


def _model(cell: str) -> CharRNN:
    torch.manual_seed(3)
    model = CharRNN(V, H, L, embed_size=E, cell=cell).double()
    with torch.no_grad():
        for c in model.rnn.cells:  # larger weights: many gate activations saturate, many do not
            c.Wxh.weight.mul_(2.5)
            c.Whh.weight.mul_(2.5)
            if c.bias:
                c.Wxh.bias.uniform_(-1.0, 1.0)
                c.Whh.bias.uniform_(-1.0, 1.0)
    return model


def _torch_reference(model: CharRNN, x: torch.Tensor, h0):
    """Per layer: h, c (LSTM) over (T, b, H) and each sigmoid gate, stepping torch's cells."""
    b = x.shape[0]
    kind = model.rnn.kind
    parts = (h0,) if kind.n_state == 1 else h0
    layer_in = model.embedding(x.t())  # (T, b, E)
    hs_all, cs_all, gates_all = [], [], []
    for k, ours in enumerate(model.rnn.cells):
        mod = (torch.nn.GRUCell if kind.name == "gru" else torch.nn.LSTMCell)(ours.input_size, H).double()
        with torch.no_grad():
            mod.weight_ih.copy_(ours.Wxh.weight)
            mod.weight_hh.copy_(ours.Whh.weight)
            mod.bias_ih.copy_(ours.Wxh.bias)
            mod.bias_hh.copy_(ours.Whh.bias)
        h = parts[0][k, :b]
        c = parts[1][k, :b] if kind.name == "lstm" else None
        hs, cs, gates = [], [], []
        for t in range(T):
            pre_i = layer_in[t] @ mod.weight_ih.t() + mod.bias_ih  # torch's gate order
            pre_h = h @ mod.weight_hh.t() + mod.bias_hh
            if kind.name == "gru":  # r, z, n
                r = torch.sigmoid(pre_i[:, :H] + pre_h[:, :H])
                z = torch.sigmoid(pre_i[:, H:2 * H] + pre_h[:, H:2 * H])
                gates.append((r, z))
                h = mod(layer_in[t], h)
            else:  # i, f, g, o
                s = pre_i + pre_h
                gates.append((torch.sigmoid(s[:, :H]), torch.sigmoid(s[:, H:2 * H]), torch.sigmoid(s[:, 3 * H:])))
                h, c = mod(layer_in[t], (h, c))
                cs.append(c)
            hs.append(h)
        hs_all.append(torch.stack(hs))
        cs_all.append(torch.stack(cs) if cs else None)
        gates_all.append([torch.stack([g[j] for g in gates]) for j in range(len(gates[0]))])
        layer_in = hs_all[-1]
    return hs_all, cs_all, gates_all


def _saturated(g: torch.Tensor) -> float:
    return float(((g < 0.05) | (g > 0.95)).double().mean())


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@torch.no_grad()
def test_probe_matches_torch_cells(cell):
    model = _model(cell)
    gen = torch.Generator().manual_seed(5)
    x = torch.randint(0, V, (B, T), generator=gen)
    state = model.init_state(B, dtype=torch.float64)
    h0 = tuple(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.5 for p in
               ((state,) if cell == "gru" else state))
    h0 = h0[0] if cell == "gru" else h0
    stats = probes.hidden_stats(SimpleNamespace(model=model, state=SimpleNamespace(step=7)), (x, h0), n_units=4)
    b = probes.SAT_SEQS
    hs, cs, gates = _torch_reference(model, x[:b], h0)
    pick = torch.linspace(0, H - 1, 4).round().long()
    names = {"gru": ("r", "z"), "lstm": ("i", "f", "o")}[cell]
    assert stats.step == 7 and stats.gate_names == names
    assert len(stats.gate_saturation) == L and all(len(g) == len(names) for g in stats.gate_saturation)
    for k in range(L):
        torch.testing.assert_close(torch.tensor(stats.units[k], dtype=torch.float64), hs[k][:, 0, pick].t())
        for j in range(len(names)):
            want = _saturated(gates[k][j])
            assert stats.gate_saturation[k][j] == pytest.approx(want, abs=1.5 / gates[k][j].numel()), (k, names[j])
    fractions = [f for layer in stats.gate_saturation for f in layer]
    assert any(0.0 < f < 1.0 for f in fractions) and len(set(fractions)) > 1  # the check has something to see
    if cell == "lstm":
        assert stats.state_names == ("h", "c") and len(stats.more_units) == 1
        for k in range(L):
            torch.testing.assert_close(torch.tensor(stats.more_units[0][k], dtype=torch.float64), cs[k][:, 0, pick].t())
        assert max(abs(v) for row in stats.more_units[0][0] for v in row) > 1.0  # c, not tanh(c) or h
    else:
        assert stats.state_names == ("h",) and stats.more_units == ()


@torch.no_grad()
def test_tanh_stats_have_no_gates():
    model = _model("tanh")
    x = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(1))
    stats = probes.hidden_stats(SimpleNamespace(model=model, state=SimpleNamespace(step=1)),
                                (x, model.init_state(B, dtype=torch.float64)), n_units=3)
    assert (stats.state_names, stats.more_units, stats.gate_names, stats.gate_saturation) == (("h",), (), (), ())
    assert len(stats.units) == L and len(stats.units[0]) == 3


def _config(tmp_path, **kw):
    corpus = tmp_path / "c.txt"
    if not corpus.exists():
        corpus.write_text("the cat sat on the mat; the dog ate the log.\n" * 80)
    base = dict(corpus=str(corpus), steps=12, hidden=24, layers=2, embed=8, seq_len=16, batch_size=12,
                lr=1e-2, eval_every=100, sample_every=0, device="cpu", out=None)
    base.update(kw)
    return TrainConfig(**base)


def _fit(trainer):
    seen = []
    trainer.fit(seen.append, threading.Event())
    return seen


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gate_probes_never_change_the_training(tmp_path, cell):
    def run(hz):
        seen = _fit(Trainer(build_run(_config(tmp_path, cell=cell, dropout=0.2)), hidden_stats_hz=hz))
        return [e.loss for e in seen if isinstance(e, ev.StepDone)], [e for e in seen if isinstance(e, ev.HiddenStats)]

    quiet, _ = run(0)
    busy, stats = run(1e6)
    assert quiet == busy  # float for float
    assert len(stats) == 12 and all(len(s.gate_saturation) == 2 for s in stats)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_tapped_stats_match_an_extra_pass(tmp_path, cell):
    """The trainer's tapped states plus the probe give what an extra pass over the batch gives (the
    learning rate is tiny, so the weights the step started from and the current ones agree)."""
    run = build_run(_config(tmp_path, cell=cell, lr=1e-9, dropout=0.0))
    trainer = Trainer(run, hidden_stats_hz=1.0, hidden_units=5)
    trainer.train_step()
    trainer.train_step(tap_hidden=True)
    tapped = trainer._hidden_stats()
    redone = probes.hidden_stats(run, trainer._last_batch, 5)
    assert tapped.gate_names == redone.gate_names and tapped.state_names == redone.state_names
    torch.testing.assert_close(torch.tensor(tapped.units), torch.tensor(redone.units), atol=2e-4, rtol=0)
    torch.testing.assert_close(torch.tensor(tapped.gate_saturation), torch.tensor(redone.gate_saturation),
                               atol=3 / (16 * 8 * 24), rtol=0)
    if cell == "lstm":
        torch.testing.assert_close(torch.tensor(tapped.more_units), torch.tensor(redone.more_units),
                                   atol=5e-4, rtol=0)
