"""The Train tab's hidden-state strips for every cell: the LSTM's c rows, the gated cells' gate
saturation, the label naming what is shown, at every size; and a real LSTM run in the app."""

from __future__ import annotations

import dataclasses
import math

import pytest
from rich.style import Style
from textual.app import App, ComposeResult
from textual.widgets import Input, Label

from rnnplay.tui.app import make_app
from rnnplay.tui.backend import default_trainer_factory
from rnnplay.tui.widgets import TANH_TITLE, HiddenStrips, hidden_title
from test_sizes import HEIGHTS, TERMINAL_SIZES, WIDTHS
from tui_helpers import wait_until


def units(layers: int, n: int = 6, T: int = 40, scale: float = 1.3):
    return tuple(tuple(tuple(math.sin((t + u * 7 + layer) / 4.0) * scale for t in range(T)) for u in range(n))
                 for layer in range(layers))


def gated(kind: str, layers: int = 3) -> dict:
    """set_data's keywords as an LSTM's or a GRU's HiddenStats gives them."""
    names = {"gru": ("r", "z"), "lstm": ("i", "f", "o")}[kind]
    return dict(state_names=("h", "c") if kind == "lstm" else ("h",),
                more_units=(units(layers, scale=3.0),) if kind == "lstm" else (),
                gate_names=names,
                gate_saturation=tuple(tuple(min(1.0, 0.1 * (g + 1) + 0.3 * layer) for g in range(len(names)))
                                      for layer in range(layers)))


class Strips(App):
    def compose(self) -> ComposeResult:
        yield HiddenStrips(rows_per_layer=1, id="hidden")


def text(strips: HiddenStrips, width: int = 60) -> list[str]:
    return ["".join(ch for ch, _ in row) for row in strips.rows(width, 50)]


@pytest.mark.parametrize("kind", ["gru", "lstm"])
async def test_gated_strips_draw_at_every_size(kind):
    app = Strips()
    async with app.run_test(size=(80, 30)):
        strips = app.query_one(HiddenStrips)
        for rows_per_layer in (1, 2, 3):
            strips.rows_per_layer = rows_per_layer
            for layers in (1, 3):
                strips.set_data(units(layers), tuple(0.2 * (k + 1) for k in range(layers)), **gated(kind, layers))
                base = strips.base_style
                for width in WIDTHS:
                    for height in HEIGHTS:
                        try:
                            rows = strips.rows(width, height)
                            made = [strips._to_strip(row, width, base) for row in rows[:height]]
                        except Exception as exc:
                            raise AssertionError(f"{kind} at {width}x{height}, {rows_per_layer} rows: {exc!r}") from exc
                        assert all(s.cell_length == width for s in made)
                        assert len(rows) == strips.get_content_height(None, None, width)


def test_lstm_rows_name_h_and_c_and_show_each_gate():
    strips = HiddenStrips(rows_per_layer=1)
    strips.component_style = lambda name: Style()  # no app needed for the characters
    strips.set_data(units(2), (0.25, 0.75), **gated("lstm", 2))
    rows = text(strips, 60)
    assert len(rows) == 4  # per layer: an h row, a c row
    assert rows[0].startswith("L1 h ") and rows[1].startswith("   c ") and rows[2].startswith("L2 h ")
    assert rows[0].endswith("sat  25%") and rows[2].endswith("sat  75%")
    assert rows[1].endswith(" i 10% f 20% o 30%") and rows[3].endswith(" i 40% f 50% o 60%")
    assert rows[0].index(" sat") == rows[1].index(" i ") == 5 + (60 - 5 - 18)  # the strips line up (prefix, strip)
    narrow = text(strips, 30)
    assert narrow[1].endswith(" gates 20%")  # too narrow for each gate: their mean
    strips.rows_per_layer = 3
    assert [r[:5] for r in text(strips, 60)[:5]] == ["L1 h ", "     ", "     ", "   c ", "     "]
    assert strips.title == "hidden h (c below) · last batch · sat of h, gates"


def test_gru_shows_gates_beside_h_and_tanh_stays_as_it_was():
    strips = HiddenStrips(rows_per_layer=1)
    strips.component_style = lambda name: Style()
    strips.set_data(units(2), (0.25, 0.75), **gated("gru", 2))
    rows = text(strips, 60)
    assert len(rows) == 2 and rows[0].startswith("L1 ") and rows[0].endswith(" sat  25% r 10% z 20%")
    strips.rows_per_layer = 2
    rows = text(strips, 60)
    assert len(rows) == 4 and rows[0].endswith("sat  25%") and rows[1].endswith(" r 10% z 20%")
    assert strips.title == "hidden h · last batch · sat of h, gates"
    strips.set_data(units(2), (0.25, 0.75))  # the tanh cell: h and its saturation, as always
    rows = text(strips, 60)
    assert len(rows) == 4 and rows[0].startswith("L1 ") and rows[0].endswith(" sat  25%") and len(rows[1]) == 51
    assert strips.title == TANH_TITLE == hidden_title()


async def test_a_real_lstm_run_shows_h_c_and_its_gates(tmp_path):
    """The real pipeline and trainer with the LSTM cell: the label says h with c below, each layer
    has a c row and its gates' saturation; the tab then survives small terminals."""
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("the cat sat on the mat.\nthe dog ate the log.\n" * 200, encoding="utf-8")

    def lstm_factory(settings):
        return default_trainer_factory(dataclasses.replace(settings, values={**settings.values, "cell": "lstm"}))

    app = make_app(trainer_factory=lstm_factory, checkpoint_dir=str(tmp_path / "ck"), corpus=str(corpus),
                   warm_backend=False, refresh_hz=10)
    async with app.run_test(size=(100, 30)) as pilot:
        for key, value in (("steps", "100000"), ("hidden", "16"), ("layers", "2"), ("seq_len", "16"),
                           ("batch_size", "4")):
            app.query_one(f"#hp-{key}", Input).value = value
        title = app.query_one("#hidden-title", Label)
        strips = app.query_one("#hidden", HiddenStrips)
        assert str(title.render()) == TANH_TITLE  # nothing trained yet
        await pilot.press("f5")
        await wait_until(pilot, lambda: "c below" in str(title.render()), timeout=90, what="the LSTM's strips")
        await pilot.pause(0.2)
        assert str(title.render()) == "hidden h (c below) · last batch · sat of h, gates"
        lines = [strips.render_line(y).text for y in range(strips.size.height)]
        assert strips.size.height == 4, lines  # 2 layers x (h, c)
        assert lines[0].startswith("L1 h ") and "sat" in lines[0]
        assert lines[1].startswith("   c ") and " i " in lines[1] and " f " in lines[1] and " o " in lines[1]
        assert lines[2].startswith("L2 h ") and lines[3].startswith("   c ")
        for size in TERMINAL_SIZES[::2]:
            await pilot.resize_terminal(*size)
            await pilot.pause(0.03)
            app._tick(force=True)
            await pilot.pause(0.01)
        assert app.is_running and app.phase == "running"
        await pilot.press("f6")
        await wait_until(pilot, lambda: app.phase == "idle", timeout=60, what="idle after stop")
