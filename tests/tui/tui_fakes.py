"""Fast, deterministic stand-ins for the trainer and the classifier runner (injected via make_app)."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path

from rnnplay.config import TrainConfig
from rnnplay.data.facts import CorpusInfo, References
from rnnplay.errors import UserError
from rnnplay.training.events import (CheckpointSaved, RunInfo, EpochDone, EvalDone, Failed, Finished, HiddenStats,
                                     SampleReady, Started, StepDone)

VOCAB_TEXT = "\n abcdefghijklmnopqrstuvwxyz.,"
REFERENCES = {"uniform": math.log(len(VOCAB_TEXT)), "unigram": 2.95, "bigram": 2.41}


def fake_run_info(vocab_size: int, steps: int) -> RunInfo:
    """The typed run description a real trainer's Started carries, for a fake corpus."""
    corpus = CorpusInfo("fake", "bundled", "fake", 1, 1000, 1000, vocab_size, 900, 100, "0-1000")
    return RunInfo(corpus, References.from_dict(REFERENCES), TrainConfig(corpus="fake", steps=max(1, steps)), 64)


def fake_loss(step: int) -> float:
    """A closed-form learning curve: from ln V down towards 1.4."""
    return 1.4 + (REFERENCES["uniform"] - 1.4) * math.exp(-step / 60.0)


class FakeTrainer:
    """The trainer interface the app uses, with instant steps and fixed, repeatable numbers."""

    def __init__(self, steps: int = 200, out: str | None = None, step_s: float = 0.0,
                 fail_at: int | None = None, diverge_at: int | None = None) -> None:
        from rnnplay.data.vocab import Vocab

        self.lock = threading.Lock()
        self.total = steps
        self.out = out
        self.step_s = step_s
        self.fail_at = fail_at
        self.diverge_at = diverge_at
        self.step = 0
        self.vocab = Vocab(VOCAB_TEXT)
        self.saves: list[tuple[str, int, str]] = []
        self.fit_calls = 0
        self._model = None

    def fit(self, emit, stop: threading.Event) -> None:
        self.fit_calls += 1
        emit(Started(self.step, self.total, 1234, "cpu", resumed=self.step > 0,
                     run=fake_run_info(len(self.vocab), self.total)))
        while self.step < self.total and not stop.is_set():
            with self.lock:
                if self.step_s:
                    time.sleep(self.step_s)
                if self.fail_at is not None and self.step >= self.fail_at:
                    emit(Failed(self.step, "RuntimeError: boom"))
                    raise RuntimeError("boom")
                if self.diverge_at is not None and self.step >= self.diverge_at:
                    emit(Failed(self.step, "training diverged at step %d: lower --lr" % self.step))
                    return
                self.step += 1
                s = self.step
                emit(StepDone(s, self.total, fake_loss(s), 2e-3, 0.5 + 1.0 / s, 12_345.0, s * 0.05))
                if s % 10 == 0:
                    units = tuple(tuple(tuple(math.sin((t + u * 7 + layer * 3) / 4.0) * (0.5 + 0.2 * layer)
                                              for t in range(32)) for u in range(4)) for layer in range(2))
                    emit(HiddenStats(s, units, (0.05, 0.31)))
                if s % 50 == 0:
                    emit(EvalDone(s, fake_loss(s) + 0.08, True))
                if s % 100 == 0:
                    emit(SampleReady(s, "the quick brown fox\njumps over the lazy dog. " * 3))
        reason = "completed" if self.step >= self.total else "stopped"
        if self.out:
            emit(CheckpointSaved(self.step, self.save(reason="finished" if reason == "completed" else "stopped"),
                                 "stopped"))
        emit(Finished(self.step, reason))

    def save(self, path: str | None = None, reason: str = "manual") -> str:
        target = Path(path or self.out or "fake.pt")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps({"step": self.step, "reason": reason}))
        os.replace(tmp, target)
        self.saves.append((str(target), self.step, reason))
        return str(target)

    def sampler(self):
        """A real Sampler over a tiny CharRNN with fixed weights (so generation is repeatable)."""
        import torch

        from rnnplay.model import CharRNN, Sampler

        with self.lock:
            if self._model is None:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(1)
                    self._model = CharRNN(len(self.vocab), 16, 2, embed_size=8).eval()
            return Sampler(self._model)

    def model_snapshot(self):
        """The fixed model the sampler reads (a fake's weights never change)."""
        self.sampler()
        return self._model


class FakeFactory:
    """A trainer_factory for make_app; keeps the trainers it made and the settings it got."""

    def __init__(self, error: str | None = None, **trainer_kwargs) -> None:
        self.error = error
        self.kwargs = trainer_kwargs
        self.trainers: list[FakeTrainer] = []
        self.settings = []

    def __call__(self, settings):
        self.settings.append(settings)
        if self.error:
            raise UserError(self.error)
        out = str(Path(settings.checkpoint_dir) / "fake-run.pt")
        trainer = FakeTrainer(out=out, **self.kwargs)
        self.trainers.append(trainer)
        return trainer, "fake · 2×16", out


def fake_inspection():
    from rnnplay.classify.inspect import Inspection, SequenceTrace

    T, H = 20, 6
    seqs = tuple(
        SequenceTrace(index=i, label=i % 2, predicted=i % 2,
                      prob_class1=tuple(0.5 + (0.4 if i % 2 else -0.4) * t / (T - 1) for t in range(T)),
                      running_mean=tuple((0.3 if i % 2 else -0.3) * (t + 1) / T for t in range(T)),
                      hidden=tuple(tuple(math.tanh((t - 10) / 5.0 * (u - 2.5)) for t in range(T)) for u in range(H)))
        for i in range(3))
    return Inspection(hidden_size=H, seq_len=T, sequences=seqs,
                      unit_correlation=(0.91, -0.85, 0.4, 0.1, -0.2, 0.05),
                      top_units=((0, 0.91), (1, -0.85), (2, 0.4), (4, -0.2), (3, 0.1)),
                      accuracy_by_step=tuple(0.5 + 0.45 * t / (T - 1) for t in range(T)),
                      prediction_mean_r=0.88, n_points=20_000)


class FakeClassifierRunner:
    def __init__(self, epochs: int = 6, delay_s: float = 0.0) -> None:
        self.epochs = epochs
        self.delay_s = delay_s
        self.options = []

    def __call__(self, options, emit, stop):
        self.options.append(options)
        total = options.get("epochs") or self.epochs
        for e in range(1, total + 1):
            if stop.is_set():
                return _Result("stopped"), None
            if self.delay_s:
                time.sleep(self.delay_s)
            emit(EpochDone(step=e * 157, epoch=e, total_epochs=total, train_loss=0.7 / e,
                           train_accuracy=min(0.99, 0.6 + 0.05 * e), test_accuracy=min(0.95, 0.62 + 0.05 * e),
                           lr=1e-3 if e <= 20 else 5e-4, variant="classifier", epoch_s=0.5))
        return _Result("completed"), fake_inspection()


class _Result:
    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.message = ""
