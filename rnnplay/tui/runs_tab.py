"""The Runs tab: the run store's table, live, and the selected runs' curves laid over each other.

A run started anywhere (``rnnplay train`` in another terminal, a sweep, this app) appears within a
second and updates while it trains: a worker thread polls the store (:class:`rnnplay.runs.watch.
RunsFeed`, cheap when nothing changed) and posts a message only when there is something new.

Keys in the tab: space selects a run for the chart (up to ten), ``x`` switches the x axis between
step and wall time, ``g`` opens the run's checkpoint in Generate, ``t`` opens it in Train (F5 then
continues it), ``c`` clears the selection. F2, F3, F4, F8 and F12 reach the Train, Generate, Runs,
Classify and Write tabs from anywhere (:data:`TAB_KEYS`).
"""

from __future__ import annotations

import os

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from rnnplay.runs.report import differing_settings, fmt_age, fmt_loss, model_size
from rnnplay.runs.store import RunRow, resolve_path
from rnnplay.runs.watch import FeedView, RunsFeed
from rnnplay.tui.runs_chart import RunsChart

MAX_SELECTED = 10
POLL_S = 1.0
TAB_KEYS = [
    Binding("f2", "show_tab('train')", "Train tab", show=False, priority=True),
    Binding("f3", "show_tab('generate')", "Generate tab", show=False, priority=True),
    Binding("f4", "show_tab('runs')", "Runs tab", show=False, priority=True),
    Binding("f8", "show_tab('classify')", "Classify tab", show=False, priority=True),
    Binding("f12", "show_tab('write')", "Write tab", show=False, priority=True),
]
COLUMNS = (("sel", " "), ("id", "id"), ("name", "name"), ("corpus", "corpus"), ("model", "model"),
           ("steps", "steps"), ("best", "best val"), ("status", "status"), ("age", "started"))


class RunsUpdated(Message):
    def __init__(self, view: FeedView) -> None:
        super().__init__()
        self.view = view


