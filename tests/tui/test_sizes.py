"""The app survives any terminal size: every hand-drawn widget across a sweep of sizes, with and
without data (drawn directly, for speed), and the whole app resized while it trains (Pilot).

At 52 to 58 columns the loss curve is 12 to 19 cells wide, too narrow for a reference label such as
" unigram 2.95 "; placing it raised IndexError and the app died.
"""

from __future__ import annotations

import math

import pytest
from rich.style import Style
from textual.app import App, ComposeResult

from rnnplay.training.events import EpochDone
from rnnplay.tui.app import make_app
from rnnplay.tui.canvas import CellCanvas, TextRows
from rnnplay.tui.classify_tab import ClassifyPane, curve_lines, strip
from rnnplay.tui.spark import Spark
from rnnplay.tui.widgets import HiddenStrips, LossCurve
from rnnplay.tui.write_view import MemoryStrip, WriteText
from tui_fakes import REFERENCES, FakeClassifierRunner, FakeFactory, fake_loss
from tui_helpers import wait_until

WIDTHS = range(1, 201)  # widget widths: the terminal's 20..200 columns give the live panes 1..160
HEIGHTS = (1, 2, 3, 4, 5, 8, 13, 24, 50)
TERMINAL_SIZES = [(w, 24) for w in range(52, 59)] + [(20, 8), (24, 10), (30, 12), (40, 15), (12, 4), (3, 2),
                                                     (1, 1), (80, 24), (120, 40), (200, 60), (200, 8), (20, 60)]


class Widgets(App):
    def compose(self) -> ComposeResult:
        yield LossCurve(id="curve")
        yield HiddenStrips(rows_per_layer=3, id="hidden")
        yield Spark(label="loss ", note_width=8, id="spark")
        yield TextRows(id="text")
        yield WriteText(id="write")
        yield MemoryStrip(id="memory")


def loss_data(kind: str):
    if kind == "empty":
        return (), (), {}
    if kind == "one":
        return ((1.0, 3.3),), (), dict(REFERENCES)
    if kind == "odd":  # NaN, a loss far above the references, one reference off the scale
        history = [(float(s), fake_loss(s) if s % 7 else float("nan")) for s in range(1, 300)]
        history[3] = (4.0, 40.0)
        return history, [(50, 2.0), (100, float("nan"))], {"uniform": 3.37, "bigram": -5.0, "unigram": 1e9}
    history = [(float(s), fake_loss(s)) for s in range(1, 400)]
    return history, [(s, fake_loss(s) + 0.08) for s in range(50, 400, 50)], dict(REFERENCES)


def hidden_data(kind: str):
    if kind == "empty":
        return (), ()
    units = tuple(tuple(tuple(math.sin((t + u * 7 + layer) / 4.0) * 1.3 for t in range(64)) for u in range(8))
                  for layer in range(3))
    return units, (0.1, 0.7, 1.0)


def sweep(widget: CellCanvas) -> None:
    """Draw ``widget`` at every width and a range of heights, as its render would: every row turns
    into a strip exactly as wide as the widget."""
    base = widget.base_style
    for width in WIDTHS:
        for height in HEIGHTS:
            try:
                rows = widget.rows(width, height)[:height]
                strips = [widget._to_strip(row, width, base) for row in rows]
            except Exception as exc:  # name the size in the failure
                raise AssertionError(f"{type(widget).__name__} at {width}x{height}: {exc!r}") from exc
            assert all(s.cell_length == width for s in strips), (type(widget).__name__, width, height)


@pytest.mark.parametrize("kind", ["empty", "one", "odd", "full"])
async def test_every_hand_drawn_widget_draws_at_every_size(kind):
    app = Widgets()
    async with app.run_test(size=(80, 40)):
        curve = app.query_one(LossCurve)
        curve.set_data(*loss_data(kind))
        sweep(curve)
        hidden = app.query_one(HiddenStrips)
        hidden.set_data(*hidden_data(kind))
        sweep(hidden)
        spark = app.query_one(Spark)
        spark.set_data([] if kind == "empty" else [v for _, v in loss_data(kind)[0]], " 1.234")
        sweep(spark)
        text = app.query_one(TextRows)
        text.set_lines([] if kind == "empty" else [[("step ", True), ("123/4000", False)]] * 3)
        sweep(text)
        write = app.query_one(WriteText)
        for chars, cursor in write_data(kind):
            write.set_text(chars, [(i % 13) * 0.7 if i % 5 else float("nan") for i in range(len(chars))], cursor)
            sweep(write)
        memory = app.query_one(MemoryStrip)
        for chars, _ in write_data(kind):
            memory.set_data(chars, [abs(math.sin(i)) * (i % 3) for i in range(len(chars))], "memory of 'x' at 12")
            sweep(memory)


