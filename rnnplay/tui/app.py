"""The rnnplay terminal app: three tabs, global keys, the training session, clean exits.

``make_app(...)`` builds it for the CLI and the tests alike; the trainer factory and the
classifier runner are injectable so tests drive the app with fast fakes. Nothing here imports
torch: the training stack loads in a thread after the first frame.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterable
from pathlib import Path

from rich.text import Text
from textual import events, on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Select, Static, TabbedContent, TabPane, Tabs

from rnnplay.tui import backend, heap
from rnnplay.tui.classify_tab import ClassifyPane
from rnnplay.tui.controller import TrainingSession
from rnnplay.tui.crash import Crash, record_crash
from rnnplay.tui.generate_tab import GeneratePane
from rnnplay.tui.messages import BackendLoaded, CheckpointLoaded
from rnnplay.tui.screens import HelpScreen, OpenCheckpointScreen
from rnnplay.tui.signals import guard_sigcont
from rnnplay.tui.train_tab import TrainPane
from rnnplay.tui.training_actions import TrainingActions

PHASE_GLYPH = {"idle": "○", "starting": "◔", "running": "●", "stopping": "◑", "paused": "◌"}


class RnnPlayApp(TrainingActions, App[int]):
    """See the module docstring. ``phase``: idle, starting, running, stopping or paused."""

    CSS_PATH = "rnnplay.tcss"
    TITLE = "rnnplay"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("f5", "start_training", "Train", priority=True, id="train"),
        Binding("f5", "pause_training", "Pause", priority=True, id="pause"),
        Binding("f5", "resume_training", "Resume", priority=True, id="resume"),
        Binding("f6", "stop_training", "Stop", priority=True, id="stop"),
        Binding("f9", "generate", "Generate", priority=True, id="generate"),
        Binding("f7", "classify", "Classify", priority=True, show=False, id="classify"),  # on its tab's button
        Binding("ctrl+s", "save", "Save", priority=True, id="save"),
        Binding("ctrl+o", "open_checkpoint", "Open", priority=True, id="open"),
        Binding("f1", "help", "Help", priority=True, id="help"),
        Binding("question_mark", "help", "Help", show=False),
        Binding("left_square_bracket", "temperature(-0.1)", "Temp−", show=False),
        Binding("right_square_bracket", "temperature(0.1)", "Temp+", show=False),
        Binding("ctrl+r", "random_seed", "Random seed", priority=True, show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit"),
        Binding("ctrl+c", "quit", "Quit", priority=True, show=False),
    ]

    phase: reactive[str] = reactive("idle", init=False)

    def __init__(self, *, trainer_factory=None, classifier_runner=None, refresh_hz: float = 4.0,
                 checkpoint_dir: str = "checkpoints", device: str = "auto", corpus: str | None = None,
                 open_checkpoint: str | None = None, torch_threads: int | None = None,
                 warm_backend: bool = True, prefill: dict | None = None) -> None:
        super().__init__()
        self.refresh_hz = max(0.2, float(refresh_hz))
        self.checkpoint_dir = checkpoint_dir
        self.device = device
        self.initial_corpus = corpus
        self.open_checkpoint_at_start = open_checkpoint
        self.warm_backend = warm_backend
        self.prefill = dict(prefill or {})
        self.session = TrainingSession(self, trainer_factory or backend.default_trainer_factory, torch_threads)
        self.classifier_runner = classifier_runner or backend.default_classifier_runner
        self.resume_path: str | None = None
        self.exit_code = 0
        self._quitting = False
        self._status_note = ""
        self.gc_pacer = heap.HeapPacer()
        self.crash: Crash | None = None  # an unexpected error ended the app (see _handle_exception)
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            # No animations unless asked for: they redraw at 60 Hz past --refresh-hz (costly over
            # SSH) and take the UI thread from key presses while training shares its cores.
            self.animation_level = "none"

    # ---- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        corpora, default = backend.corpus_choices()
        if self.initial_corpus in [v for _, v in corpora]:
            default = self.initial_corpus  # a bundled name; a path goes into the path field
        with TabbedContent(initial="train", id="tabs"):
            with TabPane("Train", id="train"):
                yield TrainPane(corpora, default, id="train-pane")
            with TabPane("Generate", id="generate"):
                yield GeneratePane(id="generate-pane")
            with TabPane("Classify", id="classify"):
                yield ClassifyPane(self.classifier_runner, id="classify-pane")
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        if self.initial_corpus and self.initial_corpus not in [v for _, v in backend.corpus_choices()[0]]:
            self.query_one("#corpus-path", Input).value = self.initial_corpus
        for key, value in self.prefill.items():
            self.query_one(f"#hp-{key}", Input).value = f"{value:g}" if isinstance(value, float) else str(value)
        # the tab bar and the panes never change: found once, not by a query per key press
        self._tabs = self.query_one("#tabs", TabbedContent)
        self._tab_bar = self._tabs.query_one(Tabs)
        self._pane_ids = [pane.id for pane in self._tabs.query(TabPane)]
        self.set_interval(1.0 / self.refresh_hz, self._tick, name="refresh")
        self.set_interval(heap.PERIOD_S, self.gc_pacer.tick, name="gc")
        self._update_status()
        self.query_one(TrainPane).set_buttons(self.phase)
        try:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGHUP, self._on_hangup)
            loop.add_signal_handler(signal.SIGTERM, self._on_terminate)
            guard_sigcont(lambda: loop.call_soon_threadsafe(self.refresh))  # kill -STOP / -CONT: redraw only
        except (NotImplementedError, RuntimeError, AttributeError, ValueError):
            pass  # no signals here (Windows, or not the main thread as in some test runners)
        if self.warm_backend:
            # once the first frame is drawn (not on a fixed timer that a slow start can outrun):
            # importing torch in a thread still holds the GIL much of the time
            self.call_after_refresh(self.set_timer, 0.1, lambda: self.run_worker(
                self._warm, thread=True, group="warm", exit_on_error=False))
        if self.open_checkpoint_at_start:
            self._load_checkpoint(self.open_checkpoint_at_start)

    def _warm(self) -> None:
        """Import torch and the pipeline after the first frame, so F5 starts at once."""
        try:
            defaults = backend.load_backend()
        except Exception as exc:
            self.post_message(BackendLoaded({}, error=f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(BackendLoaded(defaults))

    def on_backend_loaded(self, msg: BackendLoaded) -> None:
        if msg.error:
            self.notify(f"the training stack failed to load: {msg.error}", severity="error", timeout=15)
        else:
            self.query_one(TrainPane).set_defaults(msg.defaults)
        self.gc_pacer.settle()

    async def on_event(self, event: events.Event) -> None:
        """Left / right on the tab bar switch tabs in one frame (see :meth:`_switch_tab`)."""
        if (isinstance(event, events.Key) and not event.is_forwarded and event.key in ("left", "right")
                and isinstance(self.focused, Tabs) and self._switch_tab(1 if event.key == "right" else -1)):
            event.stop()
            return
        await super().on_event(event)

    def _switch_tab(self, step: int) -> bool:
        """Textual's tab bar changes its header first and the pane after a message hop, so a switch
        took two frames (the second up to two frame periods later); setting ``TabbedContent.active``
        changes both at once. Same order and wrap-around as the tab bar's own keys."""
        tabs = self._tabs
        if self.focused is not self._tab_bar:
            return False
        ids = self._pane_ids
        if tabs.active not in ids:
            return False
        tabs.active = ids[(ids.index(tabs.active) + step) % len(ids)]
        return True

    def on_unmount(self) -> None:
        self.gc_pacer.release()

    def _handle_exception(self, error: Exception) -> None:
        """An unexpected error (a bug) anywhere in the UI. Textual's own handling prints a long
        traceback over the user's shell when the app closes and leaves the exit code to us (it was
        0). Here the traceback goes to a log file (rnnplay.tui.crash), the run is asked to stop
        (the training thread saves it on the way out), and the app closes drawing nothing more;
        the command then prints one line and exits with 1 (rnnplay.commands.tui). Textual 8.2.8
        routes every unhandled error here (message handlers, timers, rendering, compose);
        tests/tui/test_crash.py checks that it still does."""
        if self.crash is None:
            self.crash = record_crash(error)
            self.session.request_stop("quit")
            try:
                self.query_one(ClassifyPane).stop_now()
            except Exception:  # the DOM is gone or not built yet
                pass
        super()._handle_exception(error)  # closes the app; under Pilot, run_test re-raises the error
        self._exit_renderables.clear()  # the one line replaces Textual's traceback

    # ---- the refresh timer --------------------------------------------------------------------

    def _tick(self, force: bool = False) -> None:
        snap = self.session.metrics.snapshot(force=force)
        if snap is None:
            return
        self.query_one(TrainPane).show(snap, self.phase, force=force)

    def _update_status(self) -> None:
        text = Text()
        text.append(f" {PHASE_GLYPH.get(self.phase, '·')} {self.phase}", style="bold")
        if self.session.description:
            text.append(f"  · {self.session.description}", style="dim")
        if self._status_note:
            text.append(f"  · {self._status_note}", style="dim")
        self.query_one("#status", Static).update(text, layout=False)

    def watch_phase(self, phase: str) -> None:
        self.query_one(TrainPane).set_buttons(phase)
        self.query_one(TrainPane).set_form_enabled(phase in ("idle",))
        self._update_status()
        self.refresh_bindings()

    # ---- actions: training --------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        phase = self.phase
        if action == "start_training":
            return phase in ("idle", "starting", "stopping")
        if action == "pause_training":
            return phase == "running"
        if action == "resume_training":
            return phase == "paused"
        if action == "stop_training":
            return True if phase in ("running", "paused") else None
        if action in ("temperature", "random_seed"):
            return self._active_tab() == "generate"
        return True

    def _active_tab(self) -> str:
        try:
            return self.query_one("#tabs", TabbedContent).active
        except Exception:  # before compose
            return "train"

    # ---- actions: generate, classify, checkpoints, help ---------------------------------------

    def action_generate(self) -> None:
        self.query_one("#tabs", TabbedContent).active = "generate"
        error = self.query_one(GeneratePane).start()
        if error:
            self.notify(error, severity="warning", timeout=5)

    def action_temperature(self, delta: float) -> None:
        self.query_one(GeneratePane).nudge_temperature(float(delta))

    def action_random_seed(self) -> None:
        self.query_one(GeneratePane).random_seed()

    def action_classify(self) -> None:
        self.query_one("#tabs", TabbedContent).active = "classify"
        device = self.device if self.device != "auto" else "auto"
        error = self.query_one(ClassifyPane).toggle(device)
        if error:
            self.notify(error, severity="warning")

    def action_open_checkpoint(self) -> None:
        if isinstance(self.screen, OpenCheckpointScreen):
            return
        self.push_screen(OpenCheckpointScreen(self.checkpoint_dir),
                         lambda path: self._load_checkpoint(path) if path else None)

    def _load_checkpoint(self, path: str) -> None:
        def load() -> None:
            try:
                source = backend.CheckpointSource(path)
            except Exception as exc:  # UserError: one line for the user
                self.post_message(CheckpointLoaded(path, None, error=str(exc)))
                return
            self.post_message(CheckpointLoaded(path, source))

        self.run_worker(load, thread=True, group="open", exit_on_error=False)

    def on_checkpoint_loaded(self, msg: CheckpointLoaded) -> None:
        if msg.error:
            self.notify(msg.error, title="cannot open", severity="error", timeout=10)
            return
        name = Path(msg.path).name
        self.query_one(GeneratePane).set_source(msg.source, f"checkpoint {name} · step {msg.source.step}")
        if self.phase == "idle":
            self.resume_path = msg.path
            self.query_one(TrainPane).set_resume(f"F5 resumes {name} (step {msg.source.step})")
        self.notify(f"{name}: F9 generates from it" + (", F5 resumes its training" if self.phase == "idle" else ""),
                    title="checkpoint opened", timeout=5)

    def action_help(self) -> None:
        """F1 opens the help window, and closes it again."""
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
        else:
            if not self.is_screen_installed("help"):
                self.install_screen(HelpScreen(), "help")  # built once, shown fast afterwards
            self.push_screen("help")

    @on(Button.Pressed, "#start")
    def _start_button(self) -> None:
        {"idle": self.action_start_training, "running": self.action_pause_training,
         "paused": self.action_resume_training}.get(self.phase, lambda: None)()

    @on(Button.Pressed, "#stop")
    def _stop_button(self) -> None:
        self.action_stop_training()

    @on(Select.Changed, "#corpus")
    def _corpus_chosen(self) -> None:
        if self.resume_path:  # choosing a corpus means a new run, not the opened checkpoint
            self.resume_path = None
            self.query_one(TrainPane).set_resume(None)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield SystemCommand("Train: start / pause / resume", "F5: train the chosen corpus", self._f5)
        yield SystemCommand("Train: stop", "F6: stop after the step in flight and save", self.action_stop_training)
        yield SystemCommand("Generate text", "F9: sample from the live weights or a checkpoint", self.action_generate)
        yield SystemCommand("Save checkpoint", "ctrl+s: save the current weights now", self.action_save)
        yield SystemCommand("Open checkpoint", "ctrl+o: pick one from the checkpoint folder",
                            self.action_open_checkpoint)
        yield SystemCommand("Classifier: run / stop", "F7: the seed's synthetic experiment", self.action_classify)
        yield SystemCommand("Help", "F1: keys and what the screens show", self.action_help)
        yield from super().get_system_commands(screen)

    def _f5(self) -> None:
        {"idle": self.action_start_training, "running": self.action_pause_training,
         "paused": self.action_resume_training}.get(self.phase, lambda: None)()

def make_app(**kwargs) -> RnnPlayApp:
    """Build the app (the CLI and the tests share this). See :class:`RnnPlayApp` for the options."""
    return RnnPlayApp(**kwargs)
