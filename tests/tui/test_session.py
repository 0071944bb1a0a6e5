"""The training session without Textual: plain threads for ``run_in_thread``, a list for ``post``.

It owns its phase (idle -> starting -> running -> stopping -> idle / paused), refuses requests that
do not fit the phase, saves on stop, and posts only state changes (per-step numbers stay in the
metrics buffer)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from rnnplay.tui.backend import TrainSettings
from rnnplay.tui.controller import PhaseChanged, RunReady, RunStopped, Saved, TrainingSession
from tui_fakes import FakeFactory


class Harness:
    def __init__(self, factory) -> None:
        self.events: list = []
        self.threads: list[threading.Thread] = []
        self.session = TrainingSession(factory, post=self.events.append, run_in_thread=self.run)

    def run(self, fn, name: str) -> None:
        thread = threading.Thread(target=fn, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()

    def phases(self) -> list[str]:
        return [e.phase for e in self.events if isinstance(e, PhaseChanged)]

    def of(self, kind) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    def wait(self, condition, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; events: {self.events[-5:]}")
            time.sleep(0.005)

    def settle(self) -> None:
        for thread in self.threads:
            thread.join(timeout=30)
            assert not thread.is_alive()


def settings(tmp_path) -> TrainSettings:
    return TrainSettings(corpus="play", checkpoint_dir=str(tmp_path / "ck"))


def test_a_run_goes_idle_starting_running_idle_and_posts_only_state_changes(tmp_path):
    h = Harness(FakeFactory(steps=300))
    assert h.session.phase == "idle" and h.session.start(settings(tmp_path))
    h.wait(lambda: h.of(RunStopped), "the run to end")
    h.settle()
    assert h.phases() == ["starting", "running", "idle"] and h.session.phase == "idle"
    (ready,) = h.of(RunReady)
    assert ready.description == "fake · 2×16" and h.session.description == "fake · 2×16"
    (stopped,) = h.of(RunStopped)
    assert stopped.reason == "completed" and stopped.error is None and stopped.step == 300
    assert [s.step for s in h.of(Saved)] == [300] and h.session.saved_step == 300
    assert len(h.events) < 10, "300 steps must not become 300 events"
    assert h.session.metrics.snapshot(force=True).step == 300  # the numbers are in the buffer


def test_pause_resume_and_stop_follow_the_phase_and_save(tmp_path):
    factory = FakeFactory(steps=10_000_000, step_s=0.001)
    h = Harness(factory)
    s = h.session
    assert not s.pause() and not s.resume() and not s.stop()  # nothing runs yet
    s.start(settings(tmp_path))
    assert not s.start(settings(tmp_path))  # one run at a time
    h.wait(lambda: s.phase == "running" and factory.trainers[0].step > 5, "running")
    assert not s.resume() and s.pause() and s.phase == "stopping"
    h.wait(lambda: s.phase == "paused", "paused")
    trainer = factory.trainers[0]
    paused_at = trainer.step
    time.sleep(0.05)
    assert trainer.step == paused_at and s.idle.is_set()
    assert s.resume() and s.phase == "running"
    h.wait(lambda: trainer.step > paused_at + 5, "resumed steps")
    assert s.stop() and s.phase == "stopping"
    h.wait(lambda: s.phase == "idle", "idle")
    h.settle()
    assert h.phases() == ["starting", "running", "stopping", "paused", "running", "stopping", "idle"]
    assert [e.reason for e in h.of(RunStopped)] == ["paused", "stopped"]
    assert trainer.saves[-1][1] == trainer.step and s.saved_step == trainer.step and not s.unsaved


def test_stop_while_paused_saves_steps_not_yet_saved(tmp_path):
    factory = FakeFactory(steps=10_000_000, step_s=0.001)
    h = Harness(factory)
    s = h.session
    s.start(settings(tmp_path))
    h.wait(lambda: s.phase == "running" and factory.trainers[0].step > 5, "running")
    s.pause()
    h.wait(lambda: s.phase == "paused", "paused")
    factory.trainers[0].step += 2  # steps the pause's save did not see
    assert s.unsaved and s.stop() and s.phase == "idle"
    h.wait(lambda: not s.unsaved, "the save")
    h.settle()
    assert h.of(Saved)[-1].step == factory.trainers[0].step and h.of(Saved)[-1].reason == "stopped"


def test_toggle_is_the_one_start_pause_resume_key(tmp_path):
    factory = FakeFactory(steps=10_000_000, step_s=0.001)
    h = Harness(factory)
    s = h.session
    assert not s.toggle(lambda: None) and s.phase == "idle"  # the form said no
    assert s.toggle(lambda: settings(tmp_path)) and h.phases()[0] == "starting"
    h.wait(lambda: s.phase == "running", "running")
    assert s.toggle(lambda: 1 / 0) and s.phase == "stopping"  # settings are only read to start
    h.wait(lambda: s.phase == "paused", "paused")
    assert s.toggle(lambda: 1 / 0) and s.phase == "running"
    s.stop()
    h.wait(lambda: s.phase == "idle", "idle")
    h.settle()


def test_a_run_that_cannot_be_built_goes_back_to_idle(tmp_path):
    h = Harness(FakeFactory(error="no such corpus: nope"))
    h.session.start(settings(tmp_path))
    h.wait(lambda: h.of(RunStopped), "the failure")
    h.settle()
    (stopped,) = h.of(RunStopped)
    assert stopped.build_error and stopped.reason == "failed" and "nope" in stopped.error
    assert h.phases() == ["starting", "idle"] and h.session.trainer is None and not h.of(RunReady)


def test_a_failure_in_training_is_reported_and_not_saved(tmp_path):
    factory = FakeFactory(steps=1000, fail_at=20)
    h = Harness(factory)
    h.session.start(settings(tmp_path))
    h.wait(lambda: h.of(RunStopped), "the failure")
    h.settle()
    (stopped,) = h.of(RunStopped)
    assert stopped.reason == "failed" and "boom" in stopped.error and stopped.checkpoint is None
    assert h.session.phase == "idle" and factory.trainers[0].saves == []


def test_shutdown_from_another_thread_stops_and_saves(tmp_path):
    factory = FakeFactory(steps=10_000_000, step_s=0.001)
    h = Harness(factory)
    h.session.start(settings(tmp_path))
    h.wait(lambda: h.session.phase == "running" and factory.trainers[0].step > 5, "running")
    done = threading.Event()
    threading.Thread(target=lambda: (h.session.shutdown(timeout=30), done.set()), daemon=True).start()
    assert done.wait(30)
    trainer = factory.trainers[0]
    assert h.session.idle.is_set() and trainer.saves[-1][1] == trainer.step
    h.settle()
    assert h.of(RunStopped)[-1].reason == "quit" and h.session.phase == "idle"


def test_the_session_module_needs_no_textual():
    code = ("import sys, rnnplay.tui.controller, rnnplay.tui.metrics, rnnplay.tui.backend\n"
            "assert 'textual' not in sys.modules, sorted(m for m in sys.modules if m.startswith('textual'))")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
