"""The cached-strip widgets: redrawn only when their picture changes, and still following the theme."""

from __future__ import annotations

from textual.app import App, ComposeResult

from rnnplay.tui.spark import Spark
from rnnplay.tui.canvas import TextRows
from rnnplay.tui.widgets import BLOCKS


class CanvasApp(App):
    def compose(self) -> ComposeResult:
        yield TextRows(id="t")
        yield Spark(label="loss ", note_width=6, id="s")


def text(widget) -> str:
    return "\n".join("".join(ch for ch, _ in row) for row in widget.rows(*widget.size))


async def test_text_rows_draw_plain_and_dim_pieces_and_skip_unchanged_text():
    app = CanvasApp()
    async with app.run_test(size=(30, 6)) as pilot:
        rows = app.query_one(TextRows)
        rows.set_lines([[("step ", True), ("7", False)], [("lr ", True), ("1e-3", False)]])
        await pilot.pause()
        assert rows.plain == "step 7\nlr 1e-3" and text(rows) == "step 7\nlr 1e-3"
        drawn = rows.rows(*rows.size)
        assert drawn[0][0][1].dim and not drawn[0][5][1].dim  # "s" of the key dim, the value not
        assert str(app.screen.get_widget_at(5, 0)[0].id) == "t"
        version = rows._data_version
        rows.set_lines([[("step ", True), ("7", False)], [("lr ", True), ("1e-3", False)]])
        assert rows._data_version == version  # same text: no redraw
        rows.set_lines([[("step ", True), ("8", False)]])
        assert rows._data_version == version + 1


async def test_spark_row_holds_label_bars_and_note():
    app = CanvasApp()
    async with app.run_test(size=(30, 6)) as pilot:
        spark = app.query_one(Spark)
        spark.set_data([3.0, 2.0, 1.0], " 1.000")
        await pilot.pause()
        row = text(spark)
        assert len(row) == spark.size.width and row.startswith("loss ") and row.endswith(" 1.000")
        assert row[5:8] == BLOCKS[-1] + BLOCKS[4] + BLOCKS[0] and row[8:24].strip() == ""
        assert spark.rows(*spark.size)[0][0][1] == spark.component_style("spark--label")


async def test_cached_styles_follow_a_theme_change():
    app = CanvasApp()
    async with app.run_test(size=(30, 6)) as pilot:
        spark = app.query_one(Spark)
        spark.set_data([3.0, 2.0, 1.0], "x")
        await pilot.pause()
        dark_base, dark_low = spark.base_style, spark.component_style("spark--low")
        dark_row = spark.rows(*spark.size)[0]
        app.theme = "textual-light"
        await pilot.pause()
        await pilot.pause()
        assert spark.base_style.bgcolor != dark_base.bgcolor
        assert spark.component_style("spark--low") != dark_low
        assert spark.rows(*spark.size)[0] != dark_row
        assert spark.render_line(0) is spark._strips[0]  # redrawn from the new rows
        assert spark._rows_key[2] == "textual-light"
