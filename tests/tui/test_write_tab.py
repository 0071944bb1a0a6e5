"""The Write tab: co-writing with the model (pick, type, let it write, undo) and scoring a pasted text.

The reference is a direct forward of the model over the whole text ("\\n" + text, the start the
app and ``rnnplay score`` use): the proposals' probabilities and each character's surprisal must be
what softmax of those logits gives, whatever was typed, picked, sampled or undone on the way.
"""

from __future__ import annotations

import math

import pytest
import torch
from textual import events

from rnnplay.data.vocab import Vocab
from rnnplay.generate import saliency
from rnnplay.model import CharRNN, Sampler
from rnnplay.tui.app import make_app
from rnnplay.tui.trail import Trail
from rnnplay.tui.write_tab import WritePane
from rnnplay.tui.write_view import MemoryStrip, WriteText, surprisal_level
from tui_fakes import VOCAB_TEXT, FakeFactory
from tui_helpers import wait_until


def direct(model: CharRNN, vocab: Vocab, text: str) -> torch.Tensor:
    """(len(text) + 1, V) log-probabilities at every position, from one forward over "\\n" + text."""
    idx = vocab.encode("\n" + text).long().unsqueeze(0)  # (1, T+1)
    with torch.no_grad():
        logits, _ = model(idx)  # (1, T+1, V)
    return torch.log_softmax(logits[0].float(), dim=-1)


def proposal_probs(top) -> tuple[list[int], torch.Tensor]:
    return [VOCAB_TEXT_SORTED.index(p.char) for p in top], torch.tensor([p.prob for p in top])


VOCAB_TEXT_SORTED = Vocab(VOCAB_TEXT).chars


def check_against_direct(model, vocab, text, surprisal, tops) -> None:
    ref = direct(model, vocab, text)  # (T+1, V)
    assert len(tops) == len(text) + 1 and len(surprisal) == len(text)
    for pos, top in enumerate(tops):
        idx = [vocab.stoi[p.char] for p in top]
        torch.testing.assert_close(torch.tensor([p.prob for p in top]), ref[pos, idx].exp(), rtol=1e-4, atol=1e-5)
        assert idx[0] == int(ref[pos].argmax())
    target = vocab.encode(text).long()
    torch.testing.assert_close(torch.tensor(surprisal), -ref[torch.arange(len(text)), target],
                               rtol=1e-4, atol=1e-4)


# ---- the model side, without the app ------------------------------------------------------------

@pytest.mark.parametrize("cell", ["tanh", "gru", "lstm"])
def test_trail_matches_one_forward_over_the_whole_text(cell):
    torch.manual_seed(0)
    vocab = Vocab(VOCAB_TEXT)
    model = CharRNN(len(vocab), 24, 2, embed_size=8, cell=cell).eval()
    trail = Trail(Sampler(model), vocab, dense=8, every=4)  # thinned states: deep undos re-read
    trail.extend("the cat sat on the mat.\nthe dog")
    for k in (1, 3, 2):
        assert trail.pick(k) is not None
    gen = torch.Generator().manual_seed(3)
    for _ in range(5):
        trail.sample(0.9, gen)
    check_against_direct(model, vocab, trail.text, trail.surprisal, trail.top)
    text = trail.text
    assert trail.undo(20) == 20 and trail.text == text[:-20]
    check_against_direct(model, vocab, trail.text, trail.surprisal, trail.top)
    trail.extend("xyz, ok")  # on from an older, re-read state
    check_against_direct(model, vocab, trail.text, trail.surprisal, trail.top)
    # the memory view from a kept (thinned, re-read) state: the gradients through the whole text
    full = vocab.encode("\n" + trail.text).long()
    for pos, window in ((len(trail) - 1, 10), (5, 10), (3, 256)):
        start, norms, logp = trail.memory(model, pos, window=window)
        ref = saliency(model, full, pos + 1)
        assert start == max(0, pos - window)  # the window counts the newline before the text
        torch.testing.assert_close(torch.tensor(norms), ref.norms[-(pos - start):])
        assert len(norms) == pos - start and math.isclose(logp, ref.logp, rel_tol=1e-4, abs_tol=1e-5)
    assert trail.undo(1000) == len(text) - 20 + 7 and trail.text == ""
    check_against_direct(model, vocab, "", [], trail.top)


