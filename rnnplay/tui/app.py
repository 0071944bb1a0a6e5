"""The rnnplay terminal app: the tabs, the global keys, the status line, clean exits.

``make_app(...)`` builds it for the CLI and the tests alike; the trainer factory and the
classifier runner are injectable so tests drive the app with fast fakes. Nothing here imports
torch: the training stack loads in a thread after the first frame.

The app holds no training logic: the :class:`~rnnplay.tui.controller.TrainingSession` (a plain
object given this app's ``post_message`` and a thread runner) owns the run and its phase, and each
pane handles its own buttons; a global key only calls the pane that does the work. The session's
events arrive as one message, :class:`~rnnplay.tui.messages.SessionChanged`: the Train pane shows
them, the app updates what is global (the status line, the keys on offer, the Generate source, quitting).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events, on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, Static, TabbedContent, TabPane, Tabs

from rnnplay.tui import backend, heap
from rnnplay.tui.classify_tab import ClassifyPane
from rnnplay.tui.controller import PhaseChanged, RunReady, RunStopped, SaveFailed, Saved, TrainingSession
from rnnplay.tui.crash import Crash, record_crash
from rnnplay.tui.generate_tab import GeneratePane
from rnnplay.tui.messages import BackendLoaded, CheckpointLoaded, SessionChanged
from rnnplay.tui.runs_tab import TAB_KEYS, RunsPane
from rnnplay.tui.screens import HelpScreen, OpenCheckpointScreen
from rnnplay.tui.signals import guard_sigcont
from rnnplay.tui.train_tab import TrainPane
from rnnplay.tui.write_tab import WritePane

PHASE_GLYPH = {"idle": "○", "starting": "◔", "running": "●", "stopping": "◑", "paused": "◌"}
QUIT_DEADLINE_S = 1.8  # quitting while training returns within 2 s, even if a step runs long


class RnnPlayApp(App[int]):
    """See the module docstring."""

    CSS_PATH = "rnnplay.tcss"
    TITLE = "rnnplay"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        # one F5 with the label of what it does now (check_action shows one of the three)
        Binding("f5", "train_key('idle')", "Train", priority=True, id="train"),
        Binding("f5", "train_key('running')", "Pause", priority=True, id="pause"),
        Binding("f5", "train_key('paused')", "Resume", priority=True, id="resume"),
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
        *TAB_KEYS,
    ]
    exit_process = staticmethod(os._exit)  # how the shutdown thread ends the process (tests replace it)

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
        self.session = TrainingSession(trainer_factory or backend.default_trainer_factory,
                                       post=lambda event: self.post_message(SessionChanged(event)),
                                       run_in_thread=self._run_in_thread, torch_threads=torch_threads,
                                       recorder_factory=self._open_recorder)
        self.classifier_runner = classifier_runner or backend.default_classifier_runner
        self.exit_code = 0
        self._quitting = False
        self.gc_pacer = heap.HeapPacer()
        self.crash: Crash | None = None  # an unexpected error ended the app (see _handle_exception)
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            # No animations unless asked for: they redraw at 60 Hz past --refresh-hz (costly over
            # SSH) and take the UI thread from key presses while training shares its cores.
            self.animation_level = "none"

    @property
    def phase(self) -> str:
        """The training session's phase: idle, starting, running, stopping or paused."""
        return self.session.phase

    def _open_recorder(self):
        """Each run the app trains is recorded in the run store (the Runs tab lists it)."""
        from rnnplay.runs.recorder import Recorder
        from rnnplay.runs.store import resolve_path

        return Recorder.open(resolve_path(None, folder=self.checkpoint_dir), kind="app",
                             warn=lambda line: self.call_from_thread(self.notify, line, severity="warning", timeout=10))

    def _run_in_thread(self, fn, name: str) -> None:
        self.run_worker(fn, name=name, group=name, description=name, thread=True, exit_on_error=False)

    # ---- layout -------------------------------------------------------------------------------

    def tabs(self) -> tuple[tuple[str, str, Widget], ...]:
        """(title, id, pane) of each tab, in order: a new tab is one more line here."""
        corpora, default = backend.corpus_choices()
        if self.initial_corpus in [v for _, v in corpora]:
            default = self.initial_corpus  # a bundled name; a path goes into the path field
        return (
            ("Train", "train", TrainPane(self.session, corpora, default, device=self.device,
                                         checkpoint_dir=self.checkpoint_dir, id="train-pane")),
            ("Generate", "generate", GeneratePane(id="generate-pane")),
            ("Runs", "runs", RunsPane(checkpoint_dir=self.checkpoint_dir, id="runs-pane")),
            ("Classify", "classify", ClassifyPane(self.classifier_runner, device=self.device, id="classify-pane")),
            ("Write", "write", WritePane(id="write-pane")),
        )

    def compose(self) -> ComposeResult:
        with TabbedContent(initial="train", id="tabs"):
            for title, pane_id, pane in self.tabs():
                with TabPane(title, id=pane_id):
                    yield pane
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        if self.initial_corpus and self.initial_corpus not in [v for _, v in backend.corpus_choices()[0]]:
            self.query_one("#corpus-path", Input).value = self.initial_corpus
        self.query_one(TrainPane).prefill(self.prefill)
        # the tab bar and the panes never change: found once, not by a query per key press
        self._tabs = self.query_one("#tabs", TabbedContent)
        self._tab_bar = self._tabs.query_one(Tabs)
        self._pane_ids = [pane.id for pane in self._tabs.query(TabPane)]
        self._train = self.query_one(TrainPane)
        self.set_interval(1.0 / self.refresh_hz, self._tick, name="refresh")
        self.set_interval(heap.PERIOD_S, self.gc_pacer.tick, name="gc")
        self._update_status()
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
            self.call_after_refresh(self.set_timer, 0.1, lambda: self._run_in_thread(self._warm, "warm"))
        if self.open_checkpoint_at_start:
            self._load_checkpoint(self.open_checkpoint_at_start)

    def _warm(self) -> None:
        """Import torch and the pipeline after the first frame, so F5 starts at once."""
        try:
            defaults = backend.load_backend()
            from rnnplay.device import available_devices

            devices = available_devices()
        except Exception as exc:
            self.post_message(BackendLoaded({}, error=f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(BackendLoaded(defaults, devices=devices))

    def on_backend_loaded(self, msg: BackendLoaded) -> None:
        if msg.error:
            self.notify(f"the training stack failed to load: {msg.error}", severity="error", timeout=15)
        else:
            self.query_one(TrainPane).set_defaults(msg.defaults)
            if msg.devices:
                self.query_one(TrainPane).set_devices(msg.devices)
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

    # ---- the refresh timer and the status line ------------------------------------------------

    def _tick(self, force: bool = False) -> None:
        snap = self.session.metrics.snapshot(force=force)
        if snap is None:
            return
        try:
            self._train.show(snap, self.phase, force=force)
        except NoMatches:  # the timer fired while the Train pane is being built or torn down
            pass

    def _update_status(self) -> None:
        text = Text()
        phase = self.phase
        text.append(f" {PHASE_GLYPH.get(phase, '·')} {phase}", style="bold")
        if self.session.description:
            text.append(f"  · {self.session.description}", style="dim")
        note = "saving and quitting…" if self._quitting and phase != "idle" else self._train.note
        if note:
            text.append(f"  · {note}", style="dim")
        self.query_one("#status", Static).update(text, layout=False)

    # ---- the training session's events ----------------------------------------------------------

    def on_session_changed(self, msg: SessionChanged) -> None:
        event = msg.event
        self._train.session_changed(event)  # the Train pane shows the run first
        if isinstance(event, PhaseChanged):
            self.refresh_bindings()
        elif isinstance(event, RunReady):
            self._set_source(event.trainer, f"live weights · {event.description}")
            self.gc_pacer.settle()
        elif isinstance(event, RunStopped):
            self._tick(force=True)  # the final state, curve included
            if self._quitting:
                self.exit(self.exit_code)
        elif isinstance(event, (Saved, SaveFailed)):
            if self._quitting and self.phase in ("idle", "paused"):
                self.exit(self.exit_code)
        self._update_status()

    # ---- actions: each one asks the pane that does the work --------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        phase = self.phase
        if action == "train_key":  # the F5 shown is the one for this phase (starting/stopping: Train, greyed)
            wanted = parameters[0] if parameters else "idle"
            if wanted == "idle":
                return True if phase == "idle" else None if phase in ("starting", "stopping") else False
            return phase == wanted
        if action == "stop_training":
            return True if phase in ("running", "paused") else None
        if action in ("temperature", "random_seed"):
            return self._active_tab() == "generate"
        return True

    def _active_tab(self) -> str:
        try:
            return self._tabs.active
        except AttributeError:  # before mount
            return "train"

    def action_train_key(self, _phase: str = "") -> None:
        self._train.primary()

    def action_stop_training(self) -> None:
        self._train.stop()

    def action_save(self) -> None:
        self._train.save()

    def action_generate(self) -> None:
        self._tabs.active = "generate"
        self.query_one(GeneratePane).generate()

    def action_show_tab(self, tab: str) -> None:
        """A tab's key: show it, and let its pane take the focus where it has keys of its own."""
        self._tabs.active = tab
        reached = getattr(self.query_one(f"#{tab}-pane"), "reached", None)
        if reached is not None:
            reached()

    def action_temperature(self, delta: float) -> None:
        self.query_one(GeneratePane).nudge_temperature(float(delta))

    def action_random_seed(self) -> None:
        self.query_one(GeneratePane).random_seed()

    def action_classify(self) -> None:
        self._tabs.active = "classify"
        self.query_one(ClassifyPane).run_or_stop()

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

        self._run_in_thread(load, "open")

    def on_checkpoint_loaded(self, msg: CheckpointLoaded) -> None:
        if msg.error:
            self.notify(msg.error, title="cannot open", severity="error", timeout=10)
            return
        name = Path(msg.path).name
        self._set_source(msg.source, f"checkpoint {name} · step {msg.source.step}")
        resumable = self._train.offer_resume(msg.path, msg.source.step)
        self.notify(f"{name}: F9 generates from it" + (", F5 resumes its training" if resumable else ""),
                    title="checkpoint opened", timeout=5)

    def _set_source(self, source: Any, label: str) -> None:
        """What Generate and Write sample from: the live run's weights or an opened checkpoint."""
        self.query_one(GeneratePane).set_source(source, label)
        self.query_one(WritePane).set_source(source, label)

    def action_help(self) -> None:
        """F1 opens the help window, and closes it again."""
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
        else:
            if not self.is_screen_installed("help"):
                self.install_screen(HelpScreen(), "help")  # built once, shown fast afterwards
            self.push_screen("help")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield SystemCommand("Train: start / pause / resume", "F5: train the chosen corpus", self.action_train_key)
        yield SystemCommand("Train: stop", "F6: stop after the step in flight and save", self.action_stop_training)
        yield SystemCommand("Generate text", "F9: sample from the live weights or a checkpoint", self.action_generate)
        yield SystemCommand("Save checkpoint", "ctrl+s: save the current weights now", self.action_save)
        yield SystemCommand("Open checkpoint", "ctrl+o: pick one from the checkpoint folder",
                            self.action_open_checkpoint)
        yield SystemCommand("Write with the model", "F12: pick its next characters, or score a pasted text",
                            lambda: self.action_show_tab("write"))
        yield SystemCommand("Classifier: run / stop", "F7: the seed's synthetic experiment", self.action_classify)
        yield SystemCommand("Help", "F1: keys and what the screens show", self.action_help)
        yield from super().get_system_commands(screen)

    # ---- leaving --------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Stop a running session (the step in flight finishes), save it, then exit (< 2 s)."""
        if self._quitting:
            self.exit(self.exit_code)  # a second ctrl+q: leave now
            return
        self._quitting = True
        session = self.session
        if session.phase in ("running", "starting", "stopping"):
            session.request_stop("quit")
            self.set_timer(QUIT_DEADLINE_S, lambda: self.exit(self.exit_code))
        elif session.unsaved and session.save("stopped"):
            self.set_timer(QUIT_DEADLINE_S, lambda: self.exit(self.exit_code))
        else:
            self.exit(self.exit_code)
        self._update_status()

    def _on_terminate(self) -> None:
        """SIGTERM: the same as ctrl+q (stop, save, exit), with a watchdog in case the UI is stuck."""
        self.exit_code = 143
        self.call_later(self.action_quit)
        self._watchdog(grace_s=3.0)

    def _on_hangup(self) -> None:
        """SIGHUP: the terminal (SSH session) is gone. Stop, save, and leave without drawing.

        Textual's own exit writes to the terminal and blocks once it has vanished, so a plain
        thread finishes the job: it waits for the step in flight, saves, and ends the process.
        """
        self.exit_code = 129
        self.quiet_ui()
        self._watchdog(grace_s=0.0)

    def quiet_ui(self) -> None:
        """Stop every piece of UI work when the terminal is gone, so the step in flight and the save
        get the cores: the driver's input thread, which spins on the dead terminal (end of file at
        every read), and the app's timers (refresh, GC). With a 3x1024 model on 2 cores the step in
        flight took 1.6 s instead of 0.6 s, and a hang-up up to 2.7 s to exit; now 0.3-0.8 s."""
        exit_event = getattr(self._driver, "exit_event", None)  # Textual's Linux driver
        if exit_event is not None:
            exit_event.set()
        for timer in list(self._timers):
            timer.stop()

    def _watchdog(self, grace_s: float) -> None:
        def run() -> None:
            try:
                self.query_one(ClassifyPane).stop_now()
            except Exception:  # the DOM is gone already
                pass
            self.session.shutdown(timeout=60.0)
            if grace_s:
                time.sleep(grace_s)  # time for a clean exit through the UI
            self.exit_process(self.exit_code)

        threading.Thread(target=run, name="rnnplay-shutdown", daemon=True).start()


def make_app(**kwargs: Any) -> RnnPlayApp:
    """Build the app (the CLI and the tests share this). See :class:`RnnPlayApp` for the options."""
    return RnnPlayApp(**kwargs)
