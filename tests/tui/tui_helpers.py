"""Helpers shared by the TUI tests (imported as a plain module: tests/tui is on sys.path)."""

from __future__ import annotations

import time


async def wait_until(pilot, condition, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``condition`` while the app runs (generous budget: the machine may be busy)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def quiet(app) -> None:
    """Settle the screen for snapshots: no toasts, no blinking cursors."""
    from textual.widgets import Input

    app.clear_notifications()
    for widget in app.query(Input):
        widget.cursor_blink = False


def session_events(messages, kind) -> list:
    """The training session's events of type ``kind`` among the app's messages (``message_hook``)."""
    from rnnplay.tui.messages import SessionChanged

    return [m.event for m in messages if isinstance(m, SessionChanged) and isinstance(m.event, kind)]
