"""What ``rnnplay runs`` prints: the run table, a run's details with a loss plot, comparisons.

Plain text (no Rich, no torch): the output goes to pipes and files as well as terminals.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from rnnplay.runs.store import RunRow

BRAILLE = 0x2800
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col] within a 2x4 cell


def fmt_loss(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.3f}"


def fmt_age(t: float | None, now: float | None = None) -> str:
    if t is None:
        return "-"
    s = max(0.0, (now or time.time()) - t)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s / size:.0f}{unit} ago"
    return f"{s:.0f}s ago"


def fmt_params(n: int | None) -> str:
    if not n:
        return "-"
    if n < 1000:
        return str(n)
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def model_size(r: RunRow) -> str:
    c = r.config
    shape = f"{c.get('layers')}x{c.get('hidden')}" if c.get("hidden") else "?"
    return f"{shape} {fmt_params(r.params)}".strip()


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: set[int] = frozenset()) -> list[str]:
    cells = [[str(h) for h in headers]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for row in cells:
        parts = [v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))]
        out.append("  ".join(parts).rstrip())
    return out


def run_table(runs: Sequence[RunRow], now: float | None = None) -> list[str]:
    now = now or time.time()
    rows = [(r.id, r.name, r.corpus or "-", model_size(r), f"{r.steps}/{r.total_steps or '?'}",
             fmt_loss(r.best_val), r.status, fmt_age(r.started_at, now)) for r in runs]
    return table(("id", "name", "corpus", "model", "steps", "best val", "status", "started"), rows, right={0, 4, 5})


def run_details(r: RunRow, now: float | None = None) -> list[str]:
    now = now or time.time()
    lines = [f"run {r.id}: {r.name}  [{r.status}]"]
    facts = [
        ("corpus", f"{r.corpus or '-'}" + (f" ({r.corpus_chars:,} chars, {r.corpus_location})" if r.corpus_chars else "")),
        ("model", model_size(r) + (f" on {r.device}" if r.device else "")),
        ("steps", f"{r.steps} of {r.total_steps or '?'}"),
        ("loss", f"train {fmt_loss(r.train_loss)}, val {fmt_loss(r.val_loss)}, best val {fmt_loss(r.best_val)}"
                 + (f", exact val {fmt_loss(r.summary['val_loss_exact'])} (whole split)"
                    if r.summary.get("val_loss_exact") is not None else "")),
        ("speed", f"{r.chars_per_s:,.0f} chars/s" if r.chars_per_s else "-"),
        ("started", f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(r.started_at))} ({fmt_age(r.started_at, now)})"
                    + (f", {r.elapsed_s:.1f} s of training" if r.elapsed_s else "")),
        ("where", f"{r.host or '-'} pid {r.pid or '-'}, {r.kind}" + (f", sweep {r.sweep}" if r.sweep else "")),
        ("checkpoint", r.checkpoint or "-"),
    ]
    if r.best_checkpoint:
        facts.append(("best", r.best_checkpoint))
    if r.summary.get("init_from"):
        parent = f"run {r.parent_id}, " if r.parent_id else ""
        facts.append(("fine-tunes", f"{parent}{r.summary['init_from']}"))
    elif r.parent_id:
        facts.append(("continues", f"run {r.parent_id}"))
    if r.message:
        facts.append(("message", r.message))
    refs = r.summary.get("references") or {}
    if refs:
        facts.append(("references", ", ".join(f"{k} {fmt_loss(v)}" for k, v in refs.items())))
    lines += [f"  {k:<11}{v}" for k, v in facts]
    lines.append("  config     " + " ".join(f"{k}={_show(v)}" for k, v in sorted(r.config.items())))
    return lines


def _show(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ",".join(_show(x) for x in v)
    return str(v)


def differing_settings(runs: Sequence[RunRow]) -> list[str]:
    """The config keys whose values are not the same in every run, in a stable order."""
    keys: list[str] = []
    for r in runs:
        keys.extend(k for k in r.config if k not in keys)
    return [k for k in keys if len({_show(r.config.get(k)) for r in runs}) > 1 and k != "out"]


def compare(runs: Sequence[RunRow]) -> list[str]:
    diff = differing_settings(runs)
    headers = ["", *(f"run {r.id}" for r in runs)]
    rows: list[list[str]] = [["name", *(r.name for r in runs)], ["corpus", *(r.corpus or "-" for r in runs)]]
    rows += [[k, *(_show(r.config.get(k, "-")) for r in runs)] for k in diff]
    rows += [
        ["status", *(r.status for r in runs)],
        ["steps", *(str(r.steps) for r in runs)],
        ["params", *(fmt_params(r.params) for r in runs)],
        ["train loss", *(fmt_loss(r.train_loss) for r in runs)],
        ["val loss", *(fmt_loss(r.val_loss) for r in runs)],
        ["best val", *(fmt_loss(r.best_val) for r in runs)],
        ["chars/s", *(f"{r.chars_per_s:,.0f}" if r.chars_per_s else "-" for r in runs)],
        ["time s", *(f"{r.elapsed_s:.1f}" if r.elapsed_s else "-" for r in runs)],
    ]
    out = table(headers, rows)
    if not diff:
        out.append("(the runs' settings are the same)")
    return out


def downsample(xs: Sequence[float], ys: Sequence[float], n: int) -> tuple[list[float], list[float]]:
    """At most ``n`` points: bucket means of consecutive points."""
    if len(xs) <= n:
        return list(xs), list(ys)
    out_x, out_y = [], []
    size = len(xs) / n
    for i in range(n):
        a, b = int(i * size), max(int(i * size) + 1, int((i + 1) * size))
        seg = [y for y in ys[a:b] if y is not None and math.isfinite(y)]
        if seg:
            out_x.append(xs[(a + b - 1) // 2])
            out_y.append(sum(seg) / len(seg))
    return out_x, out_y


def plot(series: Sequence[tuple[Sequence[float], Sequence[float], str]], width: int = 64, height: int = 10,
         x_label: str = "step") -> list[str]:
    """A text plot: the first series in braille dots, the others as their one-character mark.

    ``series`` is ``[(xs, ys, mark), ...]``; returns lines with a y axis on the left.
    """
    pts = [(x, y) for xs, ys, _ in series for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
    if not pts:
        return ["(no metrics recorded)"]
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5
    if x1 == x0:
        x1 = x0 + 1
    dots = [[0] * width for _ in range(height)]
    marks: dict[tuple[int, int], str] = {}
    for k, (xs, ys, mark) in enumerate(series):
        px, py = downsample(xs, ys, width * 2)
        for x, y in zip(px, py):
            cx = (x - x0) / (x1 - x0) * (width * 2 - 1)
            cy = (y1 - y) / (y1 - y0) * (height * 4 - 1)
            col, row = int(round(cx)), int(round(cy))
            if k == 0:
                dots[row // 4][col // 2] |= _DOTS[row % 4][col % 2]
            else:
                marks[(row // 4, col // 2)] = mark
    label_w = max(len(f"{y1:.2f}"), len(f"{y0:.2f}"))
    lines = []
    for r in range(height):
        y_here = y1 - (y1 - y0) * r / max(1, height - 1)
        label = f"{y_here:.2f}" if r in (0, height - 1, height // 2) else ""
        cells = "".join(marks.get((r, c)) or (chr(BRAILLE + dots[r][c]) if dots[r][c] else " ") for c in range(width))
        lines.append(f"{label:>{label_w}} │{cells}")
    lines.append(" " * label_w + " └" + "─" * width)
    left, right = f"{x0:g}", f"{x1:g} {x_label}"
    lines.append(" " * (label_w + 2) + left + right.rjust(width - len(left)))
    return lines
