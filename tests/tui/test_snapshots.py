"""Snapshot tests (pytest-textual-snapshot) of each tab in a settled state.

The app runs with fakes that give fixed numbers, the run has finished, toasts are cleared and
cursors do not blink, so the screens are repeatable. Review changes with
``pytest tests/tui/test_snapshots.py --snapshot-update`` only after reading snapshot_report.html.
"""

from __future__ import annotations

from textual.widgets import Input, Static

from rnnplay.tui.app import make_app
from rnnplay.tui.classify_tab import ClassifyPane
from rnnplay.tui.generate_tab import GeneratePane
from tui_fakes import FakeClassifierRunner, FakeFactory
from tui_helpers import quiet, wait_until


def app_with_fakes(ckpt_dir, steps=200):
    return make_app(trainer_factory=FakeFactory(steps=steps), classifier_runner=FakeClassifierRunner(epochs=12),
                    checkpoint_dir=ckpt_dir, warm_backend=False, refresh_hz=20)


async def _train_to_the_end(pilot) -> None:
    app = pilot.app
    await pilot.press("f5")
    await wait_until(pilot, lambda: app.phase == "idle" and app.session.trainer is not None
                     and app.session.trainer.step == app.session.trainer.total, what="the fake run")
    await pilot.pause(0.2)
    app._tick()
    quiet(app)
    await pilot.pause(0.1)


def test_train_tab_80x24(snap_compare, ckpt_dir):
    assert snap_compare(app_with_fakes(ckpt_dir), terminal_size=(80, 24), run_before=_train_to_the_end)


def test_train_tab_120x40(snap_compare, ckpt_dir):
    assert snap_compare(app_with_fakes(ckpt_dir), terminal_size=(120, 40), run_before=_train_to_the_end)


def test_train_tab_fresh_start(snap_compare, ckpt_dir):
    async def settle(pilot):
        quiet(pilot.app)
        await pilot.pause(0.1)

    assert snap_compare(app_with_fakes(ckpt_dir), terminal_size=(80, 24), run_before=settle)


def test_generate_tab_with_unit_colouring(snap_compare, ckpt_dir):
    async def run_before(pilot):
        app = pilot.app
        await _train_to_the_end(pilot)
        pane = app.query_one(GeneratePane)
        pane.query_one("#gen-prime", Input).value = "the "
        pane.query_one("#gen-length", Input).value = "400"
        pane.query_one("#gen-layer", Input).value = "2"
        pane.query_one("#gen-unit-index", Input).value = "3"
        await pilot.press("f9")
        status = pane.query_one("#gen-status", Static)
        await wait_until(pilot, lambda: str(status.render()).startswith("400 characters"), what="generation")
        # the rate differs from run to run: keep it off the snapshot
        status.update("400 characters")
        app.query_one("#tabs Tabs").focus()
        quiet(app)
        await pilot.pause(0.1)

    assert snap_compare(app_with_fakes(ckpt_dir, steps=20), terminal_size=(100, 30), run_before=run_before)


def test_classify_tab_after_a_run(snap_compare, ckpt_dir):
    async def run_before(pilot):
        app = pilot.app
        app.query_one("#tabs").active = "classify"
        await pilot.pause(0.05)
        await pilot.press("f7")
        pane = app.query_one(ClassifyPane)
        await wait_until(pilot, lambda: pane.inspection is not None and not pane.running, what="experiment")
        app.query_one("#tabs Tabs").focus()
        quiet(app)
        await pilot.pause(0.1)

    assert snap_compare(app_with_fakes(ckpt_dir), terminal_size=(100, 30), run_before=run_before)


def test_help_screen(snap_compare, ckpt_dir):
    async def run_before(pilot):
        quiet(pilot.app)
        await pilot.pause(0.05)

    assert snap_compare(app_with_fakes(ckpt_dir), terminal_size=(80, 24), press=["f1"], run_before=run_before)
