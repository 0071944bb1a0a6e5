"""The seed's classifier experiment as a plain training loop that reports events and never prints.

Recipe (the seed's Part 2 "Training Strategy"): SequenceClassifier(10, 64, 2, num_layers=2,
dropout=0.2), 13,314 parameters; cross-entropy; Adam(lr=1e-3); StepLR halving the rate every 20
epochs; mini-batches of 32 reshuffled every epoch from a seeded generator.

``run_experiment(config, emit, stop)`` is what the CLI and the TUI's Classify tab call (the TUI
from a worker thread). It emits, in order: one ``Started``; one ``EpochDone`` per finished epoch
(per model, for the tagging task); then ``Finished`` (reason "completed" or "stopped") or
``Failed`` (the loss became NaN). It checks ``stop`` before every batch, so a stop takes effect
within one batch (milliseconds). An unexpected exception (a bug, a GPU out of memory) is emitted
as ``Failed`` and then re-raised.

Determinism: the data and the batch order come from seeded ``torch.Generator`` objects. Model
initialisation and dropout use torch's global RNG, so the loop runs inside
``torch.random.fork_rng`` after ``torch.manual_seed(config.seed)``: the caller's global RNG state
is the same afterwards, and the same config on CPU gives the same numbers, bit for bit, for the
same torch build and intra-op thread count (float sums may be ordered differently with another
thread count). While it runs in a thread, other threads drawing from the global RNG interleave
with its dropout draws.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rnnplay.classify.data import Dataset, Split, _derive, make_dataset
from rnnplay.model import SequenceClassifier, SequenceTagger
from rnnplay.training.events import EpochDone, EventCallback, ExperimentInfo, Failed, Finished, Started

# Why these defaults: DEFAULT_EPOCHS_NOTE (also in the report and README).
DEFAULT_EPOCHS = {"classify": 60, "tagging": 10}
DEFAULT_EPOCHS_NOTE = (
    "classify: 60 epochs, the count behind the issue's torch.nn.RNN reference (0.922/0.929/0.927), so "
    "the two compare directly; the last 20 epochs run at lr 2.5e-4 after two halvings. Measured (seeds "
    "0-2): test accuracy passes 0.90 in the first epoch and stays in 0.88-0.93 in epochs 1-20 while "
    "train accuracy climbs to ~1.0; in epochs 41-60, at the small rate, it stays within 0.914-0.934, "
    "so 60 ends on a settled value rather than on a lucky or unlucky epoch. "
    "tagging: 10 epochs: the bidirectional tagger is at ~0.99 per-step accuracy by then, and the "
    "unidirectional one sits at its ceiling (~0.76) from the first epochs and only overfits after."
)


@dataclass(frozen=True)
class ClassifyConfig:
    """Everything that defines a run. ``epochs=None`` takes the task's default (DEFAULT_EPOCHS).

    ``device`` is a torch device string ("cpu", "cuda", "cuda:1", "mps"); the CLI resolves "auto".
    ``n_train``/``n_test`` shrink the splits for quick runs and tests (the seed: 5,000 / 1,000).
    The tagging task trains ``SequenceTagger(input_size, hidden_size, 2, tagger_layers)``
    unidirectional, then bidirectional, with the same recipe (no dropout: one layer). ``cell`` is
    the recurrent cell of every model (tanh, the seed's; gru; lstm).
    """

    task: str = "classify"
    epochs: int | None = None
    seed: int = 0
    device: str = "cpu"
    n_train: int = 5000
    n_test: int = 1000
    seq_len: int = 20
    input_size: int = 10
    hidden_size: int = 64
    num_layers: int = 2
    dropout: float = 0.2
    tagger_layers: int = 1
    tag_feature: int = 0
    lr: float = 1e-3
    lr_step_epochs: int = 20
    lr_gamma: float = 0.5
    batch_size: int = 32
    cell: str = "tanh"

    @property
    def total_epochs(self) -> int:
        return DEFAULT_EPOCHS[self.task] if self.epochs is None else self.epochs

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        if self.task not in DEFAULT_EPOCHS:
            raise ValueError(f"task must be one of {sorted(DEFAULT_EPOCHS)}, got {self.task!r}")
        for name in ("n_train", "n_test", "seq_len", "input_size", "hidden_size", "num_layers",
                     "tagger_layers", "batch_size", "lr_step_epochs", "total_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        from rnnplay.model.kinds import CELL_NAMES, cell_kind

        try:
            cell_kind(self.cell)
        except ValueError:
            raise ValueError(f"cell must be one of {', '.join(CELL_NAMES)}, got {self.cell!r}") from None
        if not 0 <= self.tag_feature < self.input_size:
            raise ValueError(f"tag_feature must be in [0, {self.input_size}), got {self.tag_feature}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not (self.lr > 0 and math.isfinite(self.lr)) or not 0 < self.lr_gamma <= 1:
            raise ValueError(f"lr must be > 0 and lr_gamma in (0, 1], got {self.lr}, {self.lr_gamma}")


@dataclass(frozen=True, eq=False)
class VariantResult:
    """One trained model: ``name`` is "classifier", "unidirectional" or "bidirectional"."""

    name: str
    model: nn.Module  # trained, in eval mode, on the run's device
    params: int
    history: tuple[EpochDone, ...]

    @property
    def test_accuracy(self) -> float:
        return self.history[-1].test_accuracy if self.history else float("nan")


@dataclass(frozen=True, eq=False)
class ExperimentResult:
    """What a run produced. ``reason``: "completed", "stopped" or "failed" (then ``message`` says why)."""

    config: ClassifyConfig
    reason: str
    variants: tuple[VariantResult, ...]
    data: Dataset
    device: str
    seconds: float
    message: str = ""

    @property
    def model(self) -> nn.Module:
        return self.variants[0].model

    @property
    def test_accuracy(self) -> float:
        return self.variants[0].test_accuracy

    @property
    def epochs_done(self) -> int:
        return min((len(v.history) for v in self.variants), default=0)

    def summary(self) -> dict:
        """Plain JSON-able numbers (what ``rnnplay classify --json`` prints)."""
        last = [v.history[-1] for v in self.variants if v.history]
        out = {
            "task": self.config.task, "reason": self.reason, "seed": self.config.seed,
            "epochs": self.epochs_done, "epochs_requested": self.config.total_epochs,
            "device": self.device, "seconds": round(self.seconds, 3),
            "params": self.variants[0].params if self.variants else 0,
            "test_accuracy": self.test_accuracy if last else None,
            "train_accuracy": last[0].train_accuracy if last else None,
            "train_loss": last[0].train_loss if last else None,
            "lr": last[0].lr if last else None,
            "config": asdict(self.config) | {"epochs": self.config.total_epochs},
        }
        if self.message:
            out["message"] = self.message
        if self.config.task == "tagging":
            out["variants"] = {
                v.name: {"params": v.params, "test_accuracy": v.test_accuracy if v.history else None,
                         "train_accuracy": v.history[-1].train_accuracy if v.history else None}
                for v in self.variants
            }
        return out


def build_models(config: ClassifyConfig) -> list[tuple[str, nn.Module]]:
    """The models the task trains, freshly initialised from torch's global RNG (seed it first)."""
    if config.task == "classify":
        return [("classifier", SequenceClassifier(config.input_size, config.hidden_size, 2,
                                                  num_layers=config.num_layers, dropout=config.dropout,
                                                  cell=config.cell))]
    return [
        (name, SequenceTagger(config.input_size, config.hidden_size, 2, num_layers=config.tagger_layers,
                              bidirectional=(name == "bidirectional"), cell=config.cell))
        for name in ("unidirectional", "bidirectional")
    ]


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def make_optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=lr)


