"""The trainer's events: small frozen dataclasses sent to a callback.

The trainers never print. The headless CLI reporter, the app and the run recorder are consumers of
the same events, through one :class:`FanOut`. Every event carries ``step`` (optimizer steps done so
far; for the classifier, also ``epoch``). Fields are typed; no payload is a dict looked up by key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from rnnplay.config import TrainConfig
from rnnplay.data.facts import CorpusInfo, References


@dataclass(frozen=True)
class RunInfo:
    """What a char-RNN run trains on and with (carried by :class:`Started`)."""

    corpus: CorpusInfo
    references: References
    config: TrainConfig
    chars_per_step: int
    resumed_from: str | None = None
    parent: str | None = None  # the checkpoint a fine-tuned run started from (train --init-from)
    vocab_size: int | None = None  # the model's characters; more than the corpus' after --init-from


@dataclass(frozen=True)
class ExperimentInfo:
    """What a classifier experiment trains (carried by :class:`Started`); variants in training order."""

    task: str
    seed: int
    epochs: int
    variants: tuple[str, ...]
    variant_params: tuple[int, ...]  # parameters of each variant, same order
    n_train: int
    n_test: int
    batch_size: int
    steps_per_epoch: int

    def params_of(self, variant: str) -> int:
        return self.variant_params[self.variants.index(variant)]


@dataclass(frozen=True)
class RunSummary:
    """A char-RNN run's figures when it ends (carried by :class:`Finished`)."""

    step: int
    train_loss: float | None
    val_loss: float | None  # the last periodic validation estimate (config.eval_chars, spread)
    val_loss_exact: float | None  # over the whole validation split, when the run completed
    val_chars: int  # characters in the validation split (scored positions)
    best_val_loss: float | None
    checkpoint: str | None
    best_checkpoint: str | None
    chars_per_s: float  # recent (smoothed)
    avg_chars_per_s: float
    elapsed_s: float
    references: References


@dataclass(frozen=True)
class Started:
    """A run (re)started. ``total_steps`` is the run's target; ``step`` > 0 when resumed."""

    step: int
    total_steps: int
    params: int
    device: str
    resumed: bool = False
    run: RunInfo | None = None  # a char-RNN run
    experiment: ExperimentInfo | None = None  # a classifier experiment


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

    ``units[l]`` is a few units' outputs h over the time steps of the first sequence of the batch
    in layer l; ``saturation[l]`` is the fraction of |h| > 0.95 in layer l. A cell kind with a probe
    (rnnplay.model.cell.Probe) adds, recomputed with the current weights: ``more_units[s]``, the
    same units of its other state parts (``state_names[1:]``: the LSTM's c), and
    ``gate_saturation[l]``, per sigmoid gate (``gate_names``: GRU r z, LSTM i f o) the fraction of
    its activations below 0.05 or above 0.95 in layer l. For the tanh cell these are empty.
    """

    step: int
    units: tuple[tuple[tuple[float, ...], ...], ...]  # (L, n_units, T)
    saturation: tuple[float, ...]  # (L,)
    state_names: tuple[str, ...] = ("h",)  # what units shows (h), then each more_units entry
    more_units: tuple[tuple[tuple[tuple[float, ...], ...], ...], ...] = ()  # (S-1, L, n_units, T)
    gate_names: tuple[str, ...] = ()
    gate_saturation: tuple[tuple[float, ...], ...] = ()  # (L, n_gates)


@dataclass(frozen=True)
class EvalDone:
    """Validation loss at ``step``; ``best`` tells whether it is the best estimate so far.

    Periodic losses are estimates over ``config.eval_chars`` characters spread over the whole
    validation split (the best checkpoint follows them); ``exact`` marks the end-of-run loss over
    every validation character (never counted as "best", so the checkpoints follow one measure).
    """

    step: int
    val_loss: float
    best: bool
    exact: bool = False


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
    """The run ended normally: ``reason`` is "completed" (target reached) or "stopped" (asked to).

    A char-RNN run carries its ``summary``; a classifier experiment its final ``test_accuracy``.
    """

    step: int
    reason: str
    summary: RunSummary | None = None
    test_accuracy: float | None = None


@dataclass(frozen=True)
class Failed:
    """The run ended on an error (divergence, out of memory, ...). ``message`` says what to change."""

    step: int
    message: str
    diverged: bool = False  # the loss blew up (the last good weights were kept), not an error


Event = Union[Started, StepDone, HiddenStats, EvalDone, CheckpointSaved, SampleReady, EpochDone, Finished, Failed]
EventCallback = Callable[[Event], None]


class FanOut:
    """One callback that hands each event to every consumer, in order (reporter, app, recorder).

    A consumer must be cheap (buffer, don't draw) and must not raise: a consumer that can fail
    (the run recorder's disk) handles its own errors, so it can never stop the training.
    """

    def __init__(self, *consumers: EventCallback | None) -> None:
        self.consumers: list[EventCallback] = [c for c in consumers if c is not None]

    def add(self, consumer: EventCallback) -> None:
        self.consumers.append(consumer)

    def __call__(self, event: Event) -> None:
        for consumer in self.consumers:
            consumer(event)
