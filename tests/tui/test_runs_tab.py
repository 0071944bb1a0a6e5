"""The Runs tab with Pilot: the table from the store, a run appearing and updating while the tab is
open, runs overlaid with the settings that differ, the x axis, opening a run, the tab keys; a snapshot."""

from __future__ import annotations

import time

from textual.widgets import DataTable, TabbedContent

from rnnplay.config import TrainConfig
from rnnplay.data.facts import CorpusInfo, References
from rnnplay.runs.recorder import Recorder
from rnnplay.runs.store import RunStore
from rnnplay.training.events import EvalDone, Finished, RunInfo, Started, StepDone
from rnnplay.tui.app import make_app
from rnnplay.tui.runs_chart import RunsChart
from rnnplay.tui.runs_tab import RunsPane
from tui_fakes import FakeFactory
from tui_helpers import quiet, wait_until


def _fill(path, runs=2, steps=200, started=None):
    started = started or time.time() - 5 * 3600
    ids = []
    with RunStore.open(path) as store:
        for i in range(runs):
            cfg = {"corpus": "play", "hidden": 64 * (i + 1), "layers": 2, "lr": 0.002, "seed": 0}
            rid = store.create_run(name=f"play-2x{64 * (i + 1)}", config=cfg, corpus="play", corpus_hash="h",
                                   status="completed", steps=steps, total_steps=steps, params=1000 * (i + 1),
                                   best_val=2.0 - 0.2 * i, started_at=started + i, heartbeat_at=started + i,
                                   summary={"references": {"bigram": 2.3}})
            store.write(rid, steps=[(s, s * 0.05 * (i + 1), 3.0 - (1.0 + 0.2 * i) * s / steps, 1e-3, 0.5, 1e4)
                                    for s in range(1, steps + 1)],
                        evals=[(s, s * 0.05 * (i + 1), 3.1 - (1.0 + 0.2 * i) * s / steps) for s in range(50, steps + 1, 50)])
            ids.append(rid)
    return ids


def _app(ckpt_dir):
    return make_app(trainer_factory=FakeFactory(), checkpoint_dir=ckpt_dir, warm_backend=False)


def _rows(app) -> int:
    return app.query_one("#runs-table", DataTable).row_count


