"""The trainer: learning, events, stop/pause/continue, the lock, the divergence guard."""

import math
import threading
import time

import pytest
import torch

from rnnplay.pipeline import TrainConfig, build_run
from rnnplay.training import events as ev
from rnnplay.training.checkpoint import load_checkpoint
from rnnplay.training.trainer import Trainer

TEXT = "the cat sat on the mat. the dog sat on the log. " * 120


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(tmp_path, **kw):
    corpus = tmp_path / "c.txt"
    if not corpus.exists():
        corpus.write_text(TEXT)
    base = dict(corpus=str(corpus), steps=40, hidden=32, layers=2, embed=16, seq_len=16, batch_size=8,
                lr=1e-2, eval_every=10, sample_every=20, sample_len=40, device="cpu", out=str(tmp_path / "run.pt"))
    base.update(kw)
    return TrainConfig(**base)


def _fit(trainer, stop=None, on=None):
    seen = []

    def emit(e):
        seen.append(e)
        if on is not None:
            on(e)

    trainer.fit(emit, stop or threading.Event())
    return seen


def test_loss_goes_down_and_events_are_in_order(tmp_path):
    trainer = Trainer(build_run(_config(tmp_path)), hidden_stats_hz=1000)
    seen = _fit(trainer)
    assert isinstance(seen[0], ev.Started) and isinstance(seen[-1], ev.Finished)
    assert seen[-1].reason == "completed" and seen[-1].step == 40
    steps = [e for e in seen if isinstance(e, ev.StepDone)]
    assert [e.step for e in steps] == list(range(1, 41))
    first, last = sum(e.loss for e in steps[:5]) / 5, sum(e.loss for e in steps[-5:]) / 5
    assert last < first - 0.8, (first, last)
    evals = [e for e in seen if isinstance(e, ev.EvalDone)]
    assert [(e.step, e.exact) for e in evals] == [(10, False), (20, False), (30, False), (40, False), (40, True)]
    assert evals[-2].val_loss < seen[0].run.references.unigram
    samples = [e for e in seen if isinstance(e, ev.SampleReady)]
    assert [e.step for e in samples] == [20, 40] and all(len(s.text) == 40 for s in samples)
    hs = [e for e in seen if isinstance(e, ev.HiddenStats)]
    assert hs and len(hs[0].units) == 2 and len(hs[0].units[0]) == 8 and len(hs[0].units[0][0]) == 16
    assert all(0.0 <= s <= 1.0 for s in hs[0].saturation)
    saved = {e.reason for e in seen if isinstance(e, ev.CheckpointSaved)}
    assert {"best", "finished"} <= saved
    info = seen[0].run
    assert info.corpus.vocab_size == len(set(TEXT)) and info.config == trainer.config
    assert info.references.uniform == pytest.approx(math.log(len(set(TEXT))))
    assert info.references.bigram < info.references.unigram < info.references.uniform
    assert seen[-1].summary.step == 40 and seen[-1].summary.best_checkpoint is not None


def test_stop_saves_and_fit_again_continues(tmp_path):
    cfg = _config(tmp_path, steps=30, sample_every=0)
    trainer = Trainer(build_run(cfg), hidden_stats_hz=0)
    stop = threading.Event()
    seen = _fit(trainer, stop, on=lambda e: isinstance(e, ev.StepDone) and e.step == 7 and stop.set())
    assert seen[-1] == ev.Finished(7, "stopped", summary=seen[-1].summary)
    assert any(isinstance(e, ev.CheckpointSaved) and e.reason == "stopped" for e in seen)
    assert load_checkpoint(cfg.out)["step"] == 7
    stop.clear()
    seen2 = _fit(trainer, stop)  # pause/resume in one process
    assert seen2[0].step == 7 and seen2[0].resumed
    assert [e.step for e in seen2 if isinstance(e, ev.StepDone)] == list(range(8, 31))
    assert seen2[-1].reason == "completed" and load_checkpoint(cfg.out)["step"] == 30


