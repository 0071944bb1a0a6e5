"""The Train tab's GPU row: absent on the CPU, memory and utilization while training on CUDA."""

from __future__ import annotations

from rnnplay.tui.app import make_app
from rnnplay.tui.canvas import TextRows
from rnnplay.tui.metrics import Snapshot
from rnnplay.tui.train_tab import TrainPane


async def test_no_gpu_row_on_the_cpu(ckpt_dir):
    app = make_app(checkpoint_dir=ckpt_dir, warm_backend=False)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one("#train-pane", TrainPane)
        stats = app.query_one("#run-stats", TextRows)
        pane.show(Snapshot(version=1, step=3, total_steps=10, device="cpu"), "running", force=True)
        assert "gpu" not in stats.plain and len(stats.plain.splitlines()) == 3


async def test_gpu_row_on_cuda(ckpt_dir, monkeypatch):
    import rnnplay.gpu

    monkeypatch.setattr(rnnplay.gpu, "gpu_line", lambda device: f"mem 1.5 GB (reserved 2.0) of 80.0 GB · util 93% [{device}]")
    app = make_app(checkpoint_dir=ckpt_dir, warm_backend=False)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one("#train-pane", TrainPane)
        stats = app.query_one("#run-stats", TextRows)
        # read at once: the app's own refresh timer redraws the stats from its (CPU, idle) buffer later
        pane.show(Snapshot(version=1, step=3, total_steps=10, device="cuda:1"), "running", force=True)
        lines = stats.plain.splitlines()
        assert len(lines) == 4 and lines[3].startswith("gpu mem 1.5 GB") and "util 93% [cuda:1]" in lines[3]
        assert stats.styles.height.value == 4  # room for the row (the stylesheet gives 3)
        pane.show(Snapshot(version=2, step=4, total_steps=10, device="cpu"), "running", force=True)
        assert len(stats.plain.splitlines()) == 3 and stats.styles.height.value == 3
