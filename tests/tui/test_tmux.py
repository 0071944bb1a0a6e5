"""The real `rnnplay` in a real terminal (tmux): keys in, screen out, clean exits with a checkpoint.

Skipped when tmux is absent. Assertions read one line (the one with `step N/total`), never a whole screen.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

STEP = re.compile(r"\bstep (\d+)/\d+")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=20).stdout


def status_line(session: str) -> str:
    """The line of the Train tab that shows `step N/total`."""
    lines = tmux("capture-pane", "-t", session, "-p").splitlines()
    return next((ln for ln in reversed(lines) if STEP.search(ln)), "")


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start(session: str, workdir: Path) -> int:
    cmd = (f"cd {shlex.quote(str(workdir))} && exec env TERM=xterm-256color OMP_NUM_THREADS=2 "
           f"{shlex.quote(sys.executable)} -m rnnplay --corpus names --hidden 32 --layers 1 --seq-len 32 "
           f"--batch-size 8 --steps 1000000 --refresh-hz 8")
    tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30", cmd)
    tmux("set-option", "-t", session, "remain-on-exit", "on")
    pid = int(tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip())
    wait_for(lambda: "○ idle" in tmux("capture-pane", "-t", session, "-p"), 60, "the first frame")
    return pid


def steps_seen(session: str, count: int, timeout: float) -> list[int]:
    seen: list[int] = []

    def more() -> bool:
        m = STEP.search(status_line(session))
        if m and (not seen or int(m.group(1)) > seen[-1]):
            seen.append(int(m.group(1)))
        return len(seen) >= count and seen[-1] > 0

    wait_for(more, timeout, f"the step counter to move (saw {seen})")
    return seen


def dead_status(session: str) -> str:
    """``status|signal`` of the pane's exited process, or "" while tmux has not reaped it yet."""
    status = tmux("display-message", "-p", "-t", session, "#{pane_dead_status}|#{pane_dead_signal}").strip()
    return status if status.strip("|") else ""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def test_f5_trains_and_ctrl_q_exits_with_a_checkpoint(tmp_path):
    session = f"rnnplay-test-{os.getpid()}"
    try:
        pid = start(session, tmp_path)
        tmux("send-keys", "-t", session, "F5")
        seen = steps_seen(session, 3, 120)
        assert seen == sorted(seen) and seen[-1] > seen[0]
        tmux("send-keys", "-t", session, "C-q")
        wait_for(lambda: tmux("display-message", "-p", "-t", session, "#{pane_dead}").strip() == "1", 30, "exit")
        # tmux marks the pane dead when the terminal closes and fills in the status when it has
        # reaped the process, a moment later
        status = wait_for(lambda: dead_status(session), 10, "the exit status")
        assert status in ("0|", "0|0"), f"exit status|signal: {status!r}"
        assert not alive(pid)
        saved = list((tmp_path / "checkpoints").glob("names-*.pt"))
        assert saved, "quitting while training must leave a checkpoint"
    finally:
        tmux("kill-session", "-t", session)


def test_hangup_stops_saves_and_exits(tmp_path):
    """A dropped SSH session: the terminal goes away (SIGHUP); no process is left training."""
    session = f"rnnplay-hup-{os.getpid()}"
    try:
        pid = start(session, tmp_path)
        tmux("send-keys", "-t", session, "F5")
        steps_seen(session, 2, 120)
    finally:
        tmux("kill-session", "-t", session)  # sends SIGHUP to the app
    wait_for(lambda: not alive(pid), 30, "the app to exit after SIGHUP")
    assert list((tmp_path / "checkpoints").glob("names-*.pt")), "a hang-up must save the run"
