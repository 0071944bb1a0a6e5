"""A one-row sparkline of the recent training losses, drawn from cached strips.

Textual's ``Sparkline`` renders through Rich on every refresh: ~2.3 ms each time here, at the
refresh rate, while training shares the cores. This one redraws only when its bars change.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.style import Style

from rnnplay.tui.canvas import CellCanvas
from rnnplay.tui.widgets import BLOCKS, gradient_styles, resample


class Spark(CellCanvas):
    """The last losses as block bars, one per column (bucket means when there are more values than
    columns; never stretched when there are fewer), coloured from low to high.

    An optional ``label`` sits before the bars and a ``note`` (the latest value) in the last
    ``note_width`` columns, in the same row: one widget to redraw instead of three.
    """

    COMPONENT_CLASSES = {"spark--low", "spark--high", "spark--label"}
    DEFAULT_CSS = """
    Spark { height: 1; }
    Spark > .spark--low { color: $success; }
    Spark > .spark--high { color: $warning; }
    Spark > .spark--label { color: $text-muted; }
    """

    def __init__(self, *, label: str = "", note_width: int = 0, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.label, self.note_width = label, note_width
        self.values: tuple[float, ...] = ()
        self.note = ""

    def set_data(self, values: Sequence[float], note: str = "") -> None:
        self.values = tuple(v for v in values if v == v)  # NaN would break the scale
        self.note = note
        self.data_changed()

    def rows(self, width: int, height: int) -> list[list[tuple[str, Style]]]:
        base = self.base_style
        label_style = self.component_style("spark--label")
        head = [(ch, label_style) for ch in self.label]
        tail = [(ch, base) for ch in self.note[: self.note_width].ljust(self.note_width)]
        return [(head + self._bars(max(0, width - len(head) - len(tail)), base) + tail)[:width]]

    def _bars(self, width: int, base: Style) -> list[tuple[str, Style]]:
        bars = resample(self.values, min(width, len(self.values)))
        if not bars:
            return [(" ", base)] * width
        lo, hi = min(bars), max(bars)
        span = (hi - lo) or 1.0
        styles = gradient_styles(self.component_style("spark--low"),
                                 self.component_style("spark--high"), base)
        row = []
        for v in bars:
            level = min(len(BLOCKS) - 1, int((v - lo) / span * len(BLOCKS)))
            row.append((BLOCKS[level], styles[level]))
        return row + [(" ", base)] * (width - len(row))
