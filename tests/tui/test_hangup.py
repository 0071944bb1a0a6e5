"""A hang-up (SIGHUP: the SSH session dropped) stops the run, saves it, and ends the process; the
UI stops all its work at once, so the step in flight and the save get the cores (a 3x1024 model's
step took 1.6 s instead of 0.6 s while the dead terminal's input thread spun and the refresh timer
drew; tests/tui/test_tmux.py checks the real signal in a real terminal)."""

from __future__ import annotations

import threading

from rnnplay.training.events import StepDone
from rnnplay.tui.app import make_app
from rnnplay.tui.canvas import TextRows
from tui_fakes import FakeFactory
from tui_helpers import wait_until


async def test_hangup_quiets_the_ui_saves_and_ends_the_process(ckpt_dir):
    factory = FakeFactory(steps=10_000_000, step_s=0.002)
    app = make_app(trainer_factory=factory, checkpoint_dir=ckpt_dir, warm_backend=False, refresh_hz=20)
    exited = threading.Event()
    codes: list[int] = []
    app.exit_process = lambda code: (codes.append(code), exited.set())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f5")
        await wait_until(pilot, lambda: app.phase == "running" and factory.trainers[0].step > 5, what="running")
        app._on_hangup()
        await wait_until(pilot, exited.is_set, what="the process to end")
        trainer = factory.trainers[0]
        assert codes == [129] and trainer.saves and trainer.saves[-1][1] == trainer.step
        stats = app.query_one("#run-stats", TextRows)
        shown = stats.plain
        app.session.metrics.record(StepDone(999_999, 10_000_000, 1.0, 1e-3, 1.0, 1.0, 1.0))  # new data...
        await pilot.pause(0.3)
        assert stats.plain == shown, "...not drawn: nothing refreshes after a hang-up"