def test_lock_lets_another_thread_sample_between_steps(tmp_path):
    cfg = _config(tmp_path, steps=10_000, sample_every=0, eval_every=1000, out=None)
    trainer = Trainer(build_run(cfg), hidden_stats_hz=0)
    stop = threading.Event()
    worker = threading.Thread(target=lambda: trainer.fit(lambda e: None, stop))
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while trainer.step < 3:
            assert time.monotonic() < deadline, "the trainer made no 3 steps in 60 s"
            time.sleep(0.01)
        with trainer.lock:
            at = trainer.step
            w = trainer.run.model.fc.weight.clone()
            assert trainer.step == at  # no step runs while we hold the lock
            assert torch.equal(w, trainer.run.model.fc.weight)
        s = trainer.sampler()
        out = s.generate(torch.zeros(1, 1, dtype=torch.long), 20, generator=torch.Generator().manual_seed(0))
        assert len(trainer.vocab.decode(out[0])) == 20
    finally:
        stop.set()
        worker.join(30)
    assert not worker.is_alive() and trainer.step >= 3


def test_huge_learning_rate_is_caught_and_last_good_weights_kept(tmp_path):
    cfg = _config(tmp_path, lr=50.0, clip=0.0, steps=200, sample_every=0)
    trainer = Trainer(build_run(cfg), hidden_stats_hz=0)
    seen = _fit(trainer)
    failed = seen[-1]
    assert isinstance(failed, ev.Failed), seen[-1]
    assert failed.diverged and "diverged" in failed.message and "--lr" in failed.message and "--clip" in failed.message
    assert all(torch.isfinite(p).all() for p in trainer.run.model.parameters())
    saved = load_checkpoint(cfg.out)
    assert saved["reason"] == "diverged" and saved["step"] == trainer.step == failed.step
    assert all(torch.isfinite(t).all() for t in saved["weights"].values())


def test_nan_loss_stops_before_the_update(tmp_path, monkeypatch):
    cfg = _config(tmp_path, steps=100, sample_every=0, eval_every=50)
    run = build_run(cfg)
    trainer = Trainer(run, hidden_stats_hz=0)
    forward = run.model.forward
    calls = {"n": 0}

    def poisoned(idx, h0=None):
        logits, h = forward(idx, h0)
        calls["n"] += run.model.training  # count training steps, not validation passes
        if run.model.training and calls["n"] == 57:  # step 57: after the snapshot at step 50
            logits = logits * float("nan")
        return logits, h

    monkeypatch.setattr(run.model, "forward", poisoned)
    seen = _fit(trainer)
    assert isinstance(seen[-1], ev.Failed) and "nan" in seen[-1].message
    assert trainer.step == 50 and "diverged at step 57" in seen[-1].message
    assert all(torch.isfinite(p).all() for p in run.model.parameters())
    assert load_checkpoint(cfg.out)["step"] == 50


