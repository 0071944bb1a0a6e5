"""A lock-guarded, bounded buffer between the training thread and the UI timer.

The trainer calls :meth:`MetricsBuffer.record` for every event (on its own thread, so it must
be cheap: a lock, a few appends, no drawing). The UI calls :meth:`MetricsBuffer.snapshot` at
``--refresh-hz``; it gets a frozen copy, and ``None`` when nothing changed since the last look.

Memory stays bounded however long the run: the last ``recent`` losses are kept as they are
(for the sparkline), and the whole run's loss history is kept in at most ``history`` points,
each the mean of ``stride`` consecutive steps; when the history fills up, neighbouring points
are merged and the stride doubles, so the curve always covers the run from step 1.
This module never imports textual or torch.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from rnnplay.training.events import EvalDone, HiddenStats, SampleReady, Started, StepDone


@dataclass(frozen=True)
class Snapshot:
    """What the Train tab draws: a consistent copy taken under the buffer's lock."""

    version: int
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    chars_per_s: float | None = None
    elapsed_s: float = 0.0
    steps_per_s: float | None = None
    val_loss: float | None = None
    best_val: float | None = None
    val_exact: float | None = None  # the end-of-run loss over every validation character
    recent: tuple[float, ...] = ()  # the last losses, one per step
    history: tuple[tuple[float, float], ...] = ()  # (step, mean loss) over the whole run
    val: tuple[tuple[int, float], ...] = ()  # (step, validation loss)
    references: dict[str, float] = field(default_factory=dict)  # uniform / unigram / bigram
    units: tuple = ()  # (L, n_units, T) activations of the last batch's first sequence
    saturation: tuple[float, ...] = ()  # (L,)
    hidden: HiddenStats | None = None  # the latest statistics in full (a gated cell's c and gates)
    sample: str = ""
    sample_step: int | None = None
    params: int | None = None
    device: str = ""



class MetricsBuffer:
    """Thread-safe, bounded store of the latest training state (see the module docstring)."""

    def __init__(self, recent: int = 256, history: int = 1024, val_points: int = 256) -> None:
        self._lock = threading.Lock()
        self._recent_cap = recent
        self._history_cap = max(4, history - history % 2)
        self._val_cap = max(4, val_points - val_points % 2)
        self._seen = -1
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new run starts)."""
        with self._lock:
            self._version = getattr(self, "_version", 0) + 1
            self._step = 0
            self._total = 0
            self._last: StepDone | None = None
            self._first_step: int | None = None
            self._recent: deque[float] = deque(maxlen=self._recent_cap)
            self._history: list[tuple[float, float]] = []
            self._stride = 1
            self._pending: list[float] = [0.0, 0.0, 0]  # sum of steps, sum of losses, count
            self._val: list[tuple[int, float]] = []
            self._elapsed_base = 0.0  # elapsed time of earlier fit() calls (pause/resume)
            self._best_val: float | None = None
            self._val_exact: float | None = None  # the end-of-run loss over the whole validation split
            self._refs: dict[str, float] = {}
            self._hidden: HiddenStats | None = None
            self._sample: SampleReady | None = None
            self._params: int | None = None
            self._device = ""

    @property
    def version(self) -> int:
        return self._version

    # ---- the producer side (training thread) ------------------------------------------------

    def record(self, event: object) -> None:
        """Store one trainer event. Cheap: called for every step."""
        with self._lock:
            self._version += 1
            if isinstance(event, StepDone):
                self._record_step(event)
            elif isinstance(event, EvalDone) and event.exact:
                self._val_exact = event.val_loss
            elif isinstance(event, EvalDone):
                self._val.append((event.step, event.val_loss))
                if len(self._val) >= self._val_cap:
                    self._val = self._val[::-2][::-1]  # every other point, the newest kept
                if self._best_val is None or event.val_loss < self._best_val:
                    self._best_val = event.val_loss
            elif isinstance(event, HiddenStats):
                self._hidden = event
            elif isinstance(event, SampleReady):
                self._sample = event
            elif isinstance(event, Started):
                self._step, self._total = event.step, event.total_steps
                self._refs = event.run.references.to_dict() if event.run is not None else {}
                self._params, self._device = event.params, event.device

    def _record_step(self, ev: StepDone) -> None:
        last = self._last
        if self._first_step is None or ev.step < self._step or (last and ev.elapsed_s < last.elapsed_s):
            # a new fit() call (resume after a pause): speed is measured from here
            if last is not None and ev.step >= self._step:
                self._elapsed_base += last.elapsed_s
            self._first_step = ev.step - 1
        self._step, self._total, self._last = ev.step, ev.total_steps, ev
        self._recent.append(ev.loss)
        p = self._pending
        p[0] += ev.step
        p[1] += ev.loss
        p[2] += 1
        if p[2] >= self._stride:
            self._history.append((p[0] / p[2], p[1] / p[2]))
            self._pending = [0.0, 0.0, 0]
            if len(self._history) >= self._history_cap:
                h = self._history
                self._history = [((h[i][0] + h[i + 1][0]) / 2, (h[i][1] + h[i + 1][1]) / 2)
                                 for i in range(0, len(h) - 1, 2)]
                self._stride *= 2

    # ---- the consumer side (UI timer) -------------------------------------------------------

    def snapshot(self, force: bool = False) -> Snapshot | None:
        """A frozen copy, or None when nothing changed since the previous call (unless ``force``)."""
        with self._lock:
            if self._version == self._seen and not force:
                return None
            self._seen = self._version
            last, hidden, sample = self._last, self._hidden, self._sample
            history = list(self._history)
            p = self._pending
            if p[2]:
                history.append((p[0] / p[2], p[1] / p[2]))
            steps_per_s = None
            if last is not None and last.elapsed_s > 0 and self._first_step is not None:
                steps_per_s = (last.step - self._first_step) / last.elapsed_s
            return Snapshot(
                version=self._version,
                step=self._step,
                total_steps=self._total,
                loss=last.loss if last else None,
                lr=last.lr if last else None,
                grad_norm=last.grad_norm if last else None,
                chars_per_s=last.chars_per_s if last else None,
                elapsed_s=self._elapsed_base + (last.elapsed_s if last else 0.0),
                steps_per_s=steps_per_s,
                val_loss=self._val[-1][1] if self._val else None,
                best_val=self._best_val,
                val_exact=self._val_exact,
                recent=tuple(self._recent),
                history=tuple(history),
                val=tuple(self._val),
                references=dict(self._refs),
                units=hidden.units if hidden else (),
                saturation=hidden.saturation if hidden else (),
                hidden=hidden,
                sample=sample.text if sample else "",
                sample_step=sample.step if sample else None,
                params=self._params,
                device=self._device,
            )
