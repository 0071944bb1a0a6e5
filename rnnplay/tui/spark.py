"""A one-row sparkline of the recent training losses, drawn from cached strips.

Textual's ``Sparkline`` renders through Rich on every refresh: ~2.3 ms each time here, at the
refresh rate, while training shares the cores. This one redraws only when its bars change.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.style import Style

from rnnplay.tui.widgets import BLOCKS, CellCanvas, gradient_styles, resample


class Spark(CellCanvas):
    """The last losses as block bars, one per column (bucket means when there are more values than
    columns; never stretched when there are fewer), coloured from low to high."""

    COMPONENT_CLASSES = {"spark--low", "spark--high"}
    DEFAULT_CSS = """
    Spark { height: 1; }
    Spark > .spark--low { color: $success; }
    Spark > .spark--high { color: $warning; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.values: tuple[float, ...] = ()

    def set_data(self, values: Sequence[float]) -> None:
        self.values = tuple(v for v in values if v == v)  # NaN would break the scale
        self.data_changed()

    def rows(self, width: int, height: int) -> list[list[tuple[str, Style]]]:
        base = self.rich_style
        bars = resample(self.values, min(width, len(self.values)))
        if not bars:
            return [[(" ", base)] * width]
        lo, hi = min(bars), max(bars)
        span = (hi - lo) or 1.0
        styles = gradient_styles(self.get_component_rich_style("spark--low"),
                                 self.get_component_rich_style("spark--high"), base)
        row = []
        for v in bars:
            level = min(len(BLOCKS) - 1, int((v - lo) / span * len(BLOCKS)))
            row.append((BLOCKS[level], styles[level]))
        return [row + [(" ", base)] * (width - len(row))]