def _loss_and_correct(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """logits (B, C) or (B, T, C), y (B,) or (B, T) -> (mean loss, number correct) as tensors."""
    flat = logits.reshape(-1, logits.shape[-1])  # (B*T, C)
    target = y.reshape(-1)  # (B*T,)
    loss = F.cross_entropy(flat, target)
    return loss, (flat.argmax(-1) == target).sum()


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, batch_size: int = 1000) -> float:
    """Accuracy on ``split`` in eval mode (per step for the tagger). Restores the training mode."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=split.x.device)
    for i in range(0, len(split), batch_size):
        logits = model(split.x[i:i + batch_size])  # (b, C) or (b, T, C)
        correct += _loss_and_correct(logits, split.y[i:i + batch_size])[1]
    model.train(was_training)
    return correct.item() / split.y.numel()


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    split: Split,
    batch_size: int,
    generator: torch.Generator,
    stop: threading.Event | None = None,
) -> tuple[float, float, int] | None:
    """One pass over ``split`` in a shuffled order drawn from ``generator``.

    Returns (mean loss, running train accuracy with dropout on, batches done), or None when
    ``stop`` was set before the epoch finished. No host sync per batch (the loss is summed on device).
    """
    model.train()
    n = len(split)
    perm = torch.randperm(n, generator=generator).to(split.x.device)  # (N,)
    loss_sum = torch.zeros((), device=split.x.device)
    correct = torch.zeros((), dtype=torch.long, device=split.x.device)
    batches = 0
    for i in range(0, n, batch_size):
        if stop is not None and stop.is_set():
            return None
        idx = perm[i:i + batch_size]  # (b,)
        xb, yb = split.x[idx], split.y[idx]  # (b, T, I), (b,) or (b, T)
        logits = model(xb)  # (b, C) or (b, T, C)
        loss, ok = _loss_and_correct(logits, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * idx.numel()
        correct += ok
        batches += 1
    return loss_sum.item() / n, correct.item() / split.y.numel(), batches


def run_experiment(
    config: ClassifyConfig,
    emit: EventCallback | None = None,
    stop: threading.Event | None = None,
    data: Dataset | None = None,
) -> ExperimentResult:
    """Train the task's model(s) with the seed's recipe, reporting events to ``emit``.

    ``data`` (optional) reuses an already drawn dataset; by default it is drawn from the config.
    Raises ValueError for a bad config before any event is emitted.
    """
    config.validate()
    emit = emit or (lambda event: None)
    device = torch.device(config.device)
    if data is None:
        data = make_dataset(config.task, config.seed, config.n_train, config.n_test, config.seq_len,
                            config.input_size, config.tag_feature)
    data = Dataset(data.task, Split(data.train.x.to(device), data.train.y.to(device)),
                   Split(data.test.x.to(device), data.test.y.to(device)), data.num_classes)
    epochs = config.total_epochs
    steps_per_epoch = -(-len(data.train) // config.batch_size)
    t0 = time.perf_counter()
    step = 0
    variants: list[VariantResult] = []
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices, device_type="cuda"):
        torch.manual_seed(config.seed)
        models = build_models(config)
        models = [(name, m.to(device)) for name, m in models]
        params = {name: count_params(m) for name, m in models}
        emit(Started(step=0, total_steps=epochs * steps_per_epoch * len(models),
                     params=sum(params.values()), device=str(device),
                     experiment=ExperimentInfo(config.task, config.seed, epochs, tuple(params),
                                               tuple(params.values()), len(data.train), len(data.test),
                                               config.batch_size, steps_per_epoch)))
        try:
            for name, model in models:
                torch.manual_seed(_derive(config.seed, 10))  # each variant: same dropout stream
                history: list[EpochDone] = []
                reason, step = _train_variant(name, model, config, data, epochs, step, history, emit, stop)
                model.eval()
                variants.append(VariantResult(name, model, params[name], tuple(history)))
                if reason != "completed":
                    break
        except Exception as exc:
            emit(Failed(step=step, message=f"{type(exc).__name__}: {exc}"))
            raise
    message = f"{variants[-1].name}: {_FAILED_MSG}" if reason == "failed" else ""
    result = ExperimentResult(config, reason, tuple(variants), data, str(device),
                              time.perf_counter() - t0, message)
    emit(Failed(step=step, message=message) if message else
         Finished(step=step, reason=reason, test_accuracy=result.test_accuracy if any(v.history for v in result.variants) else None))
    return result


_FAILED_MSG = "the training loss became NaN or infinite; lower the learning rate (lr) and run again"


def _train_variant(
    name: str, model: nn.Module, config: ClassifyConfig, data: Dataset, epochs: int, step: int,
    history: list[EpochDone], emit: EventCallback, stop: threading.Event | None,
) -> tuple[str, int]:
    """Train one model for ``epochs``; appends to ``history``; returns (reason, step)."""
    optimizer = make_optimizer(model, config.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step_epochs,
                                                gamma=config.lr_gamma)
    shuffle = torch.Generator().manual_seed(_derive(config.seed, 2))
    for epoch in range(1, epochs + 1):
        t_epoch = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        out = train_one_epoch(model, optimizer, data.train, config.batch_size, shuffle, stop)
        if out is None:
            return "stopped", step
        train_loss, train_acc, batches = out
        step += batches
        if not math.isfinite(train_loss):
            return "failed", step
        scheduler.step()
        test_acc = evaluate(model, data.test)
        event = EpochDone(step=step, epoch=epoch, total_epochs=epochs, train_loss=train_loss,
                          train_accuracy=train_acc, test_accuracy=test_acc, lr=lr, variant=name,
                          epoch_s=time.perf_counter() - t_epoch)
        history.append(event)
        emit(event)
    return "completed", step

