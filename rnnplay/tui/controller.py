"""The training session: a plain object (no Textual) that owns the run, its thread and its phase.

    session = TrainingSession(factory, post=ui.post, run_in_thread=ui.run_thread)
    session.start(settings)   # idle -> starting -> running
    session.pause()           # running -> stopping -> paused (after the step in flight)
    session.resume()          # paused -> running
    session.stop()            # running -> stopping -> idle, or paused -> idle (saved either way)

Phases: ``idle`` -> ``starting`` (building the run) -> ``running`` -> ``stopping`` (the step in
flight finishes, then a save) -> ``idle``, or ``paused`` when the stop was a pause. The phase
changes under a lock, from the UI thread (requests) or the training thread (the run started,
the thread ended); every change is posted as :class:`PhaseChanged`. ``post`` takes the small
frozen events below and must be safe to call from any thread (the app wraps them in one Textual
message); ``run_in_thread(fn, name)`` runs ``fn`` on a thread (the app: a thread worker). Per-step
numbers never travel as events: the trainer's events go to the lock-guarded, bounded
:class:`~rnnplay.tui.metrics.MetricsBuffer`, which the UI reads on a timer.
This module never imports textual (tests/tui/test_session.py drives it with plain threads).
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Union

from rnnplay.errors import UserError
from rnnplay.training.events import CheckpointSaved, Failed, FanOut, Finished, Started
from rnnplay.tui.backend import TrainSettings
from rnnplay.tui.metrics import MetricsBuffer

log = logging.getLogger("rnnplay.tui")

PHASES = ("idle", "starting", "running", "stopping", "paused")


@dataclass(frozen=True)
class PhaseChanged:
    """The session's phase changed; ``intent`` says why a stop was asked ("pause", "stop", "quit")."""

    phase: str
    previous: str
    intent: str = ""


@dataclass(frozen=True)
class RunReady:
    """The run is built (corpus read, model made); ``fit`` is about to start."""

    trainer: Any
    description: str
    checkpoint_path: str


@dataclass(frozen=True)
class RunStopped:
    """The training thread is done: ``fit`` returned (or raised) and any save has finished.

    ``reason``: "completed", "paused", "stopped", "quit" or "failed"; ``error``: what to tell the
    user when it failed; ``checkpoint``: the file written on the way out, if any; ``build_error``:
    the run could not be built (a bad corpus or setting).
    """

    step: int
    reason: str
    error: str | None = None
    checkpoint: str | None = None
    build_error: bool = False


@dataclass(frozen=True)
class Saved:
    """A checkpoint file was written (by the trainer or by a save the user asked for)."""

    path: str
    step: int
    reason: str


@dataclass(frozen=True)
class SaveFailed:
    error: str


SessionEvent = Union[PhaseChanged, RunReady, RunStopped, Saved, SaveFailed]
Post = Callable[[SessionEvent], Any]
RunInThread = Callable[[Callable[[], None], str], Any]


