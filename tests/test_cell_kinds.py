"""A cell kind is one module plus one registry line: the trainer, its carried state, checkpoints, the
validator and the sampler work for every kind, including one registered at runtime."""

import dataclasses
import threading

import pytest
import torch

from rnnplay.errors import UserError
from rnnplay.model import Sampler, kinds, tanh_cell
from rnnplay.model.cell import state_parts
from rnnplay.pipeline import TrainConfig, build_run, resume_config
from rnnplay.training import checkpoint as ck
from rnnplay.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXT = "the cat sat on the mat. the dog sat on the log. " * 60


@pytest.fixture
def fake_kind():
    """A fourth kind, registered at runtime: the tanh module's functions under another name."""
    kind = dataclasses.replace(tanh_cell.KIND, name="fake")
    kinds.register(kind)
    yield kind
    kinds.unregister("fake")


def _config(tmp_path, cell: str, steps: int = 6, **kw) -> TrainConfig:
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    return TrainConfig(corpus=str(corpus), steps=steps, hidden=12, layers=2, embed=6, seq_len=10, batch_size=4,
                       lr=1e-2, eval_every=3, sample_every=3, sample_len=20, device="cpu", cell=cell,
                       out=str(tmp_path / "run.pt"), **kw)


def _trainer(tmp_path, cell: str, steps: int = 6) -> Trainer:
    """A small run whose CharRNN has ``cell``, built by the one wiring point (pipeline.build_run)."""
    return Trainer(build_run(_config(tmp_path, cell, steps)), hidden_stats_hz=1000)


@pytest.mark.parametrize("cell", ["gru", "lstm", "fake"])
def test_train_sample_checkpoint_and_reload_with_any_kind(tmp_path, cell, request):
    if cell == "fake":
        request.getfixturevalue("fake_kind")
    trainer = _trainer(tmp_path, cell)
    assert trainer.run.model.cell == cell
    seen = []
    trainer.fit(seen.append, threading.Event())
    names = {type(e).__name__ for e in seen}
    assert {"Started", "StepDone", "SampleReady", "HiddenStats", "Finished"} <= names, names
    losses = [e.loss for e in seen if type(e).__name__ == "StepDone"]
    assert len(losses) == 6 and all(loss == loss for loss in losses)
    # the carried state is the kind's state type, cut from the graph
    carried = state_parts(trainer.run.state.hidden)
    assert len(carried) == kinds.cell_kind(cell).n_state
    assert all(t.shape == (2, 4, 12) and not t.requires_grad for t in carried)

    payload = ck.load_checkpoint(trainer.run.config.out)  # validated against its own description
    assert payload["model"]["cell"] == cell
    saved = state_parts(payload["data"]["hidden"])
    assert all(torch.equal(a, b) for a, b in zip(saved, carried))
    model, vocab = ck.model_from_checkpoint(payload)
    assert model.cell == cell
    for a, b in zip(model.state_dict().values(), trainer.run.model.state_dict().values()):
        assert torch.equal(a, b)
    out = Sampler(model).generate(torch.tensor([[vocab.stoi["t"]]]), 15, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 15)

    # restore_state puts the carried state back (a tuple for the LSTM) on a freshly built model
    fresh = _trainer(tmp_path, cell)
    ck.restore_state(payload, fresh.run.model, fresh.run.optimizer, fresh.run.batches, fresh.run.state, "cpu")
    assert all(torch.equal(a, b) for a, b in zip(state_parts(fresh.run.state.hidden), carried))
    assert fresh.run.state.step == 6


def _saved(tmp_path, cell):
    trainer = _trainer(tmp_path, cell, steps=2)
    trainer.fit(lambda e: None, threading.Event())
    return trainer.run.config.out, torch.load(trainer.run.config.out, weights_only=True)


def test_an_older_checkpoint_without_a_cell_loads_and_resumes_as_tanh(tmp_path):
    path, raw = _saved(tmp_path, "tanh")
    del raw["model"]["cell"], raw["config"]["cell"]
    torch.save(raw, path)
    model, _ = ck.model_from_checkpoint(ck.load_checkpoint(path))
    assert model.cell == "tanh"
    resumed = build_run(resume_config(path, steps=4), resume=path)
    assert resumed.model.cell == "tanh" and resumed.config.cell == "tanh" and resumed.state.step == 2


def test_resume_continues_the_lstm_state_and_refuses_another_cell(tmp_path):
    """Half a run, then a resume, equals the whole run: the carried (h, c) survives the checkpoint."""
    (tmp_path / "a").mkdir()
    whole = _trainer(tmp_path / "a", "lstm", steps=6)
    whole.fit(lambda e: None, threading.Event())
    (tmp_path / "b").mkdir()
    half = _trainer(tmp_path / "b", "lstm", steps=3)
    half.fit(lambda e: None, threading.Event())
    path = half.run.config.out
    with pytest.raises(UserError, match="--cell gru differs from the checkpoint's lstm"):
        resume_config(path, steps=6, cell="gru")
    rest = Trainer(build_run(resume_config(path, steps=6), resume=path))
    rest.fit(lambda e: None, threading.Event())
    assert rest.run.state.train_loss == pytest.approx(whole.run.state.train_loss, rel=1e-5, abs=1e-6)
    for a, b in zip(state_parts(rest.run.state.hidden), state_parts(whole.run.state.hidden)):
        torch.testing.assert_close(a, b)


def test_the_cell_setting_is_declared_once():
    from rnnplay import config as C

    assert TrainConfig(cell="rnn").cell == "tanh"  # char-rnn's name for the vanilla cell
    assert C.parse_assignment("cell=rnn,gru,lstm") == ("cell", ["tanh", "gru", "lstm"])  # sweeps
    assert "cell" in C.FIXED_ON_RESUME
    with pytest.raises(UserError, match="--cell choose one of tanh, gru, lstm"):
        TrainConfig(cell="relu")


def test_a_registered_kind_is_a_setting_choice(fake_kind):
    assert TrainConfig(cell="fake").cell == "fake"


def test_validator_checks_shapes_for_the_kind(tmp_path):
    path, raw = _saved(tmp_path, "lstm")
    h, c = raw["data"]["hidden"]
    for bad, words in [(h, r"lstm hidden state of shape \(2, 4, 12\), not a tuple \(h, c\)"),
                       ((h, c[:1]), r"\(\(2, 4, 12\), \(1, 4, 12\)\)")]:
        raw["data"]["hidden"] = bad
        torch.save(raw, path)
        with pytest.raises(UserError, match=words):
            ck.load_checkpoint(path)
    raw["data"]["hidden"] = (h, c)
    raw["model"]["cell"] = "gru"
    torch.save(raw, path)
    with pytest.raises(UserError, match="has a config with cell 'lstm' but a gru model"):
        ck.load_checkpoint(path)
    raw["config"]["cell"] = "gru"  # LSTM weights (4H rows) described as a GRU (3H rows)
    torch.save(raw, path)
    with pytest.raises(UserError, match=r"of shape \(48, 6\) where its model description says \(36, 6\)"):
        ck.load_checkpoint(path)
    raw["model"]["cell"] = "mystery"
    torch.save(raw, path)
    with pytest.raises(UserError, match="cell 'mystery', which this rnnplay does not know"):
        ck.load_checkpoint(path)
