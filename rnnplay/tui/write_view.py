"""The Write tab's hand-drawn widgets: the text coloured by surprisal with a cursor, and the memory strip.

Both are :class:`~rnnplay.tui.canvas.CellCanvas` widgets, so a key press redraws only the rows on
screen from cached styles: the text wraps at any character (each cell is one character with its own
colour), and only the rows around the cursor are laid out, however long the text is.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from rich.cells import cell_len
from rich.style import Style

from rnnplay.tui.canvas import CellCanvas, text_row
from rnnplay.tui.widgets import BLOCKS, diverging_styles, gradient_styles

LN2 = math.log(2.0)
LEVELS = 8  # surprisal colours: under 1 bit plain, then 1, 2, ... 8+ bits


def surprisal_level(nats: float) -> int:
    """0 (under 1 bit, or not scored) .. LEVELS (8 bits or more): the colour step of a surprisal."""
    if nats != nats:
        return 0
    return max(0, min(LEVELS, int(nats / LN2)))


@lru_cache(maxsize=4096)
def glyph(ch: str) -> tuple[str, int]:
    """(what ``ch`` is drawn as, its width in cells)."""
    g = shown(ch)
    return g, cell_len(g)


def shown(ch: str) -> str:
    """The glyph a character is drawn as: a newline as ⏎, a tab as ⇥, other invisible ones as ·."""
    if ch == "\n":
        return "⏎"
    if ch == "\t":
        return "⇥"
    if ch == " ":
        return " "
    if not ch.isprintable() or cell_len(ch) == 0 or unicodedata.category(ch).startswith("M"):
        return "·"
    return ch


class WriteText(CellCanvas):
    """The text so far, each character's background coloured by its surprisal, and a cursor.

    The keys are the Write pane's (see :mod:`rnnplay.tui.write_tab`); this widget only draws.
    ``cursor`` is a position 0..len(text): the point before ``text[cursor]``.
    """

    can_focus = True
    COMPONENT_CLASSES = {"write-text--hot", "write-text--cursor", "write-text--empty"}
    DEFAULT_CSS = """
    WriteText { height: 1fr; }
    WriteText > .write-text--hot { color: #d0443e; }
    WriteText > .write-text--cursor { text-style: reverse; }
    WriteText > .write-text--empty { color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.text = ""
        self.surprisal: Sequence[float] = ()
        self.cursor = 0
        self.placeholder = ""

    def set_text(self, text: str, surprisal: Sequence[float], cursor: int) -> None:
        self.text, self.surprisal, self.cursor = text, surprisal, max(0, min(cursor, len(text)))
        self.data_changed()

    def set_placeholder(self, text: str) -> None:
        self.placeholder = text
        self.data_changed()

    def level_styles(self) -> tuple[Style, ...]:
        """The style of each surprisal level (0 = the plain text)."""
        base = self.base_style
        hot, _ = diverging_styles(self.component_style("write-text--hot"), Style(color="#3b78d0"),
                                  Style(color=base.color, bgcolor=base.bgcolor), levels=LEVELS,
                                  background=True, strength=0.85)
        return (base, *hot)

    def char_style(self, pos: int) -> Style:
        """The style the character at ``pos`` is drawn with, cursor aside (what a test checks)."""
        nats = self.surprisal[pos] if pos < len(self.surprisal) else float("nan")
        return self.level_styles()[surprisal_level(nats)]

    def rows(self, width: int, height: int) -> list[list[tuple[str, Style]]]:
        text, cursor = self.text, self.cursor
        if not text:
            cursor_style = self.base_style + self.component_style("write-text--cursor")
            rows = [[(" ", cursor_style)]]
            if self.placeholder and width > 2:
                rows[0] += text_row(" " + self.placeholder[:width - 2], self.component_style("write-text--empty"))
            return rows
        styles = self.level_styles()
        cursor_style = self.component_style("write-text--cursor")
        surprisal = self.surprisal
        n_scored, inv_ln2 = len(surprisal), 1.0 / LN2
        start, end = _window(text, cursor, width, height)
        rows: list[list[tuple[str, Style]]] = [[]]
        used = 0
        cursor_row = 0
        for pos in range(start, end + (1 if end == cursor == len(text) else 0)):
            if pos == len(text):
                g, w, style = " ", 1, self.base_style + cursor_style
            else:
                g, w = glyph(text[pos])
                nats = surprisal[pos] if pos < n_scored else 0.0
                level = 0 if nats != nats else int(nats * inv_ln2)  # surprisal_level, inlined
                style = styles[0 if level < 0 else LEVELS if level > LEVELS else level]
                if pos == cursor:
                    style = style + cursor_style
            if used + w > width and rows[-1]:
                rows.append([])
                used = 0
            if w > width:  # a wide character in a one-cell view
                g, w = "·", 1
            rows[-1].append((g, style))
            used += w
            if pos == cursor:
                cursor_row = len(rows) - 1
            if pos < len(text) and text[pos] == "\n":
                rows.append([])
                used = 0
        if rows and not rows[-1] and end < len(text):
            rows.pop()
        after = min(len(rows) - 1 - cursor_row, height // 3)
        last = cursor_row + 1 + after
        first = max(0, last - height)
        return rows[first:max(last, first + height)]


def _window(text: str, cursor: int, width: int, height: int) -> tuple[int, int]:
    """Characters [start, end) around the cursor that fill the view: from a line start (or a row
    start of a long line) enough rows before the cursor, up to a third of a screen after it."""
    width = max(1, width)
    line = text.rfind("\n", 0, cursor) + 1
    start, rows = line, (cursor - line) // width + 1
    while rows < height and start > 0:
        prev = text.rfind("\n", 0, start - 1) + 1
        rows += (start - 1 - prev) // width + 1
        start = prev
    budget = width * (height + 1)
    if cursor - start > budget:  # a long line: start at a row boundary of it
        line = text.rfind("\n", 0, cursor - budget) + 1
        start = line + ((cursor - budget - line) // width + 1) * width
    need, rows, end = height // 3 + 1, 0, cursor  # rows after the cursor's
    while end < len(text):
        nl = text.find("\n", end)
        if nl < 0 or rows + (nl - end) // width + 1 >= need:
            end = min(len(text), end + (need - rows) * width + 1, nl + 1 if nl >= 0 else len(text))
            break
        rows += (nl - end) // width + 1
        end = nl + 1
    return start, end


class MemoryStrip(CellCanvas):
    """How strongly each earlier character influenced one prediction: the preceding text on one
    row and, under each character, a bar (and colour) by its gradient's size, largest = full."""

    COMPONENT_CLASSES = {"memory--low", "memory--high", "memory--label"}
    DEFAULT_CSS = """
    MemoryStrip { height: 3; }
    MemoryStrip > .memory--low { color: $foreground 30%; }
    MemoryStrip > .memory--high { color: $warning; }
    MemoryStrip > .memory--label { color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.chars = ""
        self.norms: Sequence[float] = ()
        self.label = ""

    def set_data(self, chars: str, norms: Sequence[float], label: str) -> None:
        self.chars, self.norms, self.label = chars, norms, label
        self.data_changed()

    def rows(self, width: int, height: int) -> list[list[tuple[str, Style]]]:
        label_style = self.component_style("memory--label")
        out = [text_row(self.label[:width], label_style)]
        n = min(width, len(self.chars), len(self.norms))
        if n <= 0:
            return out
        chars, norms = self.chars[-n:], list(self.norms)[-n:]
        top = max(norms) or 1.0
        levels = gradient_styles(self.component_style("memory--low"), self.component_style("memory--high"),
                                 self.base_style)
        glyphs, bars = [], []
        for ch, v in zip(chars, norms):
            f = max(0.0, min(1.0, v / top))
            i = min(len(BLOCKS) - 1, int(f * len(BLOCKS)))
            g = shown(ch)
            glyphs.append((g if cell_len(g) == 1 else "·", levels[i]))
            bars.append((BLOCKS[i] if f > 0.02 else " ", levels[i]))
        pad = width - n
        blank = [(" ", self.base_style)] * pad
        return out + [blank + glyphs, blank + bars]