class TrainingSession:
    """Owns the trainer, its stop event, its phase and the metrics buffer (see the module docstring)."""

    def __init__(self, factory: Callable, post: Post, run_in_thread: RunInThread,
                 torch_threads: int | None = None, recorder_factory: Callable[[], Any] | None = None) -> None:
        self.factory = factory
        self.recorder_factory = recorder_factory  # a run store recorder per run (rnnplay.runs), or None
        self._recorder: Any = None
        self.post = post
        self.run_in_thread = run_in_thread
        self.torch_threads = torch_threads
        self.metrics = MetricsBuffer()
        self.trainer: Any = None
        self.description = ""
        self.checkpoint_path: str | None = None
        self.saved_step: int | None = None
        self.intent = ""  # why the stop event was set: "pause", "stop" or "quit"
        self._phase = "idle"
        self._lock = threading.Lock()  # guards the phase
        self._stop = threading.Event()
        self.idle = threading.Event()  # set while no training thread runs
        self.idle.set()
        self._failed: str | None = None
        self._finished = False

    # ---- the phase ------------------------------------------------------------------------------

    @property
    def phase(self) -> str:
        return self._phase

    def _move(self, to: str, when: tuple[str, ...], intent: str = "") -> bool:
        """Go to phase ``to`` if the phase is one of ``when``; post the change."""
        with self._lock:
            previous = self._phase
            if previous not in when:
                return False
            self._phase = to
        if previous != to:
            self.post(PhaseChanged(to, previous, intent))
        return True

    # ---- requests (the UI thread) ---------------------------------------------------------------

    def start(self, settings: TrainSettings) -> bool:
        """Build a new run from ``settings`` and train it; False unless the phase was idle."""
        if not self._move("starting", ("idle",)):
            return False
        self.trainer, self.saved_step, self.checkpoint_path, self.description = None, None, None, ""
        self.metrics.reset()
        self._launch(settings)
        return True

    def pause(self) -> bool:
        """Stop after the step in flight and stay paused (running only)."""
        if not self._move("stopping", ("running",), "pause"):
            return False
        self.intent = "pause"
        self._stop.set()
        return True

    def resume(self) -> bool:
        """Continue a paused run with the same trainer."""
        if not self._move("running", ("paused",)):
            return False
        self._launch(None)
        return True

    def stop(self) -> bool:
        """Stop and save: after the step in flight when running, at once when paused."""
        if self._move("stopping", ("running", "starting"), "stop"):
            self.intent = "stop"
            self._stop.set()
            return True
        if self._move("idle", ("paused",), "stop"):
            if self.unsaved:
                self.save("stopped")
            return True
        return False

    def toggle(self, settings: Callable[[], TrainSettings | None]) -> bool:
        """The one key / button that starts, pauses and resumes: what it does depends on the phase.
        ``settings`` is called only when a run is to start (None: do nothing)."""
        phase = self._phase
        if phase == "running":
            return self.pause()
        if phase == "paused":
            return self.resume()
        if phase == "idle":
            chosen = settings()
            return chosen is not None and self.start(chosen)
        return False

    def request_stop(self, intent: str = "quit") -> None:
        """Stop whatever runs (quitting, a crash); safe from any thread."""
        self._move("stopping", ("running", "starting"), intent)
        self.intent = intent
        self._stop.set()

    def save(self, reason: str = "manual") -> bool:
        """Save the current weights from a thread (waits for the step in flight)."""
        trainer = self.trainer
        if trainer is None:
            return False
        self.run_in_thread(lambda: self._save(trainer, reason), "save")
        return True

    def shutdown(self, timeout: float) -> None:
        """From any thread, without the UI: stop, wait for the step in flight, make sure it is saved.

        Used when the terminal is gone (SIGHUP) or the app crashed, when no UI can react any more.
        """
        self.request_stop("quit")
        self.idle.wait(timeout)
        trainer = self.trainer
        if trainer is not None and self.idle.is_set() and self.unsaved:
            try:
                trainer.save(reason="stopped")
                self.saved_step = int(getattr(trainer, "step", 0))
            except Exception:
                log.error("saving at shutdown failed:\n%s", traceback.format_exc())

    @property
    def unsaved(self) -> bool:
        step = getattr(self.trainer, "step", 0) if self.trainer is not None else 0
        return step > 0 and step != self.saved_step

    def report(self) -> dict:
        """The last run's figures as plain numbers (for benchmarks)."""
        snap = self.metrics.snapshot(force=True)
        return {"step": snap.step, "total_steps": snap.total_steps, "elapsed_s": snap.elapsed_s,
                "chars_per_s": snap.chars_per_s, "loss": snap.loss, "val_loss": snap.val_loss,
                "checkpoint": self.checkpoint_path, "saved_step": self.saved_step}

    # ---- the training thread --------------------------------------------------------------------

    def _launch(self, settings: TrainSettings | None) -> None:
        self._stop = threading.Event()
        self._failed, self._finished, self.intent = None, False, ""
        stop = self._stop
        self.idle.clear()
        self.run_in_thread(lambda: self._work(settings, stop), "train")

    def _emit(self, event: Any) -> None:
        """The trainer's callback: cheap; only state changes become events for the UI."""
        self.metrics.record(event)
        if isinstance(event, Started):
            self._move("running", ("starting",))
        elif isinstance(event, CheckpointSaved):
            self.saved_step = event.step
            self.post(Saved(event.path, event.step, event.reason))
        elif isinstance(event, Failed):
            self._failed = event.message
        elif isinstance(event, Finished):
            self._finished = event.reason == "completed"

    def _work(self, settings: TrainSettings | None, stop: threading.Event) -> None:
        stopped = RunStopped(0, "failed", "the training thread ended unexpectedly")
        try:
            stopped = self._train(settings, stop)
        finally:
            self.idle.set()
            paused = stopped.reason == "paused" and not stopped.error
            with self._lock:
                previous, self._phase = self._phase, "paused" if paused else "idle"
            if self.trainer is None:
                self.description = ""
            self.post(PhaseChanged(self._phase, previous, self.intent))
            self.post(stopped)

    def _train(self, settings: TrainSettings | None, stop: threading.Event) -> RunStopped:
        trainer = self.trainer
        if settings is not None:
            try:
                trainer, description, path = self.factory(settings)
            except UserError as exc:
                return RunStopped(0, "failed", str(exc), build_error=True)
            except Exception as exc:  # a bug or an environment problem: keep the app alive
                log.error("building the run failed:\n%s", traceback.format_exc())
                return RunStopped(0, "failed", f"{type(exc).__name__}: {exc}", build_error=True)
            self.trainer, self.description, self.checkpoint_path = trainer, description, path
            if self._recorder is not None:
                self._recorder.close("stopped")
            self._recorder = self.recorder_factory() if self.recorder_factory is not None else None
            self.post(RunReady(trainer, description, path))
        self._apply_threads()
        error = None
        try:
            trainer.fit(FanOut(self._emit, self._recorder), stop)
        except UserError as exc:
            error = str(exc)
        except Exception as exc:
            log.error("training failed:\n%s", traceback.format_exc())
            error = f"{type(exc).__name__}: {exc}"
        error = error or self._failed
        if error:
            reason = "failed"
        elif self._finished and not stop.is_set():
            reason = "completed"
        else:
            reason = {"pause": "paused", "quit": "quit"}.get(self.intent, "stopped")
        checkpoint = None
        step = int(getattr(trainer, "step", 0))
        # not after a failure: the weights may be half-updated (the trainer saves the last good
        # ones itself when it detects divergence)
        if reason in ("stopped", "quit", "completed") and self.saved_step != step and step > 0:
            try:  # the automatic save when training stops or the app quits
                checkpoint = trainer.save(reason="stopped" if reason == "quit" else reason)
                self.saved_step = step
            except Exception as exc:
                log.error("saving failed:\n%s", traceback.format_exc())
                error = error or f"could not save a checkpoint: {exc}"
        return RunStopped(step, reason, error, checkpoint)

    def _save(self, trainer: Any, reason: str) -> None:
        try:
            path = trainer.save(reason=reason)
        except Exception as exc:
            self.post(SaveFailed(str(exc)))
            return
        self.saved_step = int(getattr(trainer, "step", 0))
        self.post(Saved(path, self.saved_step, reason))

    def _apply_threads(self) -> None:
        """Optionally leave the UI a core: torch.set_num_threads(--torch-threads)."""
        if not self.torch_threads:
            return
        try:
            import torch

            if torch.get_num_threads() != self.torch_threads:
                torch.set_num_threads(max(1, min(self.torch_threads, os.cpu_count() or 1)))
        except ImportError:
            pass
