"""Exact resume: N steps in one run == N/2 steps, save, resume, N/2 more (losses and weights)."""

import threading

import pytest
import torch

from rnnplay.errors import UserError
from rnnplay.pipeline import TrainConfig, build_run, resume_config
from rnnplay.training import events as ev
from rnnplay.training.checkpoint import load_checkpoint
from rnnplay.training.trainer import Trainer

TEXT = "to be or not to be, that is the question; whether tis nobler in the mind. " * 80


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _losses(trainer, steps=None):
    if steps is not None:
        trainer.set_total_steps(steps)
    out = []
    trainer.fit(lambda e: isinstance(e, ev.StepDone) and out.append(e.loss), threading.Event())
    return out


@pytest.mark.parametrize("dropout, schedule, how", [(0.3, "constant", "steps"), (0.0, "cosine", "stop")])
def test_half_then_resume_equals_one_run(tmp_path, dropout, schedule, how):
    """how="steps": the first run has --steps N/2; how="stop": a run of N steps is stopped at N/2 (Ctrl-C).

    A cosine schedule depends on the total, so it is tested with the stop, as a user would meet it.
    """
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    # 20 steps per epoch here, so the 40 steps cross epoch borders (new random offsets, state resets)
    cfg = TrainConfig(corpus=str(corpus), steps=40, hidden=24, layers=2, embed=8, seq_len=32, batch_size=8,
                      dropout=dropout, lr=5e-3, eval_every=7, sample_every=9, sample_len=20, device="cpu",
                      lr_schedule=schedule, out=str(tmp_path / "full.pt"))
    full = Trainer(build_run(cfg))
    full_losses = _losses(full)

    half_cfg = TrainConfig(**{**cfg.__dict__, "steps": 20 if how == "steps" else 40, "out": str(tmp_path / "half.pt")})
    first, stop = [], threading.Event()

    def on(e):
        if isinstance(e, ev.StepDone):
            first.append(e.loss)
            if e.step == 20:
                stop.set()

    Trainer(build_run(half_cfg)).fit(on, stop)
    assert load_checkpoint(half_cfg.out)["step"] == 20
    resumed_cfg = resume_config(half_cfg.out, steps=40)
    resumed = Trainer(build_run(resumed_cfg, resume=half_cfg.out))
    assert resumed.step == 20
    second = _losses(resumed)

    assert len(full_losses) == 40 and first + second == full_losses  # exactly, float for float
    for (k, a), b in zip(full.run.model.state_dict().items(), resumed.run.model.state_dict().values()):
        assert torch.equal(a, b), k
    a, b = load_checkpoint(cfg.out), load_checkpoint(half_cfg.out)
    assert torch.equal(a["history"]["train_loss"], b["history"]["train_loss"])
    va = dict(zip(a["history"]["val_step"].tolist(), a["history"]["val_loss"].tolist()))
    vb = dict(zip(b["history"]["val_step"].tolist(), b["history"]["val_loss"].tolist()))
    assert set(va) <= set(vb) and all(va[s] == vb[s] for s in va)  # (a finished half run adds step 20)


def test_resume_refuses_a_changed_model_or_corpus(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    cfg = TrainConfig(corpus=str(corpus), steps=3, hidden=16, layers=1, embed=8, seq_len=16, batch_size=4,
                      sample_every=0, device="cpu", out=str(tmp_path / "r.pt"))
    Trainer(build_run(cfg), hidden_stats_hz=0).fit(lambda e: None, threading.Event())
    with pytest.raises(UserError, match="--hidden 32 differs from the checkpoint's 16"):
        resume_config(cfg.out, hidden=32)
    assert resume_config(cfg.out, lr=1e-4, steps=9).lr == 1e-4  # run-time settings may change
    corpus.write_text(TEXT.replace("question", "answer!!"))
    with pytest.raises(UserError, match="not the text checkpoint"):
        build_run(resume_config(cfg.out, steps=6), resume=cfg.out)
