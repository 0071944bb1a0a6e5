"""Pilot tests of the Generate tab: live weights through a Sampler snapshot, keys, colouring."""

from __future__ import annotations

from textual.widgets import Input, Static

from rnnplay.tui.app import make_app
from rnnplay.tui.generate_tab import GeneratePane
from rnnplay.tui.messages import GenerateProgress
from tui_fakes import FakeFactory
from tui_helpers import wait_until


def make(factory, ckpt_dir):
    return make_app(trainer_factory=factory, checkpoint_dir=ckpt_dir, warm_backend=False, refresh_hz=20)


async def test_f9_without_a_model_says_what_to_do(ckpt_dir):
    app = make(FakeFactory(), ckpt_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f9")
        await pilot.pause(0.05)
        assert app.query_one("#tabs").active == "generate"
        assert any("F5" in n.message for n in app._notifications)


async def test_generates_from_live_weights_while_training(ckpt_dir):
    factory = FakeFactory(steps=10_000_000, step_s=0.002)
    app = make(factory, ckpt_dir)
    progress = []
    async with app.run_test(size=(100, 30), message_hook=progress.append) as pilot:
        await pilot.press("f5")
        await wait_until(pilot, lambda: app.phase == "running", what="running")
        pane = app.query_one(GeneratePane)
        pane.query_one("#gen-length", Input).value = "3000"
        pane.query_one("#gen-prime", Input).value = "the q"
        step_before = factory.trainers[0].step
        await pilot.press("f9")
        await wait_until(pilot, lambda: any(isinstance(m, GenerateProgress) and m.done for m in progress),
                         what="generation")
        done = [m for m in progress if isinstance(m, GenerateProgress) and m.done][-1]
        assert done.error is None and len(done.text) == 3000
        assert set(done.text) <= set(factory.trainers[0].vocab.chars)
        assert app.phase == "running" and factory.trainers[0].step > step_before  # training kept going
        # chunks, not one message per character
        n_msgs = sum(isinstance(m, GenerateProgress) for m in progress)
        assert n_msgs < 3000 / 10
        await pilot.pause(0.05)
        assert str(app.query_one("#gen-text", Static).render()).startswith("the q" + done.text[:20])
        # same seed, same text
        progress.clear()
        await pilot.press("f9")
        await wait_until(pilot, lambda: any(isinstance(m, GenerateProgress) and m.done for m in progress),
                         what="second generation")
        again = [m for m in progress if isinstance(m, GenerateProgress) and m.done][-1]
        assert again.text == done.text
        await pilot.press("ctrl+q")


async def test_temperature_keys_seed_key_and_unit_colouring(ckpt_dir):
    factory = FakeFactory(steps=20)
    app = make(factory, ckpt_dir)
    progress = []
    async with app.run_test(size=(100, 30), message_hook=progress.append) as pilot:
        await pilot.press("f5")
        await wait_until(pilot, lambda: app.phase == "idle" and factory.trainers, what="short run")
        await pilot.press("f9")
        pane = app.query_one(GeneratePane)
        temp = pane.query_one("#gen-temp", Input)
        app.query_one("#tabs Tabs").focus()  # not typing: [ and ] move the temperature
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert temp.value == "1"
        await pilot.press("left_square_bracket")
        assert temp.value == "0.9"
        prime = pane.query_one("#gen-prime", Input)
        prime.focus()
        await pilot.press("left_square_bracket")  # typing: [ goes into the text
        assert prime.value.endswith("[") and temp.value == "0.9"
        seed = pane.query_one("#gen-seed", Input)
        before = seed.value
        for _ in range(3):
            await pilot.press("ctrl+r")
            if seed.value != before:
                break
        assert seed.value != before
        prime.value = "ab"
        pane.query_one("#gen-layer", Input).value = "2"
        pane.query_one("#gen-unit-index", Input).value = "3"
        pane.query_one("#gen-length", Input).value = "200"
        progress.clear()
        await pilot.press("f9")
        await wait_until(pilot, lambda: any(isinstance(m, GenerateProgress) and m.done for m in progress),
                         what="generation")
        done = [m for m in progress if isinstance(m, GenerateProgress) and m.done][-1]
        assert done.error is None and len(done.activations) == 200
        assert all(-1.0 <= a <= 1.0 for a in done.activations) and len(set(done.activations)) > 1
        await pilot.pause(0.05)
        rendered = pane._render_text(done.text, done.activations)
        backgrounds = {span.style.bgcolor for span in rendered.spans if span.style and span.style.bgcolor}
        assert len(backgrounds) > 2  # characters coloured by the unit's activation
        # a unit out of range is an error in the pane, not a crash
        pane.query_one("#gen-unit-index", Input).value = "999"
        progress.clear()
        await pilot.press("f9")
        await wait_until(pilot, lambda: any(isinstance(m, GenerateProgress) and m.done for m in progress),
                         what="error")
        assert "unit must be" in [m for m in progress if isinstance(m, GenerateProgress)][-1].error
        assert app.is_running


async def test_open_checkpoint_lists_the_folder(ckpt_dir, tmp_path):
    app = make(FakeFactory(), str(tmp_path / "none"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+o")
        await pilot.pause(0.05)
        from rnnplay.tui.screens import OpenCheckpointScreen

        assert isinstance(app.screen, OpenCheckpointScreen)
        assert "No checkpoints" in str(app.screen.query_one("#open-empty", Static).render())
        await pilot.press("escape")
        await pilot.pause(0.05)
        assert not isinstance(app.screen, OpenCheckpointScreen)


async def test_several_samples_in_one_batch_and_a_stop_text(ckpt_dir):
    from rnnplay.tui.generate_tab import SEPARATOR

    factory = FakeFactory(steps=20)
    app = make(factory, ckpt_dir)
    progress = []
    async with app.run_test(size=(100, 34), message_hook=progress.append) as pilot:
        await pilot.press("f5")
        await wait_until(pilot, lambda: app.phase == "idle" and factory.trainers, what="short run")
        pane = app.query_one(GeneratePane)
        vocab = factory.trainers[0].vocab
        stop = next(c for c in "e ta" if c in vocab)  # a common character: every sample meets it
        pane.query_one("#gen-prime", Input).value = ""
        pane.query_one("#gen-length", Input).value = "400"
        pane.query_one("#gen-samples", Input).value = "4"
        pane.query_one("#gen-stop", Input).value = stop
        await pilot.press("f9")
        await wait_until(pilot, lambda: any(isinstance(m, GenerateProgress) and m.done for m in progress),
                         what="samples")
        done = [m for m in progress if isinstance(m, GenerateProgress) and m.done][-1]
        assert done.error is None
        samples = done.text.split(SEPARATOR)
        assert len(samples) == 4 and all(stop not in t and len(t) < 400 for t in samples)
        await pilot.pause(0.05)
        assert "4 samples" in str(pane.query_one("#gen-status", Static).render())
        # one sample streams and ends before its stop, as the batch's first row would
        pane.query_one("#gen-samples", Input).value = "1"
        progress.clear()
        await pilot.press("f9")
        await wait_until(pilot, lambda: any(isinstance(m, GenerateProgress) and m.done for m in progress),
                         what="one sample")
        one = [m for m in progress if isinstance(m, GenerateProgress) and m.done][-1]
        assert one.error is None and stop not in one.text and len(one.text) < 400
        # a stop text the model never saw is said in the pane; samples with unit colouring are refused
        pane.query_one("#gen-stop", Input).value = "\u2603"
        progress.clear()
        await pilot.press("f9")
        await wait_until(pilot, lambda: any(isinstance(m, GenerateProgress) and m.done for m in progress),
                         what="error")
        assert "never saw" in [m for m in progress if isinstance(m, GenerateProgress)][-1].error
        pane.query_one("#gen-stop", Input).value = ""
        pane.query_one("#gen-samples", Input).value = "3"
        pane.query_one("#gen-layer", Input).value = "1"
        await pilot.press("f9")
        await pilot.pause(0.05)
        assert any("one sample" in n.message for n in app._notifications)
        assert app.is_running
