"""The loss sparkline: bucket means, never stretched, redrawn only when its bars change."""

from __future__ import annotations

from textual.app import App, ComposeResult

from rnnplay.tui.spark import Spark
from rnnplay.tui.widgets import BLOCKS


class SparkApp(App):
    def compose(self) -> ComposeResult:
        yield Spark(id="s")


def bars(spark: Spark) -> str:
    return "".join(ch for ch, _ in spark.rows(*spark.size)[0])


async def test_bars_follow_the_values_and_fewer_values_are_not_stretched():
    app = SparkApp()
    async with app.run_test(size=(20, 3)) as pilot:
        spark = app.query_one(Spark)
        spark.set_data([4.0, 3.0, 2.0, 1.0, float("nan")])  # NaN is dropped
        await pilot.pause()
        assert bars(spark) == BLOCKS[-1] + BLOCKS[5] + BLOCKS[2] + BLOCKS[0] + " " * 16
        spark.set_data([float(i % 2) for i in range(40)])  # 40 values, 20 columns: pairs averaged
        await pilot.pause()
        assert set(bars(spark)) == {BLOCKS[0]}  # every bucket holds one 0 and one 1: all equal


async def test_unchanged_bars_cause_no_redraw():
    app = SparkApp()
    async with app.run_test(size=(20, 3)) as pilot:
        spark = app.query_one(Spark)
        spark.set_data([3.0, 2.0, 1.0])
        await pilot.pause()
        version = spark._data_version
        spark.set_data([3.0, 2.0, 1.0])
        assert spark._data_version == version
        spark.set_data([3.0, 2.0, 2.5])
        assert spark._data_version == version + 1
