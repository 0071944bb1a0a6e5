"""The Train tab: corpus and hyperparameters on the left, the run's live state on the right.

The pane drives the :class:`~rnnplay.tui.controller.TrainingSession` it is given: its own buttons
and the app's keys (F5, F6, ctrl+s) call :meth:`TrainPane.primary`, :meth:`TrainPane.stop` and
:meth:`TrainPane.save`; the session's events come back through :meth:`TrainPane.session_changed`.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Input, Label, Select, Static

from rnnplay.config import FORM_SETTINGS, TrainConfig
from rnnplay.tui.backend import TrainSettings, check_corpus_path, corpus_description
from rnnplay.tui.controller import PhaseChanged, RunReady, RunStopped, SaveFailed, Saved, TrainingSession
from rnnplay.tui.metrics import Snapshot
from rnnplay.tui.canvas import BlankColumn, BlankRow, TextRows
from rnnplay.tui.spark import Spark
from rnnplay.tui.widgets import TANH_TITLE, HiddenStrips, LossCurve, fmt_duration, fmt_rate, fmt_value

CURVE_EVERY_S = 1.0  # the loss curve redraws at most this often while training (the rest at --refresh-hz)

FORM = FORM_SETTINGS  # the declared settings the form shows, in declaration order (rnnplay.config)
DEVICES_BEFORE_TORCH = ("auto", "cpu")  # the device chooser until torch has loaded and counted the GPUs


def is_choice(spec) -> bool:
    """A setting the form offers as a chooser (declared choices, or the devices) rather than typed."""
    return bool(spec.choices) or spec.name == "device"


def _choice_field(spec, options) -> Select:
    """Blank means the default, as an empty Input does; its prompt shows the declared default."""
    default = getattr(TrainConfig(), spec.name)
    return Select([(o, o) for o in options], prompt=spec.show(default), allow_blank=True, compact=True,
                  id=f"hp-{spec.name}")


def form_value(widget) -> str:
    """A form field's text: an Input's value, a chooser's choice ("" when left at the default)."""
    if isinstance(widget, Select):
        return "" if widget.is_blank() else str(widget.value)
    return widget.value.strip()


class _Valid(Validator):
    """The form's inline check: the declared setting's own parser and bounds."""

    def __init__(self, spec) -> None:
        super().__init__()
        self.spec = spec

    def validate(self, value: str) -> ValidationResult:
        try:
            self.spec.parse(value)
        except ValueError as exc:
            return self.failure(str(exc))
        return self.success()


