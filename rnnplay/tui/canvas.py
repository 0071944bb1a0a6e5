"""Widgets drawn as rows of (character, style) cells and turned into cached Strips.

Live charts and counters change at every refresh while training shares the CPU with the UI. Going
straight to Segments, drawing rows once per change, and keeping the widget's styles between
refreshes keeps each redraw to a fraction of what Textual's Rich/content pipeline costs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from rich.segment import Segment
from rich.style import Style
from textual.containers import Horizontal, Vertical
from textual.strip import Strip
from textual.widget import Widget


class BlankRow(Horizontal):
    """A Horizontal drawn as plain background (``BLANK``): no border, no padding, no content of
    its own. Textual redraws every widget under a changed region, containers included; a blank
    one costs a fraction of the styles-cache path. Only for containers styled without borders."""

    BLANK = True


class BlankColumn(Vertical):
    """A Vertical drawn as plain background (see :class:`BlankRow`)."""

    BLANK = True


class CellCanvas(Widget):
    """A widget drawn as rows of (character, style) cells, turned into cached Strips.

    Going straight to Segments (one per run of equal styles) keeps a redraw of a live chart
    to a fraction of a millisecond. Rows are drawn once per change of the data, the size or the
    theme: :meth:`data_changed` draws them to see whether the picture changed, and the redraw that
    follows reuses them.
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._data_version = 0
        self._cache_key: tuple | None = None
        self._strips: list[Strip] = []
        self._blank: Strip | None = None
        self._rows: list = []
        self._rows_key: tuple | None = None  # (width, height, theme) that _rows were drawn for
        self._base_style: Style | None = None
        self._component_style_cache: dict[str, Style] = {}

    @property
    def base_style(self) -> Style:
        """``rich_style`` (the widget's colours over its ancestors' backgrounds), kept until the
        styles change: computing it walks every ancestor's styles (~0.3 ms here, several times a
        refresh)."""
        if self._base_style is None:
            self._base_style = self.rich_style
        return self._base_style

    def component_style(self, name: str) -> Style:
        """``get_component_rich_style(name)``, kept until the styles change (Textual's own cache of
        it is cleared by every ``refresh()``, i.e. at each new picture of a live chart)."""
        style = self._component_style_cache.get(name)
        if style is None:
            style = self._component_style_cache[name] = self.get_component_rich_style(name)
        return style

    def notify_style_update(self) -> None:
        self._base_style = None
        self._component_style_cache.clear()
        self._cache_key = self._rows_key = None  # colours may have changed: draw again
        super().notify_style_update()

    def data_changed(self, layout: bool = False) -> None:
        """New data: redraw only if the picture changed (a redraw costs far more than drawing rows)."""
        width, height = self.size
        if not layout and width and height:
            rows = self.rows(width, height)[:height]
            key = (width, height, self.app.theme)
            if key == self._rows_key and rows == self._rows:
                return
            self._rows, self._rows_key = rows, key  # the redraw uses these
        else:
            self._rows_key = None
        self._data_version += 1
        self.refresh(layout=layout)

    def rows(self, width: int, height: int) -> list[list[tuple[str, Style]]]:
        raise NotImplementedError

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        theme = self.app.theme
        key = (width, height, self._data_version, theme)
        if key != self._cache_key:
            self._cache_key = key
            if self._rows_key != (width, height, theme):
                self._rows, self._rows_key = self.rows(width, height)[:height], (width, height, theme)
            base = self.base_style
            self._strips = [self._to_strip(row, width, base) for row in self._rows]
            self._blank = Strip.blank(width, base)
        return self._strips[y] if 0 <= y < len(self._strips) else self._blank  # type: ignore[return-value]

    @staticmethod
    def _to_strip(row: list[tuple[str, Style]], width: int, base: Style) -> Strip:
        return Strip([Segment(text, style) for text, style in style_runs(row)]).adjust_cell_length(width, base)


def style_runs(cells: Iterable[tuple[str, Style]]) -> Iterator[tuple[str, Style | None]]:
    """(character, style) cells -> (text, style) runs of equal styles (a segment or span per run
    is what costs). The same Style object, the usual case, is matched without a comparison."""
    run: list[str] = []
    style: Style | None = None
    for ch, st in cells:
        if run and st is not style and st != style:
            yield "".join(run), style
            run = []
        style = st
        run.append(ch)
    if run:
        yield "".join(run), style


class TextRows(CellCanvas):
    """A few lines of text, each piece plain or dim, drawn from cached strips.

    The Train tab's run statistics change at every refresh; a ``Static`` renders them through Rich
    and Textual's content pipeline (~1.5 ms each time here), this widget in a fraction of that.
    """

    DEFAULT_CSS = "TextRows { height: auto; }"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.lines: tuple[tuple[tuple[str, bool], ...], ...] = ()

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, len(self.lines))

    @property
    def plain(self) -> str:
        return "\n".join("".join(text for text, _ in line) for line in self.lines)

    def set_lines(self, lines: Sequence[Sequence[tuple[str, bool]]]) -> None:
        """``lines``: per line, (text, dim) pieces."""
        lines = tuple(tuple(line) for line in lines)
        if lines != self.lines:
            layout = len(lines) != len(self.lines)
            self.lines = lines
            self.data_changed(layout=layout)

    def rows(self, width: int, height: int) -> list[list[tuple[str, Style]]]:
        base = self.base_style
        dim = base + Style(dim=True)
        return [[(ch, dim if faint else base) for text, faint in line for ch in text][:width] for line in self.lines]


def text_row(text: str, style: Style) -> list[tuple[str, Style]]:
    return [(ch, style) for ch in text]
