"""What keeps the UI responsive while training shares its cores: GC paced by the app."""

from __future__ import annotations

import gc

from rnnplay.tui import heap
from rnnplay.tui.app import make_app
from rnnplay.tui.controller import RunStopped
from tui_fakes import FakeFactory
from tui_helpers import session_events, wait_until


async def test_a_built_run_is_frozen_and_gc_is_paced_by_the_app_until_it_closes(ckpt_dir):
    factory = FakeFactory(steps=30)
    app = make_app(trainer_factory=factory, checkpoint_dir=ckpt_dir, warm_backend=False, refresh_hz=20)
    messages = []
    assert gc.get_freeze_count() == 0 and gc.isenabled()
    async with app.run_test(size=(80, 24), message_hook=messages.append) as pilot:
        await pilot.press("f5")
        await wait_until(pilot, lambda: session_events(messages, RunStopped), what="the run to end")
        assert gc.get_freeze_count() > 1000  # the app, its widgets and the run
        assert not gc.isenabled()  # the app's timer collects instead
        ticks = app.gc_pacer.ticks
        await pilot.pause(3 * heap.PERIOD_S)
        assert app.gc_pacer.ticks > ticks
    assert gc.get_freeze_count() == 0 and gc.isenabled()  # a closed app's objects can be collected again


def test_the_pacer_collects_young_often_and_everything_rarely():
    pacer = heap.HeapPacer()
    assert pacer.tick() is None  # not settled: Python's own collection runs
    pacer.settle()
    try:
        gens = [pacer.tick() for _ in range(heap.FULL_EVERY)]
        assert gens.count(2) == 1 and gens[-1] == 2
        assert gens.count(1) == heap.FULL_EVERY // heap.MIDDLE_EVERY - 1
        assert gens.count(0) == len(gens) - gens.count(1) - gens.count(2)

        class Cycle:
            pass

        c = Cycle()
        c.me = c
        ref = __import__("weakref").ref(c)
        del c
        assert ref() is not None  # automatic collection is off
        pacer.tick()
        assert ref() is None  # the young collection took it
    finally:
        pacer.release()
    assert gc.isenabled() and gc.get_freeze_count() == 0


async def test_left_right_on_the_tab_bar_switch_tabs_and_leave_inputs_alone(ckpt_dir):
    from textual.widgets import Input, TabbedContent, Tabs

    app = make_app(trainer_factory=FakeFactory(), checkpoint_dir=ckpt_dir, warm_backend=False)
    async with app.run_test(size=(100, 30)) as pilot:
        tabs = app.query_one("#tabs", TabbedContent)
        app.query_one(Tabs).focus()
        await pilot.pause()
        seen = []
        for key in ("right", "right", "right", "right", "right", "left", "left"):
            await pilot.press(key)
            seen.append(tabs.active)
        assert seen == ["generate", "runs", "classify", "write", "train", "write", "classify"]  # wraps, as the tab bar does
        await pilot.press("left")
        field = app.query_one("#hp-steps", Input)
        field.focus()
        await pilot.press("1", "2", "left", "3")
        assert tabs.active == "train" and field.value == "132"  # the cursor moved; no tab switch
