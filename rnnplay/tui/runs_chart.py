"""Several runs' loss curves laid over each other: braille train lines, validation dots, one colour
per run, by step or by wall time, with the corpus's reference lines when the runs share a corpus."""

from __future__ import annotations

from collections.abc import Sequence

from rich.style import Style

from rnnplay.runs.watch import Curve
from rnnplay.tui.canvas import CellCanvas, text_row
from rnnplay.tui.widgets import _BRAILLE_BITS

# ten colours that stay apart on dark and light backgrounds (Tableau 10)
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac")


class RunsChart(CellCanvas):
    """Overlaid curves (see the module docstring). ``set_data`` with curves in legend order."""

    COMPONENT_CLASSES = {"runs-chart--axis", "runs-chart--ref"}
    DEFAULT_CSS = """
    RunsChart { height: 1fr; min-height: 6; }
    RunsChart > .runs-chart--axis { color: $foreground 55%; }
    RunsChart > .runs-chart--ref { color: $foreground 40%; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.curves: tuple[Curve, ...] = ()
        self.labels: tuple[str, ...] = ()
        self.references: dict[str, float] = {}
        self.by_time = False
        self._styles = tuple(Style(color=c) for c in PALETTE)

    def set_data(self, curves: Sequence[Curve], labels: Sequence[str], references: dict[str, float],
                 by_time: bool) -> None:
        self.curves, self.labels, self.references, self.by_time = tuple(curves), tuple(labels), dict(references), by_time
        self.data_changed()

    def style_of(self, i: int) -> Style:
        return self._styles[i % len(self._styles)]

    def rows(self, width: int, height: int) -> list[list[tuple[str, Style]]]:
        axis = self.component_style("runs-chart--axis")
        xi = 1 if self.by_time else 0
        series = [s for c in self.curves for s in (c.train, c.val) if s]
        if not series or width < 16 or height < 4:
            msg = ("select runs with space to lay their curves over each other" if not self.curves
                   else "no metrics recorded yet")[:width]
            return [[]] * (height // 2) + [text_row(msg.center(width), axis)]
        refs = {k: v for k, v in self.references.items() if v == v}
        lo, hi = min(min(p[2] for p in s) for s in series), max(max(p[2] for p in s) for s in series)
        if refs:  # show the reference lines that are near the curves, not the uniform guess far above
            lo = min([lo] + [v for v in refs.values() if v <= hi])
        pad = max(hi - lo, 1e-3) * 0.04
        lo, hi = lo - pad, hi + pad
        x0 = min(min(p[xi] for p in s) for s in series)
        x1 = max(max(max(p[xi] for p in s) for s in series), x0 + 1e-9)
        label_w = 5
        legend_rows = 1
        pw, ph = width - label_w, height - 1 - legend_rows
        if ph < 2:
            ph, legend_rows = height - 1, 0
        dx, dy = pw * 2, ph * 4

        def row_of(y: float) -> int:
            return min(dy - 1, max(0, round((hi - min(max(y, lo), hi)) / (hi - lo) * (dy - 1))))

        def col_of(x: float) -> int:
            return min(dx - 1, max(0, int((x - x0) / (x1 - x0) * (dx - 1) + 0.5)))

        cells: list[list[tuple[str, Style]]] = [[(" ", axis)] * pw for _ in range(ph)]
        bits = [[0] * pw for _ in range(ph)]
        ref_style = self.component_style("runs-chart--ref")
        for name, v in refs.items():
            if lo <= v <= hi:
                r = row_of(v) // 4
                cells[r] = [("╌", ref_style)] * pw
                label = f" {name} {v:.2f} "
                if len(label) < pw:
                    for i, ch in enumerate(label):
                        cells[r][pw - len(label) + i] = (ch, ref_style)
        sx = (dx - 1) / (x1 - x0)  # every x is within [x0, x1]: no clamping per point
        for k, curve in enumerate(self.curves):
            style = self.style_of(k)
            acc, n = [0.0] * dx, [0] * dx  # the mean loss per dot column
            for p in curve.train:
                c = int((p[xi] - x0) * sx + 0.5)
                acc[c] += p[2]
                n[c] += 1
            prev = None
            for c in range(dx):
                if not n[c]:
                    continue
                r = row_of(acc[c] / n[c])
                a, b = (r, r) if prev is None else (min(r, prev), max(r, prev))
                for rr in range(a, b + 1):
                    cr, cc = rr // 4, c // 2
                    bits[cr][cc] |= _BRAILLE_BITS[rr % 4][c % 2]
                    cells[cr][cc] = (chr(0x2800 + bits[cr][cc]), style)
                prev = r
        for k, curve in enumerate(self.curves):
            style = self.style_of(k) + Style(bold=True)
            for p in curve.val:
                cells[row_of(p[2]) // 4][col_of(p[xi]) // 2] = ("•", style)
        out = []
        mid = ph // 2
        for i, row in enumerate(cells):
            value = hi if i == 0 else lo if i == ph - 1 else (hi + lo) / 2 if i == mid else None
            label = (f"{value:4.2f}" if value < 10 else f"{value:4.1f}")[:4] if value is not None else "    "
            out.append(text_row(label + ("┤" if value is not None else "│"), axis) + row)
        unit = "s" if self.by_time else "step"
        left, right = _x(x0, self.by_time), f"{_x(x1, self.by_time)} {unit}"
        out.append(text_row((left.rjust(label_w + len(left)) + right.rjust(max(0, pw - len(left))))[:width], axis))
        if legend_rows:
            legend: list[tuple[str, Style]] = []
            for k, label in enumerate(self.labels):
                legend += [("■", self.style_of(k))] + text_row(f" {label}  ", axis)
            out.append(legend[:width])
        return out


def _x(v: float, by_time: bool) -> str:
    if by_time:
        return f"{v:.0f}" if v >= 10 else f"{v:.1f}"
    return f"{int(v):,}"