async def test_table_live_run_overlay_and_differ(ckpt_dir, tmp_path, monkeypatch):
    db = str(tmp_path / "runs.db")
    monkeypatch.setenv("RNNPLAY_RUNS_DB", db)
    a, b = _fill(db)
    app = _app(ckpt_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        assert app.query_one("#tabs", TabbedContent).active == "runs"
        await wait_until(pilot, lambda: _rows(app) == 2, what="the two runs")
        pane = app.query_one(RunsPane)
        table = app.query_one("#runs-table", DataTable)
        assert table.get_row_at(0)[1] == str(b)  # newest first

        # a run recorded by someone else appears while the tab is open, and updates
        rec = Recorder.open(db, flush_s=3600)
        corpus = CorpusInfo("names", "bundled", "names", 1, 1000, 1000, 30, 900, 100, "n")
        info = RunInfo(corpus, References(3.4, 3.0, 2.5), TrainConfig(corpus="names", hidden=32, layers=1), 64)
        rec(Started(0, 100, 500, "cpu", run=info))
        await wait_until(pilot, lambda: _rows(app) == 3, what="the new run")
        assert table.get_row_at(0)[2].startswith("names-1x32") and table.get_row_at(0)[7] == "running"
        for s in range(1, 41):
            rec(StepDone(s, 100, 3.0, 1e-3, 0.5, 1e4, s * 0.1))
        rec(EvalDone(40, 2.9, True))
        rec.flush()
        await wait_until(pilot, lambda: table.get_row_at(0)[5] == "40/100", what="its steps")

        # select two runs: their curves overlaid, the settings that differ beside them
        table.focus()
        table.move_cursor(row=1)
        await pilot.press("space")
        await pilot.press("down", "space")
        chart = app.query_one(RunsChart)
        await wait_until(pilot, lambda: len(chart.curves) == 2, what="two curves")
        assert sorted(c.run_id for c in chart.curves) == [a, b]
        assert all(len(c.train) == 200 and len(c.val) == 4 for c in chart.curves)
        assert chart.references == {"bigram": 2.3}  # same corpus: its reference lines
        differ = str(app.query_one("#runs-differ").render())
        assert "hidden" in differ and "128" in differ and "layers" not in differ
        lines = "\n".join("".join(ch for ch, _ in row) for row in chart.rows(80, 16))
        assert "⠀" not in lines and any(0x2800 < ord(ch) < 0x2900 for ch in lines) and "•" in lines
        assert "step" in lines and "bigram" in lines
        await pilot.press("x")
        assert chart.by_time and " s" in "".join(ch for ch, _ in chart.rows(80, 16)[-2])

        # the live run joins the chart and grows
        table.move_cursor(row=0)
        await pilot.press("space")
        await wait_until(pilot, lambda: len(chart.curves) == 3, what="three curves")
        for s in range(41, 61):
            rec(StepDone(s, 100, 2.8, 1e-3, 0.5, 1e4, s * 0.1))
        rec.flush()
        await wait_until(pilot, lambda: any(c.steps == 60 for c in chart.curves), what="the live curve")
        rec(Finished(60, "stopped"))
        rec.close()
        await pilot.press("c")
        assert chart.curves == ()

        # every tab has a key
        for key, tab in (("f2", "train"), ("f3", "generate"), ("f8", "classify"), ("f4", "runs")):
            await pilot.press(key)
            assert app.query_one("#tabs", TabbedContent).active == tab


async def test_open_a_run_without_a_checkpoint_says_so(ckpt_dir, tmp_path, monkeypatch):
    db = str(tmp_path / "runs.db")
    monkeypatch.setenv("RNNPLAY_RUNS_DB", db)
    _fill(db, runs=1)
    app = _app(ckpt_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await wait_until(pilot, lambda: _rows(app) == 1, what="the run")
        app.query_one("#runs-table").focus()
        await pilot.press("g")
        await pilot.pause(0.05)
        assert app.query_one("#tabs", TabbedContent).active == "runs"
        assert any("no checkpoint" in n.message for n in app._notifications)


async def test_no_store_yet(ckpt_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("RNNPLAY_RUNS_DB", str(tmp_path / "none.db"))
    app = _app(ckpt_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        hint = app.query_one("#runs-hint")
        await wait_until(pilot, lambda: "no run store" in str(hint.render()), what="the hint")
        assert _rows(app) == 0


def test_runs_tab_two_runs_overlaid(snap_compare, ckpt_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RNNPLAY_RUNS_DB", "runs.db")
    _fill("runs.db")

    async def run_before(pilot):
        app = pilot.app
        await pilot.press("f4")
        await wait_until(pilot, lambda: _rows(app) == 2, what="the runs")
        table = app.query_one("#runs-table", DataTable)
        table.focus()
        await pilot.press("space", "down", "space")
        await wait_until(pilot, lambda: len(app.query_one(RunsChart).curves) == 2, what="two curves")
        quiet(app)
        await pilot.pause(0.1)

    assert snap_compare(_app(ckpt_dir), terminal_size=(110, 34), run_before=run_before)


async def test_a_run_trained_in_the_app_is_recorded_and_listed(ckpt_dir, tmp_path, monkeypatch):
    db = str(tmp_path / "runs.db")
    monkeypatch.setenv("RNNPLAY_RUNS_DB", db)
    factory = FakeFactory(steps=30)
    app = make_app(trainer_factory=factory, checkpoint_dir=ckpt_dir, warm_backend=False, refresh_hz=20)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f5")
        await wait_until(pilot, lambda: app.phase == "idle" and factory.trainers and factory.trainers[0].step == 30,
                         what="the fake run")
        await pilot.press("f4")
        await wait_until(pilot, lambda: _rows(app) == 1, what="the app's run in the table")
        table = app.query_one("#runs-table", DataTable)
        await wait_until(pilot, lambda: table.get_row_at(0)[7] == "completed", what="its status")
    with RunStore.open(db, readonly=True) as store:
        (r,) = store.runs()
        assert r.kind == "app" and r.steps == 30 and len(store.metrics(r.id)) == 30


async def test_f4_gives_the_table_the_keys(ckpt_dir, tmp_path, monkeypatch):
    """F4 from another tab, then space and x act at once (no click or tab needed to focus the table)."""
    db = str(tmp_path / "runs.db")
    monkeypatch.setenv("RNNPLAY_RUNS_DB", db)
    _fill(db)
    app = _app(ckpt_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f3", "f4")
        await wait_until(pilot, lambda: _rows(app) == 2, what="the runs")
        await pilot.press("space", "down", "space")
        chart = app.query_one(RunsChart)
        await wait_until(pilot, lambda: len(chart.curves) == 2, what="two curves")
        await pilot.press("x")
        assert chart.by_time
