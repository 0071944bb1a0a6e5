"""Pilot tests: the Classify tab, help, the command palette, a tiny real model end to end."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Static

from rnnplay.tui.app import make_app
from rnnplay.tui.classify_tab import ClassifyPane
from rnnplay.tui.generate_tab import GeneratePane
from rnnplay.tui.controller import RunStopped
from rnnplay.tui.messages import CheckpointLoaded, GenerateProgress
from rnnplay.tui.train_tab import TrainPane
from rnnplay.tui.screens import HelpScreen, OpenCheckpointScreen
from tui_fakes import FakeClassifierRunner, FakeFactory
from tui_helpers import session_events, wait_until


async def test_classify_tab_runs_and_shows_the_hidden_states(ckpt_dir):
    runner = FakeClassifierRunner(epochs=6)
    app = make_app(trainer_factory=FakeFactory(), classifier_runner=runner, checkpoint_dir=ckpt_dir,
                   warm_backend=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one("#tabs").active = "classify"
        await pilot.pause(0.05)
        pane = app.query_one(ClassifyPane)
        pane.query_one("#cls-epochs", Input).value = "5"
        await pilot.press("f7")
        await wait_until(pilot, lambda: pane.inspection is not None, what="the experiment")
        await pilot.pause(0.05)
        assert runner.options[0]["epochs"] == 5
        stats = str(pane.query_one("#cls-stats", Static).render())
        assert "5/5" in stats and "0.870" in stats  # test accuracy of epoch 5 (0.62 + 0.25)
        view = str(pane.query_one("#cls-inspect", Static).render())
        assert "sequence 0" in view and "unit 0" in view and "r +0.91" in view
        pane.query_one("#cls-seq", Input).value = "1"
        await pilot.pause(0.05)
        assert "sequence 1: label 1" in str(pane.query_one("#cls-inspect", Static).render())


async def test_classify_can_be_stopped(ckpt_dir):
    runner = FakeClassifierRunner(epochs=1000, delay_s=0.01)
    app = make_app(trainer_factory=FakeFactory(), classifier_runner=runner, checkpoint_dir=ckpt_dir,
                   warm_backend=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one("#tabs").active = "classify"
        await pilot.pause(0.05)
        await pilot.press("f7")
        pane = app.query_one(ClassifyPane)
        await wait_until(pilot, lambda: len(pane._epochs) >= 2, what="epochs")
        await pilot.press("f7")
        await wait_until(pilot, lambda: not pane.running, what="stop")
        assert len(pane._epochs) < 1000


async def test_help_keys_and_question_mark_only_outside_inputs(ckpt_dir):
    app = make_app(trainer_factory=FakeFactory(), checkpoint_dir=ckpt_dir, warm_backend=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        await pilot.pause(0.05)
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause(0.05)
        app.query_one("#corpus-path", Input).focus()
        await pilot.press("question_mark")
        await pilot.pause(0.05)
        assert not isinstance(app.screen, HelpScreen)
        assert app.query_one("#corpus-path", Input).value == "?"
        app.query_one("#corpus-path", Input).value = ""
        app.query_one("#tabs Tabs").focus()
        await pilot.press("question_mark")
        await pilot.pause(0.05)
        assert isinstance(app.screen, HelpScreen)


async def test_command_palette_has_the_main_actions(ckpt_dir):
    app = make_app(trainer_factory=FakeFactory(), checkpoint_dir=ckpt_dir, warm_backend=False)
    async with app.run_test(size=(80, 24)):
        titles = [c.title for c in app.get_system_commands(app.screen)]
    for wanted in ("Train: start / pause / resume", "Train: stop", "Generate text", "Save checkpoint",
                   "Open checkpoint", "Classifier: run / stop", "Help", "Theme"):
        assert wanted in titles


async def test_tiny_real_model_quit_saves_then_open_and_generate(tmp_path):
    """The real pipeline and trainer, a tiny model: ctrl+q while training leaves a checkpoint that
    ctrl+o opens and F9 samples from."""
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("the cat sat on the mat.\nthe dog ate the log.\n" * 200, encoding="utf-8")
    ckpt = tmp_path / "ck"
    app = make_app(checkpoint_dir=str(ckpt), corpus=str(corpus), warm_backend=False, refresh_hz=10)
    async with app.run_test(size=(100, 30)) as pilot:
        for key, value in (("steps", "100000"), ("hidden", "16"), ("layers", "1"), ("seq_len", "16"),
                           ("batch_size", "4")):
            app.query_one(f"#hp-{key}", Input).value = value
        await pilot.press("f5")
        await wait_until(pilot, lambda: app.session.trainer is not None and app.session.trainer.step >= 3,
                         timeout=90, what="real training steps")
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: not app.is_running, timeout=30, what="exit")
    saved = sorted(ckpt.glob("tiny-*.pt"))
    assert saved, list(ckpt.iterdir()) if ckpt.exists() else "no checkpoint folder"

    app = make_app(checkpoint_dir=str(ckpt), warm_backend=False)
    messages = []
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        await pilot.press("ctrl+o")
        await pilot.pause(0.1)
        assert isinstance(app.screen, OpenCheckpointScreen)
        await pilot.press("enter")
        await wait_until(pilot, lambda: any(isinstance(m, CheckpointLoaded) for m in messages), timeout=60,
                         what="checkpoint loaded")
        loaded = [m for m in messages if isinstance(m, CheckpointLoaded)][0]
        assert loaded.error is None and Path(loaded.path).name.startswith("tiny-")
        assert app.query_one(TrainPane).resume_path == loaded.path
        app.query_one(GeneratePane).query_one("#gen-length", Input).value = "50"
        await pilot.press("f9")
        await wait_until(pilot, lambda: any(isinstance(m, GenerateProgress) and m.done for m in messages),
                         timeout=60, what="generation")
        done = [m for m in messages if isinstance(m, GenerateProgress) and m.done][-1]
        assert done.error is None and len(done.text) == 50 and set(done.text) <= set(corpus.read_text())
        # F5 now resumes the opened checkpoint's run
        await pilot.press("f5")
        await wait_until(pilot, lambda: app.phase == "running", timeout=60, what="resumed run")
        assert app.session.trainer.step > 0
        await pilot.press("f6")
        await wait_until(pilot, lambda: session_events(messages, RunStopped), timeout=60,
                         what="stop")
