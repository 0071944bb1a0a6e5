"""The Classify tab: the seed's synthetic experiment live, then what its hidden states do.

The experiment (rnnplay.classify) runs in a thread worker; each finished epoch travels as a
latest-state message carrying all epochs so far. When it ends, the tab shows, for a chosen test
sequence, the running mean of the input, the model's P(positive) step by step, and the
last-layer units that track the running mean best, as fixed-scale strips.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.validation import Integer
from textual.widgets import Button, Input, Label, Static

from rnnplay.errors import UserError
from rnnplay.training.events import EpochDone
from rnnplay.tui.messages import ClassifyFinished, ClassifyProgress
from rnnplay.tui.widgets import BLOCKS, fmt_duration, resample, theme_color

N_SEQUENCES = 8


def strip(values, lo: float, hi: float, width: int) -> str:
    """Block characters for ``values`` on a fixed scale lo..hi, stretched to ``width``."""
    vals = resample(list(values), width) if width else list(values)
    span = (hi - lo) or 1.0
    return "".join(BLOCKS[min(7, max(0, int((v - lo) / span * 8)))] for v in vals)


def curve_lines(eps, width: int, loss_color: str, acc_color: str) -> Text:
    """The loss and test-accuracy sparklines of the epochs so far, one line each in a box ``width``
    cells wide (a label, the bars, the latest value); cropped, never wrapped, where it is narrower."""
    rows = (("loss       ", [x.train_loss for x in eps], None, loss_color),
            ("test acc   ", [x.test_accuracy for x in eps], (0.5, 1.0), acc_color))
    curves = Text(no_wrap=True, overflow="crop")
    for i, (label, values, scale, color) in enumerate(rows):
        note = f" {values[-1]:.3f}"
        bars = max(1, min(width - len(label) - len(note), len(values) * 2))
        lo, hi = scale or (min(values), max(values))
        curves.append(("\n" if i else "") + label, style="dim")
        curves.append(strip(values, lo, hi, bars), style=color)
        curves.append(note)
    return curves


class ClassifyPane(Vertical):
    """Everything inside the Classify tab."""

    def __init__(self, runner, *, device: str = "auto", **kwargs) -> None:
        super().__init__(**kwargs)
        self.runner = runner
        self.device = device
        self.running = False
        self._stop = threading.Event()
        self._epochs: tuple[EpochDone, ...] = ()
        self.inspection: Any = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="cls-body"):
            with VerticalScroll(id="cls-form", classes="side"):
                yield Label("the seed's experiment", classes="section")
                yield Static("5,000 Gaussian sequences of 20 steps × 10 features; the label says "
                             "whether their mean is positive. RNN: 2 layers × 64, dropout 0.2, "
                             "Adam 1e-3 halved every 20 epochs.", id="cls-about", classes="hint")
                with Grid(id="cls-params"):
                    yield Label("epochs", classes="field-label")
                    yield Input("", type="integer", placeholder="60", compact=True, id="cls-epochs",
                                valid_empty=True, validators=[Integer(minimum=1, maximum=10_000)])
                    yield Label("seed", classes="field-label")
                    yield Input("0", type="integer", compact=True, id="cls-seed",
                                validators=[Integer(minimum=0, maximum=2**31 - 1)])
                yield Button("Run  F7", id="cls-run", compact=True, variant="primary")
                yield Label("progress", classes="section")
                yield Static("F7 runs the experiment", id="cls-stats")
            with VerticalScroll(id="cls-live"):
                yield Static("", id="cls-curves")
                with Horizontal(id="cls-pick"):
                    yield Label("test sequence ", classes="field-label")
                    yield Input("0", type="integer", compact=True, id="cls-seq",
                                validators=[Integer(minimum=0, maximum=N_SEQUENCES - 1)])
                    yield Label(f" of 0–{N_SEQUENCES - 1}", classes="field-label")
                yield Static("the hidden-state view appears when a run finishes", id="cls-inspect")

    # ---- running ---------------------------------------------------------------------------

    def options(self) -> dict | str:
        try:
            epochs = self.query_one("#cls-epochs", Input).value.strip()
            seed = self.query_one("#cls-seed", Input).value.strip() or "0"
            return {"epochs": int(epochs) if epochs else None, "seed": int(seed),
                    "n_sequences": N_SEQUENCES}
        except ValueError:
            return "epochs and seed must be whole numbers"

    @on(Button.Pressed, "#cls-run")
    def run_or_stop(self) -> None:
        """F7 and the Run button: start the experiment, or stop it; or say why it cannot start."""
        error = self.toggle(self.device)
        if error:
            self.notify(error, severity="warning")

    def toggle(self, device: str) -> str | None:
        """Start the experiment, or stop it when running. Returns an error message, if any."""
        if self.running:
            self._stop.set()
            self.query_one("#cls-stats", Static).update("stopping after this batch…")
            return None
        opts = self.options()
        if isinstance(opts, str):
            return opts
        opts["device"] = device
        self.running, self._epochs, self.inspection = True, (), None
        self._stop = threading.Event()
        self.query_one("#cls-run", Button).label = "Stop  F7"
        self.query_one("#cls-stats", Static).update("drawing the data set…")
        self._run(opts, self._stop)
        return None

    def on_unmount(self) -> None:
        self._stop.set()

    def stop_now(self) -> None:
        """Ask a running experiment to stop (safe from any thread)."""
        self._stop.set()

    @work(thread=True, exclusive=True, group="classify", exit_on_error=False)
    def _run(self, opts: dict, stop: threading.Event) -> None:
        epochs: list[EpochDone] = []

        def emit(event: Any) -> None:
            if isinstance(event, EpochDone):
                epochs.append(event)
                self.post_message(ClassifyProgress(tuple(epochs)))

        try:
            result, inspection = self.runner(opts, emit, stop)
        except UserError as exc:
            self.post_message(ClassifyFinished(None, None, error=str(exc)))
            return
        except Exception as exc:
            self.log.error(traceback.format_exc())
            self.post_message(ClassifyFinished(None, None, error=f"{type(exc).__name__}: {exc}"))
            return
        reason = getattr(result, "reason", "completed")
        error = getattr(result, "message", "") if reason == "failed" else None
        self.post_message(ClassifyFinished(result, inspection, error=error or None, stopped=reason == "stopped"))

    def on_classify_progress(self, msg: ClassifyProgress) -> None:
        self._epochs = msg.epochs
        self._show_progress()

    def on_classify_finished(self, msg: ClassifyFinished) -> None:
        self.running = False
        self.query_one("#cls-run", Button).label = "Run  F7"
        if msg.error:
            self.query_one("#cls-stats", Static).update(Text(f"failed: {msg.error}", style=f"bold {theme_color(self, 'error')}"))
            self.app.notify(msg.error, title="classifier", severity="error")
            return
        self.inspection = msg.inspection
        self._show_progress(done="stopped" if msg.stopped else "finished")
        self.show_inspection()

    def _show_progress(self, done: str | None = None) -> None:
        eps = self._epochs
        if not eps:
            return
        e = eps[-1]
        per_epoch = sum(x.epoch_s for x in eps) / len(eps) if getattr(e, "epoch_s", 0) else None
        left = per_epoch * (e.total_epochs - e.epoch) if per_epoch else None
        t = Text()
        for k, v in (("epoch", f"{e.epoch}/{e.total_epochs}" + (f" · {done}" if done else "")),
                     ("loss", f"{e.train_loss:.4f}"), ("train", f"{e.train_accuracy:.3f}"),
                     ("test", f"{e.test_accuracy:.3f}"), ("lr", f"{e.lr:.1e}"),
                     ("ETA", fmt_duration(left) if not done else "—")):
            t.append(f"{k:<6}", style="dim")
            t.append(v + "\n")
        t.rstrip()
        self.query_one("#cls-stats", Static).update(t)
        curves = curve_lines(eps, self.query_one("#cls-curves").size.width,
                             theme_color(self, "primary"), theme_color(self, "success"))
        self.query_one("#cls-curves", Static).update(curves)

    # ---- inspection ------------------------------------------------------------------------

    @on(Input.Changed, "#cls-seq")
    def _pick(self) -> None:
        self.show_inspection()

    def show_inspection(self) -> None:
        ins = self.inspection
        box = self.query_one("#cls-inspect", Static)
        if ins is None or not ins.sequences:
            return
        try:
            i = min(len(ins.sequences) - 1, max(0, int(self.query_one("#cls-seq", Input).value or 0)))
        except ValueError:
            i = 0
        seq = ins.sequences[i]
        w = ins.seq_len * 2 if box.size.width >= ins.seq_len * 2 + 24 else ins.seq_len
        rm = seq.running_mean
        span = max(abs(v) for v in rm) or 1.0
        t = Text()
        verdict = "right" if seq.predicted == seq.label else "wrong"
        t.append(f"sequence {seq.index}: label {seq.label}, predicted {seq.predicted} ({verdict})\n",
                 style="bold")
        t.append("running mean   ", style="dim")
        t.append(strip(rm, -span, span, w), style=theme_color(self, "warning"))
        t.append(f" {rm[-1]:+.3f}\n")
        t.append("P(positive)    ", style="dim")
        t.append(strip(seq.prob_class1, 0.0, 1.0, w), style=theme_color(self, "success"))
        t.append(f" {seq.prob_class1[-1]:.2f}\n")
        t.append("\nunits that track the running mean (r over all test steps):\n", style="dim")
        for unit, r in ins.top_units[:5]:
            t.append(f"unit {unit:<3} r {r:+.2f} ", style="dim")
            t.append(strip(seq.hidden[unit], -1.0, 1.0, w),
                     style=theme_color(self, "error" if r > 0 else "primary"))
            t.append("\n")
        acc = ins.accuracy_by_step
        t.append("\naccuracy if the sequence ended at step t:\n", style="dim")
        t.append("               ")
        t.append(strip(acc, 0.5, 1.0, w), style=theme_color(self, "success"))
        t.append(f" {acc[0]:.2f} → {acc[-1]:.2f}")
        box.update(t)