def test_out_none_writes_nothing(tmp_path):
    cfg = _config(tmp_path, steps=12, out=None, sample_every=0)
    seen = _fit(Trainer(build_run(cfg), hidden_stats_hz=0))
    assert not any(isinstance(e, ev.CheckpointSaved) for e in seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt"]


def test_cosine_schedule_warms_up_and_decays(tmp_path):
    cfg = _config(tmp_path, steps=200, lr_schedule="cosine", out=None)
    s = build_run(cfg).schedule
    assert s(0) < s(9) == pytest.approx(cfg.lr)
    assert s(199) == pytest.approx(0.1 * cfg.lr, rel=0.01)


def test_hidden_stats_and_samples_never_change_the_training(tmp_path):
    def losses(hz, sample_every):
        cfg = _config(tmp_path, steps=15, dropout=0.2, sample_every=sample_every, out=None)
        seen = _fit(Trainer(build_run(cfg), hidden_stats_hz=hz))
        return [e.loss for e in seen if isinstance(e, ev.StepDone)], seen

    quiet, _ = losses(0, 0)
    busy, seen = losses(1e6, 2)
    assert quiet == busy and sum(isinstance(e, ev.HiddenStats) for e in seen) == 15


def test_samples_by_time_as_well_as_by_step(tmp_path):
    cfg = _config(tmp_path, steps=6, sample_every=0, out=None)
    seen = _fit(Trainer(build_run(cfg), hidden_stats_hz=0, sample_every_s=1e-9))  # due at every step
    samples = [e for e in seen if isinstance(e, ev.SampleReady)]
    assert [e.step for e in samples] == [1, 2, 3, 4, 5, 6]
    assert all(len(e.text) == cfg.sample_len for e in samples)
    none = _fit(Trainer(build_run(cfg), hidden_stats_hz=0, sample_every_s=3600.0))
    assert not any(isinstance(e, ev.SampleReady) for e in none)  # not due within the run


def test_a_consumer_may_take_the_lock_inside_emit(tmp_path):
    cfg = _config(tmp_path, steps=12, eval_every=4, sample_every=0)
    trainer = Trainer(build_run(cfg), hidden_stats_hz=0)
    got = []

    def on(e):
        if isinstance(e, ev.EvalDone):  # e.g. the TUI snapshots weights or saves when told to
            got.append(trainer.sampler())
            trainer.save(str(tmp_path / f"manual-{e.step}.pt"))

    worker = threading.Thread(target=lambda: _fit(trainer, on=on))
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "emit was called with the lock held"
    assert len(got) == 4 and (tmp_path / "manual-12.pt").exists()  # 3 estimates + the exact end


def test_hidden_stats_are_the_training_forwards_own_states(tmp_path, monkeypatch):
    """Tapped from the step's forward, they match an extra pass over that batch with the weights
    the step started from; a model the tap cannot reach still gets them from the extra pass."""
    import contextlib
    import copy
    from types import SimpleNamespace

    from rnnplay.model import fast
    from rnnplay.training import probes

    run = build_run(_config(tmp_path, out=None))
    trainer = Trainer(run, hidden_stats_hz=1.0, hidden_units=5)
    trainer.train_step()
    before = copy.deepcopy(run.model)
    trainer.train_step(tap_hidden=True)
    tapped = trainer._hidden_stats()
    x, h0 = trainer._last_batch
    redone = probes.hidden_stats(SimpleNamespace(model=before, state=run.state), (x, h0), 5)
    assert tapped.step == redone.step == 2 and len(tapped.units) == 2 and len(tapped.units[0]) == 5
    torch.testing.assert_close(torch.tensor(tapped.units), torch.tensor(redone.units), atol=2e-4, rtol=0)
    torch.testing.assert_close(torch.tensor(tapped.saturation), torch.tensor(redone.saturation))
    assert trainer._tapped[0].shape == (16, 8, 32)  # (T, b, H): a small copy, not the batch

    trainer.train_step()  # not tapped: nothing kept from an earlier step
    assert trainer._tapped is None
    monkeypatch.setattr(fast, "tap_hidden", lambda fn: contextlib.nullcontext())
    trainer.train_step(tap_hidden=True)
    assert trainer._tapped is None
    fallback = trainer._hidden_stats()
    assert fallback is not None and fallback.step == 4 and len(fallback.units) == 2


def _easy_first_corpus(tmp_path):
    """Training text mixes runs of 'a' with random letters; the validation split (the last tenth)
    is all runs of 'a' in its first half and random letters in its second: its start is easy."""
    import random

    rng = random.Random(0)
    letters = "bcdefghijklmnopqrstuvwxyz"
    hard = lambda n: "".join(rng.choice(letters) for _ in range(n))  # noqa: E731
    train = "".join(("a" * 40 if i % 2 else hard(40)) for i in range(450))  # 18,000 chars
    val = "a" * 1000 + hard(1000)
    path = tmp_path / "easy_first.txt"
    path.write_text(train + val)
    return path, len(val)


def test_periodic_validation_is_spread_over_the_split_and_the_end_is_exact(tmp_path):
    path, n_val = _easy_first_corpus(tmp_path)
    cfg = TrainConfig(corpus=str(path), steps=60, hidden=32, layers=1, embed=16, seq_len=16, batch_size=8,
                      lr=1e-2, eval_every=60, eval_chars=256, sample_every=0, device="cpu",
                      out=str(tmp_path / "run.pt"))
    trainer = Trainer(build_run(cfg))
    assert trainer.run.val_data.numel() == n_val
    seen = _fit(trainer)
    evals = [e for e in seen if isinstance(e, ev.EvalDone)]
    assert [(e.step, e.exact) for e in evals] == [(60, False), (60, True)]
    spread, exact = evals[0].val_loss, evals[1].val_loss
    assert exact == pytest.approx(trainer.evaluate(max_chars=None), rel=1e-6)
    # the old estimate read only the start of the split: here the easy half, far below the truth
    from rnnplay.data.batches import val_chunks

    first = [(x, y) for x, y in val_chunks(trainer.run.val_data[:257], 8, 16, 256)]
    assert sum(y.numel() for _, y in first) == 256
    with torch.no_grad():
        h, total = None, 0.0
        for x, y in first:
            logits, h = trainer.run.model(x, h)
            total += float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                                             reduction="sum"))
    start_only = total / 256
    assert abs(spread - exact) < 0.25 * exact
    assert abs(start_only - exact) > 2 * abs(spread - exact)
    summary = seen[-1].summary
    assert summary.val_loss == spread and summary.val_loss_exact == exact and summary.val_chars == n_val - 1
    assert trainer.run.state.best_val_loss == spread  # the best checkpoint follows the periodic estimate