def write_data(kind: str) -> list[tuple[str, int]]:
    """(text, cursor) for the Write tab's text: empty, one character, odd characters (wide, combining,
    control, tabs, newlines only, a line longer than any screen), a long text; cursors at both ends
    and inside."""
    if kind == "empty":
        return [("", 0)]
    if kind == "one":
        return [("a", 0), ("a", 1), ("\n", 1)]
    if kind == "odd":
        odd = "日本語\u0301x\x00\t\x7f\u200b" + "\n" * 30 + "z" * 5000 + "é̃"
        return [(odd, 3), (odd, len(odd) - 2), (odd, len(odd))]
    text = ("the quick brown fox jumps over the lazy dog.\n" * 300)[:12_000]
    return [(text, 6000), (text, len(text))]


def test_loss_curve_labels_fit_or_shorten_but_never_cover_the_curve():
    """Where a label does not fit beside the curve, the dashed line is drawn without it."""
    curve = LossCurve()
    curve.component_style = lambda name: Style()  # no app needed for the characters
    history, val, refs = loss_data("full")
    curve.history, curve.val, curve.references = history, val, refs
    for width in (12, 15, 19, 40, 120):
        rows = ["".join(ch for ch, _ in row) for row in curve.rows(width, 12)]
        assert all(len(r) <= width for r in rows)
        if width >= 40:
            assert any("unigram 2.95" in r for r in rows) and any("bigram 2.41" in r for r in rows)


def epochs(n: int) -> tuple[EpochDone, ...]:
    return tuple(EpochDone(step=e * 157, epoch=e, total_epochs=n, train_loss=0.7 / e, train_accuracy=0.9,
                           test_accuracy=min(0.95, 0.6 + 0.01 * e), lr=1e-3, epoch_s=0.5) for e in range(1, n + 1))


@pytest.mark.parametrize("n", [1, 2, 60, 400])
def test_classify_curves_never_wrap(n):
    eps = epochs(n)
    for width in WIDTHS:
        text = curve_lines(eps, width, "#00ff00", "#0000ff")
        lines = text.split("\n")
        assert len(lines) == 2 and text.no_wrap, width
        assert all(line.cell_len <= width for line in lines) or width < 18, (width, [ln.plain for ln in lines])
    assert strip([], 0.0, 1.0, 10) == "" and len(strip([1.0], 0.0, 1.0, 7)) == 7


async def test_classify_loss_sparkline_stays_on_one_line_at_120_columns(ckpt_dir):
    runner = FakeClassifierRunner(epochs=60)
    app = make_app(trainer_factory=FakeFactory(), classifier_runner=runner, checkpoint_dir=ckpt_dir,
                   warm_backend=False)
    async with app.run_test(size=(120, 30)) as pilot:
        app.query_one("#tabs").active = "classify"
        await pilot.pause(0.05)
        await pilot.press("f7")
        pane = app.query_one(ClassifyPane)
        await wait_until(pilot, lambda: pane.inspection is not None, what="the experiment")
        await pilot.pause(0.05)
        curves = pane.query_one("#cls-curves")
        assert curves.size.height == 2, f"the two curves took {curves.size.height} lines"


async def test_the_app_survives_resizing_while_training(ckpt_dir):
    """Resized to every size above while a run trains (data in every widget), then idle again."""
    factory = FakeFactory(steps=10_000_000, step_s=0.002)
    app = make_app(trainer_factory=factory, checkpoint_dir=ckpt_dir, warm_backend=False, refresh_hz=20)
    async with app.run_test(size=(100, 30)) as pilot:
        for size in TERMINAL_SIZES[:3]:  # before any data, too
            await pilot.resize_terminal(*size)
            await pilot.pause(0.02)
        await pilot.resize_terminal(100, 30)
        await pilot.press("f5")
        await wait_until(pilot, lambda: app.phase == "running" and factory.trainers[0].step > 120, what="running")
        await pilot.pause(1.1)  # the loss curve redraws at 1 Hz: let it take the run's data
        for tab, sizes in (("train", TERMINAL_SIZES), ("generate", TERMINAL_SIZES[::4]),
                           ("classify", TERMINAL_SIZES[1::4]), ("write", TERMINAL_SIZES[2::4]),
                           ("train", TERMINAL_SIZES[::-3])):
            app.query_one("#tabs").active = tab
            for size in sizes:
                await pilot.resize_terminal(*size)
                await pilot.pause(0.03)
                app._tick(force=True)  # new data at this size, not only a redraw of the old picture
                await pilot.pause(0.01)
        assert app.is_running and app.phase == "running"
        await pilot.press("f6")
        await wait_until(pilot, lambda: app.phase == "idle", what="idle after stop")
        for size in TERMINAL_SIZES[:8]:
            await pilot.resize_terminal(*size)
            await pilot.pause(0.02)
        assert app.is_running
