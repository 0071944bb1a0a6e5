"""Pilot tests of the Train tab with an injected fast trainer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from textual.widgets import Input, Static

from rnnplay.tui.app import make_app
from rnnplay.tui.canvas import TextRows
from rnnplay.tui.controller import PhaseChanged, RunStopped, Saved
from tui_fakes import FakeFactory
from tui_helpers import session_events, wait_until


def make(factory, ckpt_dir, **kw):
    return make_app(trainer_factory=factory, checkpoint_dir=ckpt_dir, warm_backend=False, refresh_hz=20, **kw)


async def test_f5_with_nothing_chosen_trains_the_default_corpus(ckpt_dir):
    factory = FakeFactory(steps=150)
    app = make(factory, ckpt_dir)
    messages = []
    async with app.run_test(size=(80, 24), message_hook=messages.append) as pilot:
        await pilot.press("f5")
        await wait_until(pilot, lambda: session_events(messages, RunStopped), what="the run to end")
        await wait_until(pilot, lambda: app.phase == "idle", what="idle")
        settings = factory.settings[0]
        assert settings.corpus == "play" and settings.values == {}
        assert any(e.phase == "running" for e in session_events(messages, PhaseChanged))
        stopped = session_events(messages, RunStopped)[0]
        assert stopped.reason == "completed" and stopped.error is None
        await pilot.pause(0.1)
        stats = app.query_one("#run-stats", TextRows).plain
        assert "150/150" in stats
        assert "step 150" in str(app.query_one("#status", Static).render())
        assert Path(ckpt_dir, "fake-run.pt").exists()


async def test_pause_resume_stop_waits_for_the_step_and_saves(ckpt_dir):
    factory = FakeFactory(steps=100_000, step_s=0.002)
    app = make(factory, ckpt_dir)
    messages = []
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        await pilot.press("f5")
        await wait_until(pilot, lambda: app.phase == "running" and factory.trainers[0].step > 5, what="running")
        await pilot.press("f5")  # pause
        assert app.phase in ("stopping", "paused")
        await wait_until(pilot, lambda: app.phase == "paused", what="paused")
        trainer = factory.trainers[0]
        paused_at = trainer.step
        await pilot.pause(0.1)
        assert trainer.step == paused_at, "a paused run must not take steps"
        await pilot.press("f5")  # resume with the same trainer
        await wait_until(pilot, lambda: trainer.step > paused_at + 5, what="resumed steps")
        assert trainer.fit_calls == 2 and len(factory.trainers) == 1
        await pilot.press("f6")
        await wait_until(pilot, lambda: app.phase == "idle", what="idle after stop")
        assert not app.workers._workers or all(w.group != "train" or w.is_finished for w in app.workers)
        stopped = session_events(messages, RunStopped)
        assert [m.reason for m in stopped] == ["paused", "stopped"]
        assert trainer.saves and trainer.saves[-1][1] == trainer.step  # saved at the step it stopped on
        assert Path(ckpt_dir, "fake-run.pt").exists()


async def test_invalid_field_does_not_start(ckpt_dir):
    factory = FakeFactory(steps=10)
    app = make(factory, ckpt_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("#hp-layers", Input).value = "0"
        await pilot.press("f5")
        await pilot.pause(0.1)
        assert app.phase == "idle" and not factory.settings
        assert app.focused is app.query_one("#hp-layers", Input)
        app.query_one("#hp-layers", Input).value = "3"
        app.query_one("#hp-lr", Input).value = "0.01"
        await pilot.press("f5")  # works while the input has focus (priority binding)
        await wait_until(pilot, lambda: bool(factory.settings), what="start")
        assert factory.settings[0].values == {"layers": 3, "lr": 0.01}


async def test_typed_corpus_path_is_checked_inline(ckpt_dir, tmp_path):
    factory = FakeFactory(steps=10)
    app = make(factory, ckpt_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        path_input = app.query_one("#corpus-path", Input)
        path_input.value = str(tmp_path / "missing.txt")
        await pilot.pause(0.05)
        error = app.query_one("#corpus-error", Static)
        assert error.display and "no such file" in str(error.render())
        await pilot.press("f5")
        await pilot.pause(0.05)
        assert not factory.settings
        binary = tmp_path / "blob.bin"
        binary.write_bytes(b"abc\x00def")
        path_input.value = str(binary)
        await pilot.pause(0.05)
        assert "binary" in str(error.render())
        good = tmp_path / "text.txt"
        good.write_text("hello world\n" * 50, encoding="utf-8")
        path_input.value = str(good)
        await pilot.pause(0.05)
        assert not error.display
        await pilot.press("f5")
        await wait_until(pilot, lambda: bool(factory.settings), what="start")
        assert factory.settings[0].corpus == str(good)


async def test_build_error_is_shown_inline_and_the_app_stays(ckpt_dir):
    factory = FakeFactory(error="corpus 'x' is empty; give a text file")
    app = make(factory, ckpt_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f5")
        await wait_until(pilot, lambda: app.phase == "idle" and factory.settings, what="back to idle")
        await pilot.pause(0.05)
        error = app.query_one("#corpus-error", Static)
        assert error.display and "is empty" in str(error.render())
        assert app.is_running


async def test_error_during_training_is_shown_and_the_app_stays(ckpt_dir):
    factory = FakeFactory(steps=1000, fail_at=20)
    app = make(factory, ckpt_dir)
    messages = []
    async with app.run_test(size=(80, 24), message_hook=messages.append) as pilot:
        await pilot.press("f5")
        await wait_until(pilot, lambda: session_events(messages, RunStopped), what="failure")
        stopped = session_events(messages, RunStopped)[0]
        assert stopped.reason == "failed" and "boom" in stopped.error
        await wait_until(pilot, lambda: app.phase == "idle", what="idle")
        assert "failed" in str(app.query_one("#status", Static).render())
        assert any("boom" in n.message for n in app._notifications)
        await pilot.press("f5")  # a new run can start
        await wait_until(pilot, lambda: len(factory.trainers) == 2, what="second run")


async def test_ctrl_s_saves_and_quit_during_training_exits_with_a_checkpoint(ckpt_dir):
    factory = FakeFactory(steps=10_000_000, step_s=0.002)
    app = make(factory, ckpt_dir)
    messages = []
    async with app.run_test(size=(80, 24), message_hook=messages.append) as pilot:
        await pilot.press("f5")
        await wait_until(pilot, lambda: app.phase == "running" and factory.trainers[0].step > 3, what="running")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: session_events(messages, Saved), what="save")
        assert factory.trainers[0].saves[0][2] == "manual"
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: not app.is_running, what="exit")
    trainer = factory.trainers[0]
    assert trainer.saves[-1][2] == "stopped" and trainer.saves[-1][1] == trainer.step
    assert Path(ckpt_dir, "fake-run.pt").exists()
    assert app.return_code in (0, None)


async def test_ctrl_c_quits_too(ckpt_dir):
    app = make(FakeFactory(), ckpt_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("#hp-steps", Input).focus()
        await pilot.press("ctrl+c")
        await wait_until(pilot, lambda: not app.is_running, what="exit")


def offered(select, values: list[str]) -> list[str]:
    """The values a Select accepts (setting one it does not list raises), restoring its value."""
    from textual.widgets._select import InvalidSelectValueError

    before, ok = select.value, []
    for v in values:
        try:
            select.value = v
            ok.append(v)
        except InvalidSelectValueError:
            pass
    select.value = before
    return ok


async def test_cell_and_device_are_choosers_whose_choice_f5_trains(ckpt_dir):
    """The cell (tanh, gru, lstm) and the device come from their declared settings as choosers;
    left at "default" they are not sent (the declared defaults apply); a choice is."""
    from textual.widgets import Select

    factory = FakeFactory(steps=10)
    app = make(factory, ckpt_dir, device="auto")
    async with app.run_test(size=(100, 30)) as pilot:
        cell = app.query_one("#hp-cell", Select)
        device = app.query_one("#hp-device", Select)
        assert cell.is_blank() and device.is_blank()
        assert offered(cell, ["tanh", "gru", "lstm", "rnn", "cuda:0"]) == ["tanh", "gru", "lstm"]
        assert offered(device, ["auto", "cpu", "cuda:0"]) == ["auto", "cpu"]  # before torch has loaded
        cell.value = "lstm"
        device.value = "cpu"
        await pilot.press("f5")
        await wait_until(pilot, lambda: bool(factory.settings), what="start")
        assert factory.settings[0].values == {"cell": "lstm"}
        assert factory.settings[0].device == "cpu"


async def test_devices_found_by_torch_are_listed_and_a_prefilled_device_kept(ckpt_dir):
    from textual.widgets import Select

    factory = FakeFactory(steps=10)
    app = make(factory, ckpt_dir, prefill={"device": "cuda:1", "cell": "gru"})
    async with app.run_test(size=(100, 30)) as pilot:
        device = app.query_one("#hp-device", Select)
        assert device.value == "cuda:1" and app.query_one("#hp-cell", Select).value == "gru"
        app.query_one("TrainPane").set_devices(("auto", "cpu", "cuda:0"))
        await pilot.pause(0.05)
        assert device.value == "cuda:1"
        assert offered(device, ["auto", "cpu", "cuda:0", "cuda:1", "cuda:2", "mps"]) == ["auto", "cpu", "cuda:0",
                                                                                         "cuda:1"]
        device.value = "cuda:1"
        await pilot.press("f5")
        await wait_until(pilot, lambda: bool(factory.settings), what="start")
        assert factory.settings[0].device == "cuda:1" and factory.settings[0].values == {"cell": "gru"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
async def test_a_real_run_on_cuda_shows_the_gpu_line(ckpt_dir):
    """The real trainer on the GPU: the run panel gains the GPU's memory (and utilization) line."""
    app = make_app(checkpoint_dir=ckpt_dir, warm_backend=False, refresh_hz=20,
                   prefill={"device": "cuda:0", "steps": 100_000, "hidden": 64, "layers": 1})
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f5")
        stats = app.query_one("#run-stats", TextRows)
        await wait_until(pilot, lambda: "gpu " in stats.plain, timeout=120, what="the GPU line")
        assert "mem " in stats.plain and " GB" in stats.plain
        await pilot.press("f6")
        await wait_until(pilot, lambda: app.phase == "idle", timeout=60, what="idle after stop")
    assert any(Path(ckpt_dir).glob("*.pt"))