class TrainPane(Vertical):
    """Everything inside the Train tab."""

    BLANK = True  # plain background under its children (see canvas.BlankRow)

    def __init__(self, session: TrainingSession, corpora: list[tuple[str, str]], default_corpus: str, *,
                 device: str = "auto", checkpoint_dir: str = "checkpoints", **kwargs) -> None:
        super().__init__(**kwargs)
        self.session = session
        self.device, self.checkpoint_dir = device, checkpoint_dir
        self.note = ""  # what the status line says about the run ("saved step 40", "paused: ...")
        self.resume_path: str | None = None  # an opened checkpoint that F5 continues
        self._corpora = corpora
        self._default_corpus = default_corpus
        self._curve_t = 0.0
        self._sample_shown: tuple[int, str] | None = None

    def compose(self) -> ComposeResult:
        with BlankRow(id="train-body"):
            with VerticalScroll(id="train-form", classes="side"):
                yield Label("corpus", classes="section")
                yield Select(self._corpora, value=self._default_corpus, allow_blank=False,
                             compact=True, id="corpus")
                yield Static(corpus_description(self._default_corpus), id="corpus-about", classes="hint")
                yield Input(placeholder="or type a path to a text file or folder", compact=True,
                            id="corpus-path")
                yield Static("", id="corpus-error", classes="field-error")
                yield Static("", id="resume-note", classes="note")
                yield Label("model and training", classes="section")
                with Grid(id="hparams"):
                    for spec in FORM:
                        yield Label(spec.form, classes="field-label")
                        if is_choice(spec):
                            yield _choice_field(spec, spec.choices or DEVICES_BEFORE_TORCH)
                        else:
                            yield Input(type="integer" if spec.kind is int else "number",
                                        validators=[_Valid(spec)], valid_empty=True, compact=True,
                                        id=f"hp-{spec.name}", placeholder="default")
                with Horizontal(id="train-buttons"):
                    yield Button("▶ Train", id="start", compact=True, variant="primary")
                    yield Button("■ Stop", id="stop", compact=True)
                yield Label("run", classes="section")
                yield Static("F5 trains the chosen corpus with these settings; empty fields take "
                             "the defaults.", id="run-info", classes="hint")
            with BlankColumn(id="train-live"):
                yield TextRows(id="run-stats")
                yield Spark(label="loss ", note_width=8, id="loss-spark")
                yield LossCurve(id="loss-curve")
                yield Label(TANH_TITLE, classes="section", id="hidden-title")
                yield HiddenStrips(rows_per_layer=1, id="hidden")
                yield Static("", id="sample", classes="sample")

    def on_mount(self) -> None:
        self.query_one("#run-stats", TextRows).set_lines([[("step 0", False)]])
        self.query_one("#loss-curve").border_title = "loss · train ⠒ val • references ╌"
        self.query_one("#sample").border_title = "sample"
        self.set_buttons(self.session.phase)

    def on_unmount(self) -> None:
        """The app is closing, whatever the path (a test, an error): no training thread outlives it."""
        self.session.request_stop("quit")

    # ---- the run: buttons and keys ----------------------------------------------------------------

    @on(Button.Pressed, "#start")
    def primary(self) -> None:
        """F5 and the ▶ button: train the form's settings, pause, or resume, by the phase."""
        phase = self.session.phase
        if phase in ("starting", "stopping"):
            self.notify("one moment: the run is " + phase, timeout=3)
            return
        self.session.toggle(self._settings_to_start)

    def _settings_to_start(self) -> TrainSettings | None:
        settings = self.read_settings(self.device, self.checkpoint_dir)
        if isinstance(settings, str):
            self.notify(settings, severity="error", title="cannot start")
            return None
        if self.resume_path:
            settings = dataclasses.replace(settings, resume=self.resume_path)
        self.show_corpus_error("")
        self.note = "reading the corpus…"
        return settings

    @on(Button.Pressed, "#stop")
    def stop(self) -> None:
        """F6 and the ■ button: stop after the step in flight and save (a paused run: at once)."""
        was_paused = self.session.phase == "paused"
        if self.session.stop() and was_paused:
            self.note = "stopped"

    def save(self) -> None:
        """ctrl+s: save the current weights now."""
        if not self.session.save("manual"):
            self.notify("nothing to save yet: start training with F5", timeout=4)

    def offer_resume(self, path: str, step: int) -> bool:
        """An opened checkpoint: F5 continues its run while nothing trains. True when offered."""
        if self.session.phase != "idle":
            return False
        self.resume_path = path
        self.set_resume(f"F5 resumes {Path(path).name} (step {step})")
        return True

    @on(Select.Changed, "#corpus")
    def _new_run_chosen(self) -> None:
        if self.resume_path:  # choosing a corpus means a new run, not the opened checkpoint
            self.resume_path = None
            self.set_resume(None)

    # ---- the session's events -----------------------------------------------------------------

    def session_changed(self, event: Any) -> None:
        """Show one event of the session (called by the app, on the UI thread)."""
        if isinstance(event, PhaseChanged):
            self._phase_changed(event)
        elif isinstance(event, RunReady):
            self.set_run_info(f"{event.description}\nsaves to {Path(event.checkpoint_path).name}")
            self.note = ""
        elif isinstance(event, RunStopped):
            self._stopped(event)
        elif isinstance(event, Saved):
            if event.reason in ("manual", "stopped", "finished", "diverged"):
                self._note_saved(event.path, event.step)
        elif isinstance(event, SaveFailed):
            self.notify(event.error, title="save failed", severity="error", timeout=12)

    def _phase_changed(self, event: PhaseChanged) -> None:
        phase = event.phase
        self.set_buttons(phase)
        self.set_form_enabled(phase == "idle")
        if phase == "stopping":
            self.note = {"pause": "pausing after this step…", "quit": "saving and quitting…"}.get(
                event.intent, "stopping after this step, then saving…")
        elif phase == "running":
            self.note = ""
            if self.resume_path:  # the opened checkpoint's run is going again
                self.resume_path = None
                self.set_resume(None)

    def _stopped(self, msg: RunStopped) -> None:
        saved = self.session.saved_step == msg.step
        if msg.checkpoint:
            self._note_saved(msg.checkpoint, msg.step)
        if msg.error:
            if msg.build_error:
                self.show_corpus_error(msg.error)
            self.notify(msg.error, title="training stopped", severity="error", timeout=12)
            self.note = "failed: " + msg.error.split(";")[0][:60]
        elif msg.reason == "completed":
            self.note = "finished" + (f", saved step {msg.step}" if saved else "")
            self.notify(f"training finished at step {msg.step}", timeout=5)
        elif msg.reason == "paused":
            self.note = "paused: F5 resumes, F6 stops"
        elif saved:
            self.note = f"{msg.reason}, saved step {msg.step}"
        else:
            self.note = msg.reason

    def _note_saved(self, path: str, step: int) -> None:
        self.notify(f"{path} (step {step})", title="checkpoint saved", timeout=4)
        self.set_run_info(f"{self.session.description}\nsaved step {step} to {Path(path).name}")
        self.note = f"saved step {step}"

    def on_resize(self) -> None:
        """Taller terminals show more units per layer and a longer sample."""
        h = self.size.height
        strips = self.query_one("#hidden", HiddenStrips)
        rows = 1 if h < 28 else 2 if h < 36 else 3
        if strips.rows_per_layer != rows:
            strips.rows_per_layer = rows
            strips.data_changed(layout=True)
        self.query_one("#sample").styles.height = 5 if h < 24 else 7 if h < 34 else 10

    # ---- the form ------------------------------------------------------------------------------

    def set_defaults(self, defaults: dict) -> None:
        """Show the pipeline's defaults as placeholders (empty field = default)."""
        for spec in FORM:
            if defaults.get(spec.name) is not None and not is_choice(spec):
                self.query_one(f"#hp-{spec.name}", Input).placeholder = spec.show(defaults[spec.name])

    def prefill(self, values: dict) -> None:
        """Fill the form from the command line's flags (``rnnplay --hidden 512 --cell lstm``)."""
        for key, value in values.items():
            text = f"{value:g}" if isinstance(value, float) else str(value)
            if key == "device":  # listed before torch has counted the GPUs
                self.set_devices((*DEVICES_BEFORE_TORCH, text))
            self.query_one(f"#hp-{key}").value = text

    def set_devices(self, devices: tuple[str, ...]) -> None:
        """The device chooser lists what torch found (auto, cpu, each cuda:N, mps); a choice already made
        stays, listed or not (resolving it says what is wrong when F5 starts)."""
        select = self.query_one("#hp-device", Select)
        chosen = form_value(select)
        select.set_options([(d, d) for d in dict.fromkeys([*devices, *([chosen] if chosen else [])])])
        if chosen:
            select.value = chosen

    @on(Select.Changed, "#corpus")
    def _describe(self, event: Select.Changed) -> None:
        self.query_one("#corpus-about", Static).update(corpus_description(str(event.value)))

    @on(Input.Changed, "#corpus-path")
    def _check_path(self, event: Input.Changed) -> None:
        self.show_corpus_error(check_corpus_path(event.value) or "")

    def set_run_info(self, text: str) -> None:
        self.query_one("#run-info", Static).update(text)

    def set_resume(self, note: str | None) -> None:
        widget = self.query_one("#resume-note", Static)
        widget.update(note or "")
        widget.display = bool(note)

    def show_corpus_error(self, message: str) -> None:
        err = self.query_one("#corpus-error", Static)
        err.update(message)
        err.display = bool(message)

    def read_settings(self, device: str, checkpoint_dir: str) -> TrainSettings | str:
        """The form as TrainSettings, or an error message naming the first bad field."""
        path = self.query_one("#corpus-path", Input).value.strip()
        if path:
            problem = check_corpus_path(path)
            if problem:
                self.show_corpus_error(problem)
                self.query_one("#corpus-path", Input).focus()
                return f"corpus: {problem}"
        corpus = path or str(self.query_one("#corpus", Select).value)
        values: dict = {}
        for spec in FORM:
            field = self.query_one(f"#hp-{spec.name}")
            text = form_value(field)
            if not text:
                continue
            try:
                values[spec.name] = spec.parse(text)
            except ValueError as exc:
                field.focus()
                return f"{spec.form}: {exc}; or leave it empty for the default"
        device = values.pop("device", device)  # the form's choice, else the app's --device
        return TrainSettings(corpus=corpus, values=values, device=device, checkpoint_dir=checkpoint_dir)

    def set_form_enabled(self, enabled: bool) -> None:
        for widget in self.query("#train-form Input, #train-form Select"):
            widget.disabled = not enabled

    def set_buttons(self, phase: str) -> None:
        start = self.query_one("#start", Button)
        start.label = {"running": "⏸ Pause", "paused": "▶ Resume"}.get(phase, "▶ Train")
        start.disabled = phase in ("starting", "stopping")
        self.query_one("#stop", Button).disabled = phase not in ("running", "paused")

    # ---- the live side -------------------------------------------------------------------------

    def _gpu_line(self, device: str) -> str:
        """Memory and utilization of the run's GPU (rnnplay.gpu), read at most once a second; "" off CUDA."""
        if not device.startswith("cuda"):
            return ""
        now = time.monotonic()
        cached = getattr(self, "_gpu_cache", None)
        if cached is None or now - cached[0] >= 1.0 or cached[1] != device:
            from rnnplay.gpu import gpu_line

            self._gpu_cache = cached = (now, device, gpu_line(device))
        return cached[2]

    def show(self, snap: Snapshot, phase: str, force: bool = False) -> None:
        eta = None
        if snap.steps_per_s and snap.total_steps > snap.step and phase == "running":
            eta = (snap.total_steps - snap.step) / snap.steps_per_s
        best = f"{snap.best_val:.3f}" if snap.best_val is not None else "—"
        lines = []
        for row in (
            (("step ", f"{snap.step}/{snap.total_steps}" if snap.total_steps else f"{snap.step}", 16),
             ("loss ", fmt_value(snap.loss), 11),
             ("val exact ", fmt_value(snap.val_exact), 0) if snap.val_exact is not None  # the whole split, at the end
             else ("val ", fmt_value(snap.val_loss), 0)),  # the periodic estimate
            (("", f"{fmt_rate(snap.chars_per_s)} chars/s", 16),
             ("time ", fmt_duration(snap.elapsed_s), 11), ("ETA ", fmt_duration(eta), 0)),
            (("lr ", "—" if snap.lr is None else f"{snap.lr:.1e}", 16),
             ("grad ", fmt_value(snap.grad_norm, 2), 11), ("best ", best, 0)),
        ):
            line = []
            for key, value, width in row:
                line += [(key, True), (value + " " * max(2, width - len(key) - len(value)) if width else value, False)]
            lines.append(line)
        gpu = self._gpu_line(snap.device)  # "" off CUDA: the CPU view is unchanged
        if gpu:
            lines.append([("gpu ", True), (gpu, False)])
        stats = self.query_one("#run-stats", TextRows)
        if len(lines) != getattr(self, "_stats_rows", 3):  # a GPU row: one more line (CSS gives 3)
            self._stats_rows = len(lines)
            stats.styles.height = len(lines)
        stats.set_lines(lines)  # unchanged text: no redraw at all
        self.query_one("#loss-spark", Spark).set_data(snap.recent, f" {fmt_value(snap.loss)}")
        now = time.monotonic()
        if force or now - self._curve_t >= CURVE_EVERY_S or phase != "running":  # a history view: 1 Hz is plenty
            self._curve_t = now
            self.query_one("#loss-curve", LossCurve).set_data(snap.history, snap.val, snap.references)
        self._show_hidden(snap)
        sample = self.query_one("#sample", Static)
        if snap.sample_step is not None and (snap.sample_step, snap.sample) != self._sample_shown:
            # only when it changed: setting a border title redraws the whole box
            sample.border_title = f"sample from the live weights · step {snap.sample_step}"
            self._sample_shown = (snap.sample_step, snap.sample)
            sample.update(Text(snap.sample.replace("\t", "    "), no_wrap=False), layout=False)  # fixed height

    def _show_hidden(self, snap: Snapshot) -> None:
        """The strips, and the label naming what they show for this run's cell (h; the LSTM's c below)."""
        strips = self.query_one("#hidden", HiddenStrips)
        hs = snap.hidden
        if hs is None:
            strips.set_data(snap.units, snap.saturation)
        else:
            strips.set_data(hs.units, hs.saturation, state_names=hs.state_names, more_units=hs.more_units,
                            gate_names=hs.gate_names, gate_saturation=hs.gate_saturation)
        title = strips.title
        if title != getattr(self, "_hidden_title", TANH_TITLE):
            self._hidden_title = title
            self.query_one("#hidden-title", Label).update(title)
