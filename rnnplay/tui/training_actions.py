"""The app's training actions (F5, F6, ctrl+s), the training thread's messages, and leaving.

A mixin of :class:`rnnplay.tui.app.RnnPlayApp`, kept apart so each module stays small. Every
method here runs on the UI thread; the training thread only posts the messages handled below.
"""

from __future__ import annotations

import dataclasses

import os
import threading
import time
from pathlib import Path

from rnnplay.tui import backend
from rnnplay.tui.classify_tab import ClassifyPane
from rnnplay.tui.generate_tab import GeneratePane
from rnnplay.tui.messages import CheckpointWritten, SaveFailed, TrainerReady, TrainingStarted, TrainingStopped
from rnnplay.tui.train_tab import TrainPane

QUIT_DEADLINE_S = 1.8  # quitting while training returns within 2 s, even if a step runs long


class TrainingActions:
    """Training start / pause / resume / stop / save, and the exits that stop and save first."""

    exit_process = staticmethod(os._exit)  # how the shutdown thread ends the process (tests replace it)

    def action_start_training(self) -> None:
        if self.phase != "idle":
            self.notify("one moment: the run is " + self.phase, timeout=3)
            return
        pane = self.query_one(TrainPane)
        settings = pane.read_settings(self.device, self.checkpoint_dir)
        if isinstance(settings, str):
            self.notify(settings, severity="error", title="cannot start")
            return
        if self.resume_path:
            settings = dataclasses.replace(settings, resume=self.resume_path)
        pane.show_corpus_error("")
        self._status_note = "reading the corpus…"
        self.phase = "starting"
        self.session.start(settings)

    def action_pause_training(self) -> None:
        if self.phase == "running":
            self.session.request_stop("pause")
            self._status_note = "pausing after this step…"
            self.phase = "stopping"

    def action_resume_training(self) -> None:
        if self.phase == "paused":
            self._status_note = ""
            self.phase = "running"
            self.session.resume()

    def action_stop_training(self) -> None:
        if self.phase == "running" or self.phase == "starting":
            self.session.request_stop("stop")
            self._status_note = "stopping after this step, then saving…"
            self.phase = "stopping"
        elif self.phase == "paused":
            if self.session.unsaved:
                self.session.save("stopped")
            self._status_note = "stopped"
            self.phase = "idle"

    def action_save(self) -> None:
        if self.session.trainer is None:
            self.notify("nothing to save yet: start training with F5", timeout=4)
            return
        self.session.save("manual")

    # ---- messages from the training thread ----------------------------------------------------

    def on_trainer_ready(self, msg: TrainerReady) -> None:
        self.session.description = msg.description
        self.session.checkpoint_path = msg.checkpoint_path
        self.query_one(GeneratePane).set_source(msg.trainer, f"live weights · {msg.description}")
        self.query_one(TrainPane).set_run_info(f"{msg.description}\nsaves to {Path(msg.checkpoint_path).name}")
        self._status_note = ""
        self._update_status()
        self.gc_pacer.settle()

    def on_training_started(self, msg: TrainingStarted) -> None:
        if self.phase == "starting":
            self.phase = "running"
        if self.resume_path:
            self.resume_path = None
            self.query_one(TrainPane).set_resume(None)

    def on_training_stopped(self, msg: TrainingStopped) -> None:
        pane = self.query_one(TrainPane)
        if msg.checkpoint:
            self._note_saved(msg.checkpoint, msg.step, "stopped")
        if msg.error:
            if msg.build_error:
                pane.show_corpus_error(msg.error)
            self.notify(msg.error, title="training stopped", severity="error", timeout=12)
            self._status_note = "failed: " + msg.error.split(";")[0][:60]
        elif msg.reason == "completed":
            self._status_note = "finished" + (f", saved step {msg.step}" if self.session.saved_step == msg.step else "")
            self.notify(f"training finished at step {msg.step}", timeout=5)
        elif msg.reason == "paused":
            self._status_note = "paused: F5 resumes, F6 stops"
        elif self.session.saved_step == msg.step:
            self._status_note = f"{msg.reason}, saved step {msg.step}"
        else:
            self._status_note = msg.reason
        if self.session.trainer is None:
            self.session.description = ""
        self.phase = "paused" if msg.reason == "paused" and not msg.error else "idle"
        self._tick(force=True)  # the final state, curve included
        if self._quitting:
            self.exit(self.exit_code)

    def on_checkpoint_written(self, msg: CheckpointWritten) -> None:
        if msg.reason in ("manual", "stopped", "finished", "diverged"):
            self._note_saved(msg.path, msg.step, msg.reason)
        if self._quitting and self.phase in ("idle", "paused"):
            self.exit(self.exit_code)

    def _note_saved(self, path: str, step: int, reason: str) -> None:
        self.notify(f"{path} (step {step})", title="checkpoint saved", timeout=4)
        self.query_one(TrainPane).set_run_info(f"{self.session.description}\nsaved step {step} to {Path(path).name}")
        self._status_note = f"saved step {step}"
        self._update_status()

    def on_save_failed(self, msg: SaveFailed) -> None:
        self.notify(msg.error, title="save failed", severity="error", timeout=12)
        if self._quitting:
            self.exit(self.exit_code)

    # ---- leaving ------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Stop a running session (the step in flight finishes), save it, then exit (< 2 s)."""
        if self._quitting:
            self.exit(self.exit_code)  # a second ctrl+q: leave now
            return
        self._quitting = True
        if self.phase in ("running", "starting", "stopping"):
            self.session.request_stop("quit")
            self._status_note = "saving and quitting…"
            self.phase = "stopping"
            self.set_timer(QUIT_DEADLINE_S, lambda: self.exit(self.exit_code))
        elif self.session.unsaved:
            self.session.save("stopped")
            self._status_note = "saving and quitting…"
            self._update_status()
            self.set_timer(QUIT_DEADLINE_S, lambda: self.exit(self.exit_code))
        else:
            self.exit(self.exit_code)

    def _on_terminate(self) -> None:
        """SIGTERM: the same as ctrl+q (stop, save, exit), with a watchdog in case the UI is stuck."""
        self.exit_code = 143
        self.call_later(self.action_quit)
        self._watchdog(grace_s=3.0)

    def _on_hangup(self) -> None:
        """SIGHUP: the terminal (SSH session) is gone. Stop, save, and leave without drawing.

        Textual's own exit writes to the terminal and blocks once it has vanished, so a plain
        thread finishes the job: it waits for the step in flight, saves, and ends the process.
        """
        self.exit_code = 129
        self.quiet_ui()
        self._watchdog(grace_s=0.0)

    def quiet_ui(self) -> None:
        """Stop every piece of UI work when the terminal is gone, so the step in flight and the save
        get the cores: the driver's input thread, which spins on the dead terminal (end of file at
        every read), and the app's timers (refresh, GC). With a 3x1024 model on 2 cores the step in
        flight took 1.6 s instead of 0.6 s, and a hang-up up to 2.7 s to exit; now 0.3-0.7 s."""
        exit_event = getattr(self._driver, "exit_event", None)  # Textual's Linux driver
        if exit_event is not None:
            exit_event.set()
        for timer in list(self._timers):
            timer.stop()

    def _watchdog(self, grace_s: float) -> None:
        def run() -> None:
            try:
                self.query_one(ClassifyPane).stop_now()
            except Exception:  # the DOM is gone already
                pass
            self.session.shutdown(timeout=60.0)
            if grace_s:
                time.sleep(grace_s)  # time for a clean exit through the UI
            self.exit_process(self.exit_code)

        threading.Thread(target=run, name="rnnplay-shutdown", daemon=True).start()
