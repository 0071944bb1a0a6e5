"""An unexpected error in the app: the run is saved, the traceback goes to a log file, and the
command says so in one line and exits with 1 (Textual printed a long traceback and exited with 0).
Also: a terminal that cannot draw (TERM=dumb) gets one clear line, not escape codes."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnnplay.commands.tui import after_crash
from rnnplay.tui.app import make_app
from tui_fakes import FakeFactory
from tui_helpers import wait_until


def make(factory, ckpt_dir):
    return make_app(trainer_factory=factory, checkpoint_dir=ckpt_dir, warm_backend=False, refresh_hz=20)


def boom() -> None:
    raise ZeroDivisionError("a bug in a timer")


async def test_a_crash_while_training_saves_the_run_and_leaves_one_line(ckpt_dir, log_dir, capsys):
    factory = FakeFactory(steps=10_000_000, step_s=0.002)
    app = make(factory, ckpt_dir)
    with pytest.raises(ZeroDivisionError):  # run_test hands the app's error to the test
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("f5")
            await wait_until(pilot, lambda: app.phase == "running" and factory.trainers[0].step > 5, what="running")
            app.set_timer(0.01, boom)
            await wait_until(pilot, lambda: app.crash is not None, what="the crash")
            await pilot.pause(0.2)
    assert app.return_code == 1
    line = after_crash(app)
    trainer = factory.trainers[0]
    assert trainer.saves and trainer.saves[-1][1] == trainer.step, "the run must be saved"
    assert "\n" not in line and "ZeroDivisionError: a bug in a timer" in line
    assert str(Path(ckpt_dir, "fake-run.pt")) in line and f"(step {trainer.step})" in line
    logs = list(log_dir.glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in line
    text = logs[0].read_text()
    assert "Traceback" in text and "ZeroDivisionError" in text and "def boom" not in line
    assert "Traceback" not in capsys.readouterr().err  # Textual's traceback is not printed


async def test_a_crash_while_paused_saves_the_unsaved_steps(ckpt_dir, log_dir):
    factory = FakeFactory(steps=10_000_000, step_s=0.002)
    app = make(factory, ckpt_dir)
    with pytest.raises(ZeroDivisionError):
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("f5")
            await wait_until(pilot, lambda: app.phase == "running" and factory.trainers[0].step > 5, what="running")
            await pilot.press("f5")
            await wait_until(pilot, lambda: app.phase == "paused", what="paused")
            factory.trainers[0].step += 3  # steps the pause's save has not seen
            app.set_timer(0.01, boom)
            await wait_until(pilot, lambda: app.crash is not None, what="the crash")
    line = after_crash(app)
    trainer = factory.trainers[0]
    assert trainer.saves[-1][1] == trainer.step and f"(step {trainer.step})" in line


async def test_a_crash_before_any_run_says_so_without_a_checkpoint(ckpt_dir, log_dir):
    app = make(FakeFactory(), ckpt_dir)
    with pytest.raises(ZeroDivisionError):
        async with app.run_test(size=(80, 24)) as pilot:
            app.call_later(boom)
            await wait_until(pilot, lambda: app.crash is not None, what="the crash")
    line = after_crash(app)
    assert "saved" not in line and "details in" in line and not Path(ckpt_dir).exists()


def run_in_a_pty(args: list[str], env: dict, timeout: float = 30.0) -> tuple[int, str]:
    """Run ``args`` with stdin, stdout and stderr on a pseudo-terminal; return (exit code, output)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True)
    os.close(follower)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the other end closed
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        else:
            raise AssertionError(f"still running after {timeout} s; output so far: {out[-300:]!r}")
        return proc.wait(timeout=10), out.decode("utf-8", "replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)


def test_term_dumb_gets_one_line_and_no_escape_codes():
    env = {**os.environ, "TERM": "dumb"}
    code, out = run_in_a_pty([sys.executable, "-m", "rnnplay"], env, timeout=20)
    assert code == 2
    lines = out.strip().splitlines()
    assert len(lines) == 1 and "TERM=dumb" in lines[0] and "rnnplay train" in lines[0]
    assert "\x1b" not in out