# ---- the app ------------------------------------------------------------------------------------

def make(factory, ckpt_dir):
    return make_app(trainer_factory=factory, checkpoint_dir=ckpt_dir, warm_backend=False, refresh_hz=20)


async def ready_app(pilot, factory):
    """Train the fake run to its end, then F12: the Write tab with the run's weights."""
    app = pilot.app
    await pilot.press("f5")
    await wait_until(pilot, lambda: app.phase == "idle" and factory.trainers, what="the fake run")
    await pilot.press("f12")
    pane = app.query_one(WritePane)
    await wait_until(pilot, lambda: len(pane.view.top) == 1, what="the first proposals")
    assert app.query_one("#tabs").active == "write" and isinstance(app.focused, WriteText)
    return pane, factory.trainers[0]._model, factory.trainers[0].vocab


async def settle(pilot, pane, length: int) -> None:
    await wait_until(pilot, lambda: len(pane.view.text) == length and not pane.view.busy
                     and pane.query_one(WriteText).text == pane.view.text, what=f"{length} characters")


async def test_picking_typing_running_and_undo_follow_the_model(ckpt_dir):
    factory = FakeFactory(steps=20)
    app = make(factory, ckpt_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        pane, model, vocab = await ready_app(pilot, factory)
        first = pane.view.top[0]
        await pilot.press("1")  # the model's top choice
        await settle(pilot, pane, 1)
        assert pane.view.text == first[0].char
        third = pane.view.top[1][2]
        await pilot.press("3")
        await settle(pilot, pane, 2)
        assert pane.view.text[1] == third.char
        # typing our own characters (digits pick; enter is a newline)
        await pilot.press("t", "h", "e", "space", "full_stop", "comma", "enter", "a")
        await settle(pilot, pane, 10)
        assert pane.view.text[2:] == "the .,\na"
        check_against_direct(model, vocab, pane.view.text, pane.view.surprisal, pane.view.top)
        # tab: the model writes the form's number of characters
        pane.query_one("#write-run").value = "12"
        await pilot.press("tab")
        await settle(pilot, pane, 22)
        assert isinstance(app.focused, WriteText)  # tab wrote; it did not move the focus
        check_against_direct(model, vocab, pane.view.text, pane.view.surprisal, pane.view.top)
        # backspace undoes, back to exactly the earlier proposals
        before = pane.view
        await pilot.press("x", "y")
        await settle(pilot, pane, 24)
        await pilot.press("backspace", "backspace")
        await settle(pilot, pane, 22)
        assert pane.view.text == before.text and pane.view.top == before.top
        assert pane.view.surprisal == before.surprisal
        # the side panel lists the nine proposals with their probabilities
        panel = str(pane.query_one("#write-next").render())
        for k, p in enumerate(pane.view.top[22], 1):
            assert f"{k} " in panel and f"{p.prob * 100:5.1f}%" in panel
        # [ and ? are text here (not the temperature or help keys): the vocabulary lacks them
        temp = app.query_one("#gen-temp").value
        await pilot.press("left_square_bracket", "question_mark")
        await wait_until(pilot, lambda: sum("never saw" in n.message for n in app._notifications) == 2,
                         what="two notes")
        assert app.query_one("#gen-temp").value == temp and app.screen is pane.screen
        # ctrl+l clears
        await pilot.press("ctrl+l")
        await settle(pilot, pane, 0)
        assert len(pane.view.top) == 1


async def test_a_pasted_text_is_scored_and_the_cursor_shows_the_top_five(ckpt_dir):
    factory = FakeFactory(steps=20)
    app = make(factory, ckpt_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        pane, model, vocab = await ready_app(pilot, factory)
        text = "the quick brown fox jumps over\nthe lazy dog, again." * 12
        pane.query_one(WriteText).post_message(events.Paste(text + "€"))  # € is not in the vocabulary
        await settle(pilot, pane, len(text))
        assert pane.view.text == text
        assert any("never saw" in n.message and "€" in n.message for n in app._notifications)
        check_against_direct(model, vocab, text, pane.view.surprisal, pane.view.top)
        # every character's colour is its surprisal's level under a direct computation
        widget = pane.query_one(WriteText)
        ref = direct(model, vocab, text)
        nats = -ref[torch.arange(len(text)), vocab.encode(text).long()]
        styles = widget.level_styles()
        assert len(set(styles)) == len(styles)  # the levels are told apart
        levels = [surprisal_level(float(v)) for v in nats]
        assert len(set(levels)) > 1
        assert [widget.char_style(i) for i in range(len(text))] == [styles[lv] for lv in levels]
        status = str(pane.query_one("#write-status").render())
        assert f"{float(nats.mean()) / math.log(2):.2f} bits/char" in status
        # the cursor: home, then right twice -> the third character, the model's top five there
        await pilot.press("home", "right", "right")
        await pilot.pause(0.05)
        assert pane.cursor == 2 and widget.cursor == 2
        panel = str(pane.query_one("#write-next").render())
        top5 = torch.topk(ref[2], 5)
        for prob, i in zip(top5.values.exp().tolist(), top5.indices.tolist()):
            assert f"{prob * 100:5.1f}%" in panel
        assert f"{math.exp(-float(nats[2])) * 100:.1f}%" in str(pane.query_one("#write-next-title").render())
        # the rows drawn near the cursor show it reversed
        rows = widget.rows(widget.size.width, widget.size.height)
        reversed_cells = [ch for row in rows for ch, st in row if st.reverse]
        assert reversed_cells == [text[2]]
        # the memory view of the character at the cursor: the gradient sizes over what came before it
        memory = pane.query_one(MemoryStrip)
        full = vocab.encode("\n" + text).long()
        await wait_until(pilot, lambda: len(memory.norms) == 2, what="the memory view")
        torch.testing.assert_close(torch.tensor(memory.norms), saliency(model, full, 3).norms[1:])
        assert memory.chars == text[:2] and "memory of 'e' at 3" in memory.label
        # far into the text: the last 256 characters, from the state kept before them (the same
        # gradients as through the whole text: an embedding only acts on what follows it)
        for _ in range(400 - 2):
            pane.action_move(1)
        await wait_until(pilot, lambda: len(memory.norms) == 256 and pane.cursor == 400, what="a far memory view")
        torch.testing.assert_close(torch.tensor(memory.norms), saliency(model, full, 401).norms[-256:])
        assert memory.chars == text[400 - 256:400]
        await pilot.press("end")
        await pilot.pause(0.05)
        assert pane.cursor == len(text) and "move the cursor" in memory.label


async def test_keys_typed_before_a_model_are_read_once_one_is_there(ckpt_dir):
    factory = FakeFactory(steps=20)
    app = make(factory, ckpt_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f12")
        pane = app.query_one(WritePane)
        await pilot.press("h", "i")
        await wait_until(pilot, lambda: pane.view.text == "hi", what="typed text")
        assert "train (F5)" in str(pane.query_one("#write-source").render())
        await pilot.press("f5")
        await wait_until(pilot, lambda: app.phase == "idle" and factory.trainers, what="the fake run")
        await wait_until(pilot, lambda: len(pane.view.top) == 3, what="the text read by the model")
        model, vocab = factory.trainers[0]._model, factory.trainers[0].vocab
        check_against_direct(model, vocab, "hi", pane.view.surprisal, pane.view.top)
        # the form's fields keep their keys: typing there does not write
        field = pane.query_one("#write-temp")
        field.focus()
        await pilot.press("end", "backspace", "1")
        await pilot.pause(0.1)
        assert field.value == "0.1" and pane.view.text == "hi"


async def test_the_tab_opened_before_a_model_shows_its_proposals_once_one_is_there(ckpt_dir):
    """F12 pressed before any weights exist (at start, while a checkpoint is still opening): when
    the weights come, the proposals appear without a key being typed."""
    factory = FakeFactory(steps=20)
    app = make(factory, ckpt_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f12")
        pane = app.query_one(WritePane)
        await pilot.pause(0.1)
        assert "open a model" in str(pane.query_one("#write-next").render())
        await pilot.press("f5")
        await wait_until(pilot, lambda: app.phase == "idle" and factory.trainers, what="the fake run")
        await wait_until(pilot, lambda: len(pane.view.top) == 1 and pane.view.top[0], what="the first proposals")
        model, vocab = factory.trainers[0]._model, factory.trainers[0].vocab
        check_against_direct(model, vocab, "", pane.view.surprisal, pane.view.top)
        assert "1-9 picks" in str(pane.query_one("#write-next-title").render())
