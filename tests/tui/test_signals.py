"""A stray SIGCONT (kill -STOP / -CONT, a job scheduler's suspend and resume) redraws only; one
after our own SIGTSTP goes on to the driver's handler, which restarts the terminal mode."""

from __future__ import annotations

import os
import signal

import pytest

from rnnplay.tui.signals import guard_sigcont

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGTSTP"), reason="no job-control signals here")


def test_sigcont_reaches_the_driver_only_after_a_suspend():
    calls: list[str] = []
    before = signal.getsignal(signal.SIGTSTP), signal.getsignal(signal.SIGCONT)
    try:
        signal.signal(signal.SIGTSTP, lambda *_: calls.append("driver tstp"))  # stands in for Textual's
        signal.signal(signal.SIGCONT, lambda *_: calls.append("driver cont"))
        assert guard_sigcont(lambda: calls.append("redraw"))
        os.kill(os.getpid(), signal.SIGCONT)
        assert calls == ["redraw"]
        os.kill(os.getpid(), signal.SIGTSTP)
        os.kill(os.getpid(), signal.SIGCONT)
        os.kill(os.getpid(), signal.SIGCONT)
        assert calls == ["redraw", "driver tstp", "driver cont", "redraw"]
    finally:
        signal.signal(signal.SIGTSTP, before[0])
        signal.signal(signal.SIGCONT, before[1])


def test_nothing_to_guard_without_the_drivers_handlers():
    before = signal.getsignal(signal.SIGTSTP), signal.getsignal(signal.SIGCONT)
    try:
        signal.signal(signal.SIGCONT, signal.SIG_DFL)
        assert not guard_sigcont(lambda: None)
        assert signal.getsignal(signal.SIGCONT) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTSTP, before[0])
        signal.signal(signal.SIGCONT, before[1])