class RunsPane(Vertical):
    """See the module docstring. ``store_path`` None: the default store of ``checkpoint_dir``."""

    BINDINGS = [
        # shown in the tab's own hint line, so the footer keeps the app's keys
        Binding("space", "toggle_run", "Select", show=False),
        Binding("x", "toggle_axis", "Step/time", show=False),
        Binding("g", "open_run('generate')", "Generate from it", show=False),
        Binding("t", "open_run('train')", "Continue in Train", show=False),
        Binding("c", "clear_selection", "Clear", show=False),
    ]
    DEFAULT_CSS = """
    RunsPane { height: 1fr; }
    RunsPane #runs-table { height: 40%; min-height: 4; }
    RunsPane #runs-lower { height: 1fr; }
    RunsPane #runs-chart { width: 1fr; }
    RunsPane #runs-differ { width: 38; max-width: 45%; padding: 0 1; }
    RunsPane #runs-hint { height: 1; color: $text-muted; }
    """

    def __init__(self, store_path: str | None = None, checkpoint_dir: str = "checkpoints", *,
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.store_path = store_path if store_path is not None else resolve_path(None, folder=checkpoint_dir)
        self.feed = RunsFeed(self.store_path)
        self.view = FeedView()
        self.selected: list[int] = []
        self.by_time = False
        self._polling = False
        self._row_ids: list[int] = []

    def compose(self) -> ComposeResult:
        yield Static("space select · x step/time · g generate · t continue in Train · c clear", id="runs-hint")
        table = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        with Horizontal(id="runs-lower"):
            yield RunsChart(id="runs-chart")
            yield Static("", id="runs-differ")

    def on_mount(self) -> None:
        self._table = self.query_one(DataTable)
        self._chart = self.query_one(RunsChart)
        self._differ = self.query_one("#runs-differ", Static)
        self.set_interval(POLL_S, self.poll, name="runs-poll")
        self.poll(force=True)

    # ---- polling ------------------------------------------------------------------------------

    def poll(self, force: bool = False) -> None:
        """Read the store in a thread, unless a read is under way or the tab is hidden."""
        if self._polling or (not force and self.size.width == 0):
            return
        self._polling = True
        self.run_worker(self._poll_thread, thread=True, group="runs-poll", exit_on_error=False)

    def _poll_thread(self) -> None:
        try:
            view = self.feed.poll()
        finally:
            self._polling = False
        if view is not None:
            self.post_message(RunsUpdated(view))

    def reached(self) -> None:
        """Reached by its key (F4): the table takes the focus, so space, x, g, t and c act at once."""
        self._table.focus()

    def on_runs_updated(self, msg: RunsUpdated) -> None:
        self.view = msg.view
        live = {r.id for r in msg.view.runs}
        if any(i not in live for i in self.selected):
            self.selected = [i for i in self.selected if i in live]
            self.feed.select(tuple(self.selected))
        self._fill_table()
        self._draw()

    def on_unmount(self) -> None:
        self.feed.close()

    # ---- the table ----------------------------------------------------------------------------

    def _cells(self, r: RunRow) -> tuple:
        mark = "●" if r.id in self.selected else ""
        if mark:
            from rnnplay.tui.runs_chart import PALETTE

            mark = Text("●", style=PALETTE[self.selected.index(r.id) % len(PALETTE)])
        return (mark, str(r.id), r.name, r.corpus or "-", model_size(r), f"{r.steps}/{r.total_steps or '?'}",
                fmt_loss(r.best_val), r.status, fmt_age(r.started_at))

    def _fill_table(self) -> None:
        table = self._table
        runs = self.view.runs
        ids = [r.id for r in runs]
        if ids != self._row_ids:  # a run came or went: rebuild, keeping the cursor on its run
            current = self.current_run()
            table.clear()
            for r in runs:
                table.add_row(*self._cells(r), key=str(r.id))
            self._row_ids = ids
            if current is not None and current.id in ids:
                table.move_cursor(row=ids.index(current.id), animate=False)
            return
        for r in runs:
            for (key, _), value in zip(COLUMNS, self._cells(r)):
                if table.get_cell(str(r.id), key) != value:
                    table.update_cell(str(r.id), key, value)
        if self.view.error:
            self.query_one("#runs-hint", Static).update(self.view.error)

    def current_run(self) -> RunRow | None:
        table = self._table
        if not self._row_ids or table.cursor_row is None or not 0 <= table.cursor_row < len(self._row_ids):
            return None
        rid = self._row_ids[table.cursor_row]
        return next((r for r in self.view.runs if r.id == rid), None)

    # ---- the chart and the settings that differ -------------------------------------------------

    def _draw(self) -> None:
        by_id = {r.id: r for r in self.view.runs}
        chosen = [by_id[i] for i in self.selected if i in by_id]
        curves = [self.view.curves[r.id] for r in chosen if r.id in self.view.curves]
        labels = [f"{r.id} {r.name}" for r in chosen if r.id in self.view.curves]
        hashes = {r.corpus_hash for r in chosen}
        refs = chosen[0].summary.get("references", {}) if chosen and len(hashes) == 1 else {}
        self._chart.set_data(curves, labels, refs, self.by_time)
        self._differ.update(self._differ_text(chosen))
        hint = self.view.error or (f"{self.store_path}: {len(self.view.runs)} runs · space select · x step/time"
                                   " · g generate · t continue in Train · c clear")
        self.query_one("#runs-hint", Static).update(hint)

    def _differ_text(self, runs: list[RunRow]) -> Text:
        text = Text()
        if len(runs) < 2:
            text.append("select two or more runs (space)\nto see the settings that differ", style="dim")
            return text
        from rnnplay.tui.runs_chart import PALETTE

        diff = differing_settings(runs) or []
        text.append("settings that differ\n", style="bold")
        if not diff:
            text.append("(none: the same settings)\n", style="dim")
        # one row per run, one column per setting (as many as fit), so ten runs stay readable
        width = max(20, (self._differ.size.width or 38) - 2)
        id_w = max(len(str(r.id)) for r in runs) + 1
        fit = max(1, (width - id_w - 9) // 9)
        keys = diff[:fit]
        text.append(" " * id_w + "".join(f"{k[:8]:>9}" for k in keys) + f"{'best val':>9}\n", style="bold")
        for k, r in enumerate(runs):
            text.append(f"{r.id:<{id_w}}", style=PALETTE[k % len(PALETTE)])
            for key in keys:
                v = r.config.get(key, "-")
                v = f"{v:g}" if isinstance(v, float) else str(v)
                text.append(f"{v[:8]:>9}")
            text.append(f"{fmt_loss(r.best_val):>9}\n")
        if len(diff) > fit:
            text.append(f"also differ: {', '.join(diff[fit:])}", style="dim")
        return text

    # ---- actions ------------------------------------------------------------------------------

    def action_toggle_run(self) -> None:
        r = self.current_run()
        if r is None:
            return
        if r.id in self.selected:
            self.selected.remove(r.id)
        elif len(self.selected) >= MAX_SELECTED:
            self.app.notify(f"at most {MAX_SELECTED} runs at once; unselect one first (space)", severity="warning")
            return
        else:
            self.selected.append(r.id)
        self.feed.select(tuple(self.selected))
        for rid in self._row_ids:
            run = next(x for x in self.view.runs if x.id == rid)
            self._table.update_cell(str(rid), "sel", self._cells(run)[0])
        self._draw()
        self.poll(force=True)

    def action_clear_selection(self) -> None:
        self.selected.clear()
        self.feed.select(())
        for rid in self._row_ids:
            self._table.update_cell(str(rid), "sel", "")
        self._draw()

    def action_toggle_axis(self) -> None:
        self.by_time = not self.by_time
        self._draw()

    def action_open_run(self, where: str) -> None:
        r = self.current_run()
        if r is None:
            return
        path = r.checkpoint
        if not path or not os.path.isfile(path):
            self.app.notify(f"run {r.id} has no checkpoint on disk" + (f" ({path})" if path else ""),
                            severity="warning")
            return
        if where == "train" and getattr(self.app, "phase", "idle") != "idle":
            self.app.notify("a run is training: stop it (F6) before continuing another", severity="warning")
            return
        self.app._load_checkpoint(path)  # the app's one way to open a checkpoint (Generate + F5 resume)
        self.app.action_show_tab(where)
