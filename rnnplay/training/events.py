"""The trainer's events: small frozen dataclasses sent to a callback.

The trainers never print. The headless CLI and the TUI are two consumers of the same events.
Every event carries ``step`` (optimizer steps done so far; for the classifier, also ``epoch``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union


@dataclass(frozen=True)
class Started:
    """A run (re)started. ``total_steps`` is the run's target; ``step`` > 0 when resumed."""

    step: int
    total_steps: int
    params: int
    device: str
    resumed: bool = False
    info: dict = field(default_factory=dict)  # e.g. corpus name, vocab size, reference losses


@dataclass(frozen=True)
class StepDone:
    """One optimizer step. Emitted every step; consumers must be cheap (buffer, don't draw)."""

    step: int
    total_steps: int
    loss: float
    lr: float
    grad_norm: float
    chars_per_s: float  # training throughput, smoothed
    elapsed_s: float  # wall time of this run so far (excluding earlier runs of a resumed model)


@dataclass(frozen=True)
class HiddenStats:
    """Hidden-state summary of the last training batch, at most a few times per second.

    ``units[l]`` is a few units' activations over the time steps of the first sequence of the
    batch in layer l; ``saturation[l]`` is the fraction of |h| > 0.95 in layer l.
    """

    step: int
    units: tuple[tuple[tuple[float, ...], ...], ...]  # (L, n_units, T)
    saturation: tuple[float, ...]  # (L,)


@dataclass(frozen=True)
class EvalDone:
    """Validation loss at ``step``; ``best`` tells whether it is the best so far."""

    step: int
    val_loss: float
    best: bool


@dataclass(frozen=True)
class CheckpointSaved:
    step: int
    path: str
    reason: str  # "periodic", "best", "stopped", "finished", "diverged", "manual"


@dataclass(frozen=True)
class SampleReady:
    """A short sample from the live weights."""

    step: int
    text: str


@dataclass(frozen=True)
class EpochDone:
    """The classifier experiment's epoch summary.

    ``variant`` names the model when one experiment trains several (the tagging task trains
    "unidirectional" then "bidirectional"); ``epoch_s`` is the epoch's wall time, evaluation included.
    """

    step: int
    epoch: int
    total_epochs: int
    train_loss: float
    train_accuracy: float
    test_accuracy: float
    lr: float
    variant: str = ""
    epoch_s: float = 0.0


@dataclass(frozen=True)
class Finished:
    """The run ended normally: ``reason`` is "completed" (target reached) or "stopped" (asked to)."""

    step: int
    reason: str
    metrics: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Failed:
    """The run ended on an error (divergence, out of memory, ...). ``message`` says what to change."""

    step: int
    message: str


Event = Union[Started, StepDone, HiddenStats, EvalDone, CheckpointSaved, SampleReady, EpochDone, Finished, Failed]
EventCallback = Callable[[Event], None]
