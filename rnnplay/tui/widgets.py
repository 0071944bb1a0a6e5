"""Display-only widgets: a braille loss curve and per-layer hidden-state strips, and their helpers.

Both draw themselves from plain Python data (no torch) and take their colours from component
classes in the stylesheet, so they follow the theme, and NO_COLOR leaves shapes that still read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from rnnplay.tui.canvas import CellCanvas, style_runs, text_row

BLOCKS = "▁▂▃▄▅▆▇█"
_BRAILLE_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col] in a cell


def fmt_value(v: float | None, digits: int = 3) -> str:
    return "—" if v is None or v != v else f"{v:.{digits}f}"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf") or seconds < 0:
        return "—"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_rate(v: float | None) -> str:
    if v is None or v != v:
        return "—"
    if v >= 1e6:
        return f"{v / 1e6:.1f}M"
    return f"{v / 1e3:.1f}k" if v >= 1e3 else f"{v:.0f}"


def theme_color(widget: Widget, name: str, fallback: str = "#888888") -> str:
    """A colour of the current theme (``primary``, ``success``, ...) as a hex string."""
    try:
        return widget.app.theme_variables.get(name) or fallback
    except Exception:  # no app yet
        return fallback


@lru_cache(maxsize=64)  # Styles are hashable; a chart asks for the same lists at every redraw
def diverging_styles(style_pos: Style, style_neg: Style, base: Style, levels: int = 8,
                     background: bool = False, strength: float = 1.0) -> tuple[tuple[Style, ...], tuple[Style, ...]]:
    """Styles from ``base`` towards the positive / negative colour in ``levels`` steps.

    ``background`` colours the cell behind the text (for generated characters) instead of the
    glyph. Without true colours (NO_COLOR, or plain colours) the base style is used throughout.
    """
    def blend_list(target: Style) -> tuple[Style, ...]:
        tgt = target.color
        src = base.bgcolor if background else base.color
        if tgt is None or src is None:
            return (base,) * levels
        try:
            a, b = src.get_truecolor(), tgt.get_truecolor()
        except Exception:  # a colour with no RGB value (e.g. "default")
            return (base,) * levels
        out = []
        for i in range(levels):
            col = blend(a, b, (i + 1) / levels * strength)
            out.append(base + (Style(bgcolor=col) if background else Style(color=col)))
        return tuple(out)
    return blend_list(style_pos), blend_list(style_neg)


@lru_cache(maxsize=64)
def gradient_styles(low: Style, high: Style, base: Style, levels: int = len(BLOCKS)) -> tuple[Style, ...]:
    """``levels`` styles from ``low``'s colour to ``high``'s (``base`` alone when either has none)."""
    try:
        a, b = low.color.get_truecolor(), high.color.get_truecolor()  # type: ignore[union-attr]
    except Exception:  # NO_COLOR, or a colour without RGB: the shapes still read
        return (base,) * levels
    return tuple(base + Style(color=blend(a, b, i / max(1, levels - 1))) for i in range(levels))


def blend(a: tuple[int, int, int], b: tuple[int, int, int], f: float) -> Color:
    """The colour a fraction ``f`` of the way from RGB ``a`` to RGB ``b``."""
    return Color.from_rgb(*(int(a[k] + (b[k] - a[k]) * f) for k in range(3)))


def styled_level(value: float, pos: Sequence[Style], neg: Sequence[Style]) -> Style:
    """The style for an activation in [-1, 1]."""
    levels = len(pos)
    i = min(levels - 1, int(abs(value) * levels))
    return pos[i] if value >= 0 else neg[i]


def resample(values: Sequence[float], n: int) -> list[float]:
    """``values`` stretched or shrunk to ``n`` points (means over buckets when shrinking)."""
    m = len(values)
    if m == 0 or n <= 0:
        return []
    if m <= n:
        return [values[min(m - 1, i * m // n)] for i in range(n)]
    out = []
    for i in range(n):
        a, b = i * m // n, max(i * m // n + 1, (i + 1) * m // n)
        chunk = values[a:b]
        out.append(sum(chunk) / len(chunk))
    return out


def append_runs(out: Text, cells: Sequence[tuple[str, Style]]) -> None:
    """Append (character, style) cells, one span per run of equal styles (spans are what cost)."""
    for text, style in style_runs(cells):
        out.append(text, style=style)


class LossCurve(CellCanvas):
    """Training loss as a braille line, validation points, and reference lines with labels."""

    COMPONENT_CLASSES = {"loss-curve--train", "loss-curve--val", "loss-curve--ref", "loss-curve--axis"}
    DEFAULT_CSS = """
    LossCurve { height: 1fr; min-height: 5; }
    LossCurve > .loss-curve--train { color: $primary; }
    LossCurve > .loss-curve--val { color: $warning; text-style: bold; }
    LossCurve > .loss-curve--ref { color: $foreground 45%; }
    LossCurve > .loss-curve--axis { color: $foreground 55%; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.history: Sequence[tuple[float, float]] = ()
        self.val: Sequence[tuple[int, float]] = ()
        self.references: dict[str, float] = {}

    def set_data(self, history: Sequence[tuple[float, float]], val: Sequence[tuple[int, float]],
                 references: dict[str, float]) -> None:
        self.history, self.val, self.references = history, val, references
        self.data_changed()

    def _y_range(self) -> tuple[float, float] | None:
        ys = [y for _, y in self.history if y == y] + [y for _, y in self.val if y == y]
        if not ys:
            return None
        refs = [v for v in self.references.values() if v == v]
        lo, hi = min(ys + refs), max(ys + refs)
        cap = max(refs + [min(ys)]) * 1.3 if refs else hi
        hi = min(hi, max(cap, lo + 1e-3))
        pad = max(hi - lo, 1e-3) * 0.04
        return lo - pad, hi + pad

    def rows(self, width: int, height: int) -> list[list[tuple[str, Style]]]:
        axis = self.component_style("loss-curve--axis")
        yr = self._y_range()
        if yr is None or width < 12 or height < 3:
            msg = "the loss curve appears when training starts"[:width]
            return [[]] * (height // 2) + [text_row(msg.center(width), axis)]
        return self._draw(width, height, yr, axis)

    def _draw(self, width: int, height: int, yr: tuple[float, float], axis: Style) -> list[list[tuple[str, Style]]]:
        lo, hi = yr
        label_w = 5
        pw, ph = width - label_w, height - 1  # plot cells
        dots_x, dots_y = pw * 2, ph * 4
        xmax = max([x for x, _ in self.history] + [x for x, _ in self.val] + [1.0])

        def dot_row(y: float) -> int:
            f = (hi - min(max(y, lo), hi)) / (hi - lo)
            return min(dots_y - 1, max(0, round(f * (dots_y - 1))))

        def dot_col(x: float) -> int:
            return min(dots_x - 1, max(0, int(x / xmax * (dots_x - 1) + 0.5)))

        bits = [[0] * pw for _ in range(ph)]
        columns: dict[int, list[float]] = {}
        for x, y in self.history:
            if y == y:
                columns.setdefault(dot_col(x), []).append(y)
        prev: int | None = None
        for c in sorted(columns):
            r = dot_row(sum(columns[c]) / len(columns[c]))
            lo_r, hi_r = (r, r) if prev is None else (min(r, prev), max(r, prev))
            for rr in range(lo_r, hi_r + 1):
                bits[rr // 4][c // 2] |= _BRAILLE_BITS[rr % 4][c % 2]
            prev = r
        train = self.component_style("loss-curve--train")
        val_style = self.component_style("loss-curve--val")
        ref_style = self.component_style("loss-curve--ref")
        cells: list[list[tuple[str, Style]]] = [
            [(chr(0x2800 + b), train) if b else (" ", axis) for b in row] for row in bits
        ]
        taken: set[tuple[int, int]] = set()  # cells holding a reference label
        for name, v in self.references.items():
            if not lo <= v <= hi:
                continue
            row = dot_row(v) // 4
            free = [bits[row][c] == 0 and (row, c) not in taken for c in range(pw)]
            for c in range(pw):
                if free[c] and cells[row][c][0] == " ":
                    cells[row][c] = ("╌", ref_style)
            # the label goes where it hides no part of the curve: right end, else left end; in a
            # narrow plot the value is dropped, and where not even the name fits, the line stays bare
            placed = False
            for label in (f" {name} {v:.2f} ", f" {name} "):
                for start in (pw - len(label), 1):
                    if start >= 0 and start + len(label) <= pw and all(free[start:start + len(label)]):
                        for i, ch in enumerate(label):
                            cells[row][start + i] = (ch, ref_style)
                            taken.add((row, start + i))
                        placed = True
                        break
                if placed:
                    break
        for x, v in self.val:
            if v == v:
                cells[dot_row(v) // 4][dot_col(x) // 2] = ("•", val_style)
        out = []
        mid = ph // 2
        for i, row in enumerate(cells):
            value = hi if i == 0 else lo if i == ph - 1 else (hi + lo) / 2 if i == mid else None
            label = (f"{value:4.2f}" if value < 10 else f"{value:4.1f}")[:4] if value is not None else "    "
            out.append(text_row(label + ("┤" if value is not None else "│"), axis) + row)
        right = f"step {int(xmax):,}"
        out.append(text_row(("0".rjust(label_w) + right.rjust(max(0, pw - 1)))[:width], axis))
        return out


TANH_TITLE = "hidden units · last batch · tanh saturation"


def hidden_title(state_names: Sequence[str] = ("h",), gate_names: Sequence[str] = ()) -> str:
    """The section label over :class:`HiddenStrips`: what its rows show for this kind of cell."""
    if len(state_names) <= 1 and not gate_names:
        return TANH_TITLE
    shown = state_names[0] + (f" ({', '.join(state_names[1:])} below)" if len(state_names) > 1 else "")
    return f"hidden {shown} · last batch · sat of {state_names[0]}" + (", gates" if gate_names else "")


class HiddenStrips(CellCanvas):
    """Per layer: a few units' activations over the last sequence (height and colour), and saturation.

    With a gated cell's extras (:meth:`set_data`'s keywords, from HiddenStats), each layer also has
    rows for the cell's other state parts (the LSTM's c, drawn as tanh(c), named at the row's start)
    and its gates' saturation beside the rows: per gate where the width allows, else their mean.
    """

    COMPONENT_CLASSES = {"hidden--pos", "hidden--neg", "hidden--label", "hidden--hot"}
    DEFAULT_CSS = """
    HiddenStrips { height: auto; min-height: 1; }
    HiddenStrips > .hidden--pos { color: $error; }
    HiddenStrips > .hidden--neg { color: $primary; }
    HiddenStrips > .hidden--label { color: $foreground 55%; }
    HiddenStrips > .hidden--hot { color: $warning; text-style: bold; }
    """

    def __init__(self, *, rows_per_layer: int = 1, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.units: Sequence = ()
        self.saturation: Sequence[float] = ()
        self.state_names: Sequence[str] = ("h",)
        self.more_units: Sequence = ()  # (S-1, L, n_units, T): the other state parts (the LSTM's c)
        self.gate_names: Sequence[str] = ()
        self.gate_saturation: Sequence[Sequence[float]] = ()  # (L, n_gates)
        self.rows_per_layer = rows_per_layer

    def set_data(self, units: Sequence, saturation: Sequence[float], *, state_names: Sequence[str] = ("h",),
                 more_units: Sequence = (), gate_names: Sequence[str] = (),
                 gate_saturation: Sequence[Sequence[float]] = ()) -> None:
        if (units is self.units and saturation is self.saturation and more_units is self.more_units
                and gate_saturation is self.gate_saturation):
            return  # the same HiddenStats as at the last refresh
        before = self.get_content_height(None, None, 0)
        self.units, self.saturation = units, saturation
        self.state_names, self.more_units = state_names, more_units
        self.gate_names, self.gate_saturation = gate_names, gate_saturation
        self.data_changed(layout=self.get_content_height(None, None, 0) != before)

    @property
    def title(self) -> str:
        """What the rows show (see :func:`hidden_title`)."""
        return hidden_title(self.state_names, self.gate_names)

    def _detailed(self) -> bool:
        return bool(self.more_units or self.gate_saturation)

    def _layer_rows(self, layer: int) -> list[tuple[int, int]]:
        """(state part, unit) of each row of a layer: h's units, then each other part's (one fewer)."""
        rows = [(0, r) for r in range(min(self.rows_per_layer, len(self.units[layer])))]
        for s, more in enumerate(self.more_units, 1):
            if layer < len(more):
                rows += [(s, r) for r in range(min(max(1, self.rows_per_layer - 1), len(more[layer])))]
        return rows

    def get_content_height(self, container, viewport, width: int) -> int:
        if not self._detailed():
            return max(1, len(self.units) * self.rows_per_layer)
        return max(1, sum(len(self._layer_rows(layer)) for layer in range(len(self.units))))

    def rows(self, width: int, height: int) -> list[list[tuple[str, Style]]]:
        label = self.component_style("hidden--label")
        if not self.units:
            return [text_row("hidden-state strips appear when training starts"[:width], label)]
        base = Style(color=label.color, bgcolor=self.base_style.bgcolor)
        pos, neg = diverging_styles(self.component_style("hidden--pos"),
                                    self.component_style("hidden--neg"), base)
        hot = self.component_style("hidden--hot")
        if self._detailed():
            return self._detailed_rows(width, label, hot, pos, neg)
        strip_w = max(4, width - 12)
        out = []
        for layer, layer_units in enumerate(self.units):
            for r in range(min(self.rows_per_layer, len(layer_units))):
                row = text_row(f"L{layer + 1} " if r == 0 else "   ", label)
                for v in resample(list(layer_units[r]), strip_w):
                    v = max(-1.0, min(1.0, v))
                    row.append((BLOCKS[min(7, int((v + 1) / 2 * 8))], styled_level(v, pos, neg)))
                if r == 0 and layer < len(self.saturation):
                    sat = self.saturation[layer]
                    row += text_row(f" sat {sat * 100:3.0f}%", hot if sat > 0.5 else label)
                out.append(row)
        return out

    def _gate_cells(self, layer: int, per_gate: bool, label: Style, hot: Style) -> list[tuple[str, Style]]:
        """The layer's gate saturation: " r 12% z 40%" per gate, or " gates 26%" (their mean)."""
        if layer >= len(self.gate_saturation) or not self.gate_saturation[layer]:
            return []
        sats = list(self.gate_saturation[layer])
        if not per_gate:
            mean = sum(sats) / len(sats)
            return text_row(f" gates{mean * 100:3.0f}%", hot if mean > 0.5 else label)
        cells: list[tuple[str, Style]] = []
        for name, v in zip(self.gate_names, sats):
            cells += text_row(f" {name}{v * 100:3.0f}%", hot if v > 0.5 else label)
        return cells

    def _detailed_rows(self, width: int, label: Style, hot: Style, pos, neg) -> list[list[tuple[str, Style]]]:
        named = len(self.state_names) > 1  # rows start with the state part they show ("L1 h ", "   c ")
        prefix_w = 5 if named else 3
        layers = []  # per layer: its rows and the right-hand figures beside each
        for per_gate in (True, False):
            layers, right_w = [], 0
            for layer in range(len(self.units)):
                rows = self._layer_rows(layer)
                right: list[list[tuple[str, Style]]] = [[] for _ in rows]
                if layer < len(self.saturation) and rows:
                    sat = self.saturation[layer]
                    right[0] = text_row(f" sat {sat * 100:3.0f}%", hot if sat > 0.5 else label)
                gates = self._gate_cells(layer, per_gate, label, hot)
                if gates and rows:  # beside the other state part's first row (c), else h's second, else h's
                    at = next((i for i, (part, _) in enumerate(rows) if part > 0), 1 if len(rows) > 1 else 0)
                    right[at] += gates
                right_w = max([right_w] + [len(r) for r in right])
                layers.append((rows, right))
            if width - prefix_w - right_w >= 8:
                break
        strip_w = max(4, width - prefix_w - right_w)
        out = []
        for layer, (rows, right) in enumerate(layers):
            for i, (s, r) in enumerate(rows):
                first = i == 0 or rows[i - 1][0] != s
                lead = f"L{layer + 1}" if i == 0 else "  "
                lead += (f" {self.state_names[s][:1]} " if first else "   ") if named else " "
                row = text_row(lead, label)
                values = self.units[layer][r] if s == 0 else [math.tanh(v) for v in self.more_units[s - 1][layer][r]]
                for v in resample(list(values), strip_w):
                    v = max(-1.0, min(1.0, v))
                    row.append((BLOCKS[min(7, int((v + 1) / 2 * 8))], styled_level(v, pos, neg)))
                out.append(row + right[i])
        return out
