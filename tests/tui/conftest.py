import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


async def wait_until(pilot, condition, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``condition`` while the app runs (generous budget: the machine may be busy)."""
    import time

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


@pytest.fixture
def ckpt_dir(tmp_path):
    d = tmp_path / "checkpoints"
    return str(d)