def test_val_chunks_cover_every_character_once_when_exact():
    from rnnplay.data.batches import val_chunks

    data = torch.arange(1003) % 251
    chunks = list(val_chunks(data.to(torch.uint8), batch_size=4, seq_len=7, max_chars=None))
    ys = torch.cat([y.reshape(4, -1) for _, y in chunks], dim=1)  # (4, region)
    assert ys.numel() == 1000 and torch.equal(ys.flatten(), (torch.arange(1, 1001) % 251))
    spread = list(val_chunks(data.to(torch.uint8), batch_size=4, seq_len=7, max_chars=40))
    starts = [int(x[i, 0]) for x, _ in spread[:1] for i in range(4)]
    assert starts == [0, 250, 500 % 251, 750 % 251]  # one stream per quarter of the split


@pytest.mark.parametrize("exact_on_stop", [True, False])
def test_a_stopped_run_measures_the_exact_loss_after_saving_when_asked(tmp_path, exact_on_stop):
    cfg = _config(tmp_path, steps=10_000, sample_every=0, eval_every=1000)
    trainer = Trainer(build_run(cfg), exact_on_stop=exact_on_stop)
    stop = threading.Event()
    seen = _fit(trainer, stop, on=lambda e: stop.set() if isinstance(e, ev.StepDone) and e.step == 5 else None)
    assert seen[-1].reason == "stopped" and seen[-1].step == 5
    kinds = [type(e).__name__ for e in seen if isinstance(e, (ev.CheckpointSaved, ev.EvalDone))]
    exact = [e for e in seen if isinstance(e, ev.EvalDone) and e.exact]
    if exact_on_stop:
        assert kinds[-2:] == ["CheckpointSaved", "EvalDone"]  # saved first: the measurement may be cut short
        assert exact[0].val_loss == pytest.approx(trainer.evaluate(max_chars=None), rel=1e-6)
        assert seen[-1].summary.val_loss_exact == exact[0].val_loss
    else:
        assert not exact and seen[-1].summary.val_loss_exact is None
    assert load_checkpoint(cfg.out)["step"] == 5
