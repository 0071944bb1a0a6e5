"""The training session: phase machine, the training thread worker, saves.

Phases: ``idle`` -> ``starting`` (building the run) -> ``running`` -> ``stopping`` (the step in
flight finishes, then a save) -> ``idle``; a pause goes ``running`` -> ``stopping`` -> ``paused``,
and F5 resumes. Every transition happens on the UI thread; the worker only reads the stop event
and posts messages. The trainer's per-step events go to the metrics buffer, never to the queue.
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from typing import TYPE_CHECKING, Any

from rnnplay.errors import UserError
from rnnplay.training.events import CheckpointSaved, Failed, Finished, Started
from rnnplay.tui.backend import TrainSettings
from rnnplay.tui.messages import CheckpointWritten, SaveFailed, TrainerReady, TrainingStarted, TrainingStopped
from rnnplay.tui.metrics import MetricsBuffer

if TYPE_CHECKING:
    from rnnplay.tui.app import RnnPlayApp

log = logging.getLogger("rnnplay.tui")


class TrainingSession:
    """Owns the trainer, its stop event and the metrics buffer; driven by the app's actions."""

    def __init__(self, app: RnnPlayApp, factory, torch_threads: int | None = None) -> None:
        self.app = app
        self.factory = factory
        self.torch_threads = torch_threads
        self.metrics = MetricsBuffer()
        self.trainer: Any = None
        self.description = ""
        self.checkpoint_path: str | None = None
        self.saved_step: int | None = None
        self.intent = "stop"  # why the stop event was set: "pause", "stop" or "quit"
        self._stop = threading.Event()
        self.idle = threading.Event()  # set while no training thread runs
        self.idle.set()
        self._failed: str | None = None
        self._finished = False

    # ---- requests from the UI thread --------------------------------------------------------

    def start(self, settings: TrainSettings) -> None:
        """Build a new run and train it (phase must be idle)."""
        self.trainer, self.saved_step, self.checkpoint_path = None, None, None
        self.metrics.reset()
        self._launch(settings=settings)

    def resume(self) -> None:
        """Continue a paused run with the same trainer."""
        self._launch(settings=None)

    def _launch(self, settings: TrainSettings | None) -> None:
        self._stop = threading.Event()
        self._failed, self._finished, self.intent = None, False, "stop"
        stop = self._stop
        self.idle.clear()
        self.app.run_worker(lambda: self._work(settings, stop), name="train", group="train",
                            description="training", thread=True, exit_on_error=False)

    def request_stop(self, intent: str) -> None:
        """Ask the run to stop after the step in flight (``intent``: pause, stop or quit)."""
        self.intent = intent
        self._stop.set()

    def save(self, reason: str = "manual") -> None:
        """Save the current weights from a thread (waits for the step in flight)."""
        trainer = self.trainer
        if trainer is None:
            return
        self.app.run_worker(lambda: self._save(trainer, reason), name="save", group="save",
                            thread=True, exit_on_error=False)

    def report(self) -> dict:
        """The last run's figures as plain numbers (for benchmarks)."""
        snap = self.metrics.snapshot(force=True)
        return {"step": snap.step, "total_steps": snap.total_steps, "elapsed_s": snap.elapsed_s,
                "chars_per_s": snap.chars_per_s, "loss": snap.loss, "val_loss": snap.val_loss,
                "checkpoint": self.checkpoint_path, "saved_step": self.saved_step}

    @property
    def unsaved(self) -> bool:
        return self.trainer is not None and getattr(self.trainer, "step", 0) != self.saved_step \
            and getattr(self.trainer, "step", 0) > 0

    # ---- the training thread -----------------------------------------------------------------

    def _emit(self, event: Any) -> None:
        """The trainer's callback: cheap; state changes also become messages."""
        self.metrics.record(event)
        if isinstance(event, Started):
            self.app.post_message(TrainingStarted(event))
        elif isinstance(event, CheckpointSaved):
            self.saved_step = event.step
            self.app.post_message(CheckpointWritten(event.path, event.step, event.reason))
        elif isinstance(event, Failed):
            self._failed = event.message
        elif isinstance(event, Finished):
            self._finished = event.reason == "completed"

    def _work(self, settings: TrainSettings | None, stop: threading.Event) -> None:
        try:
            self._train(settings, stop)
        finally:
            self.idle.set()

    def shutdown(self, timeout: float) -> None:
        """From any thread, without the UI: stop, wait for the step in flight, make sure it is saved.

        Used when the terminal is gone (SIGHUP) and the UI can no longer draw or exit cleanly.
        """
        self.request_stop("quit")
        self.idle.wait(timeout)
        trainer = self.trainer
        if trainer is not None and self.idle.is_set() and self.unsaved:
            try:
                trainer.save(reason="stopped")
                self.saved_step = int(getattr(trainer, "step", 0))
            except Exception:
                log.error("saving at hang-up failed:\n%s", traceback.format_exc())

    def _train(self, settings: TrainSettings | None, stop: threading.Event) -> None:
        trainer = self.trainer
        if settings is not None:
            try:
                trainer, description, path = self.factory(settings)
            except UserError as exc:
                self.app.post_message(TrainingStopped(0, "failed", str(exc), build_error=True))
                return
            except Exception as exc:  # a bug or an environment problem: keep the app alive
                log.error("building the run failed:\n%s", traceback.format_exc())
                self.app.post_message(TrainingStopped(0, "failed", f"{type(exc).__name__}: {exc}",
                                                      build_error=True))
                return
            self.trainer = trainer
            self.app.post_message(TrainerReady(trainer, description, path))
        self._apply_threads()
        error = None
        try:
            trainer.fit(self._emit, stop)
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
        self.app.post_message(TrainingStopped(step, reason, error, checkpoint))

    def _save(self, trainer: Any, reason: str) -> None:
        try:
            path = trainer.save(reason=reason)
        except Exception as exc:
            self.app.post_message(SaveFailed(str(exc)))
            return
        self.saved_step = int(getattr(trainer, "step", 0))
        self.app.post_message(CheckpointWritten(path, self.saved_step, reason))

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
