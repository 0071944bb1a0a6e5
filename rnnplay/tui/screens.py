"""Modal screens: help, and the list of checkpoints to open."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from rnnplay.tui.backend import list_checkpoints

HELP = (
    ("Keys (they work while you type in a field)", (
        ("F5", "start training · pause · resume"),
        ("F6", "stop training (waits for the step in flight, then saves)"),
        ("F9", "generate text from the live weights or the opened checkpoint"),
        ("F7", "run or stop the classifier experiment"),
        ("F2 F3 F4 F8", "go to the Train · Generate · Runs · Classify tab"),
        ("F12", "go to the Write tab: write with the model, score a text"),
        ("ctrl+s", "save a checkpoint now"),
        ("ctrl+o", "open a checkpoint from the checkpoint folder"),
        ("ctrl+p", "command palette: every action, themes"),
        ("F1 / ?", "this help (? only outside text fields)"),
        ("ctrl+q / ctrl+c", "quit (a running session is stopped and saved first)"),
    )),
    ("Generate tab", (
        ("[ and ]", "temperature down / up by 0.1 (outside text fields)"),
        ("ctrl+r", "a random seed"),
        ("layer, unit", "colour each character by that hidden unit: red > 0 > blue"),
    )),
    ("Write tab (the model proposes, you choose)", (
        ("1-9", "append the model's proposal 1-9 for the next character"),
        ("other keys", "type your own character (enter: a newline); the model carries on from it"),
        ("tab", "let the model write the next few characters (chars, temp in the form)"),
        ("backspace", "undo the last character"),
        ("paste", "read a whole text: each character's background is its surprisal"),
        ("← → home end", "cursor: the model's top five there, and the character that is there"),
        ("ctrl+u / ctrl+l", "take the latest live weights / clear the text"),
    )),
    ("Runs tab (every run recorded in the run store)", (
        ("space", "select a run: its curves join the chart (up to ten)"),
        ("x", "x axis: step or wall time"),
        ("g / t", "open the run's checkpoint in Generate / in Train (F5 continues it)"),
        ("c", "clear the selection"),
    )),
    ("Moving around", (
        ("tab / shift+tab", "next / previous field"),
        ("← →", "switch tabs when the tab bar has focus"),
        ("esc", "close this window"),
    )),
)

ABOUT = (
    "F5 with nothing changed trains the default bundled corpus with default settings. Empty "
    "fields mean \"the default\" (shown greyed). A run's checkpoint is saved when it stops, "
    "finishes or when you quit, into the checkpoint folder. The loss curve's dashed lines are "
    "what a model that knows only the alphabet (uniform), the letter frequencies (unigram) or the "
    "previous letter (bigram) would score; a char-RNN that learns goes below all three. "
    "Over SSH, keep long runs inside tmux; --refresh-hz lowers redraws on slow links."
)


class HelpScreen(ModalScreen[None]):
    """Keys and a few words on what the tabs show."""

    BINDINGS = [Binding("escape,f1,q,question_mark", "dismiss", "Close", priority=True)]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box", classes="dialog"):
            with VerticalScroll():
                for title, rows in HELP:
                    table = Table(box=None, show_header=False, padding=(0, 1, 0, 0), expand=True)
                    table.add_column(width=16, no_wrap=True, style="bold")
                    table.add_column(ratio=1)
                    for key, what in rows:
                        table.add_row(key, what)
                    yield Label(title, classes="section")
                    yield Static(table)
                yield Static(Text(ABOUT), classes="hint help-about")
            yield Label("esc closes", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#help-box").border_title = "rnnplay help"

    def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)


class OpenCheckpointScreen(ModalScreen["str | None"]):
    """The ``.pt`` files of the checkpoint folder, newest first; enter opens one."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", priority=True)]

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder
        self.rows = list_checkpoints(folder)

    def compose(self) -> ComposeResult:
        with Vertical(id="open-box", classes="dialog"):
            if self.rows:
                yield OptionList(*[Option(label, id=str(i)) for i, (_, label) in enumerate(self.rows)],
                                 id="open-list")
                yield Label("enter opens it for generation and as the run F5 resumes · esc cancels",
                            classes="hint")
            else:
                yield Static(f"No checkpoints in {self.folder} yet.\nTrain (F5), then save (ctrl+s) or "
                             "stop (F6): a checkpoint lands there.", id="open-empty")
                yield Label("esc closes", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#open-box").border_title = f"open a checkpoint · {self.folder}"

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.rows[int(event.option.id)][0])

    def action_cancel(self) -> None:
        self.dismiss(None)
