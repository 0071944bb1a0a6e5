"""The ``rnnplay`` command: argparse front door, one line and exit code 2 for bad input.

Each subcommand lives in ``rnnplay/commands/<name>.py`` with ``add_arguments(parser)`` and
``run(args) -> int``. Those modules import torch (and textual, for ``tui``) inside ``run`` only,
so ``rnnplay --help`` answers at once. With no subcommand, ``rnnplay`` opens the terminal app.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from rnnplay import __version__
from rnnplay.errors import UserError

COMMANDS: dict[str, str] = {
    "tui": "open the terminal app (the default when no command is given)",
    "train": "train a CharRNN on a corpus, headless, with a progress bar",
    "sample": "print text sampled from a checkpoint",
    "corpora": "list the bundled corpora",
    "classify": "run the seed's synthetic classifier experiment, headless",
    "runs": "list, show, compare, export or import the recorded runs",
    "sweep": "train every combination of a grid of settings and rank them",
}


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> Parser:
    parser = Parser(
        prog="rnnplay",
        description="A terminal playground for recurrent neural networks. With no command, opens "
        "the terminal app; long runs belong in tmux when you work over SSH.",
    )
    parser.add_argument("--version", action="version", version=f"rnnplay {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"rnnplay.commands.{name}")
        p = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        module.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["tui", *argv]  # `rnnplay` and `rnnplay --refresh-hz 2` open the app
    args = parser.parse_args(argv)
    module = importlib.import_module(f"rnnplay.commands.{args.command}")
    try:
        return int(module.run(args) or 0)
    except UserError as exc:
        print(f"rnnplay {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rnnplay {args.command}: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """Console-script entry point."""
    code = main()
    if "torch" in sys.modules:
        _exit_now(code)
    sys.exit(code)


def _exit_now(code: int) -> None:
    """Leave without the interpreter's teardown, once the command's work is done and written.

    With torch loaded, Python's shutdown (module teardown and a last full GC over ~400k objects)
    took 0.5-1.5 s here after the last line was printed: ctrl+q in the app looked slow for nothing.
    By now every checkpoint is written and closed (atomically; the app waits for its training
    thread), so flush what is buffered and end the process.
    """
    import logging
    import os

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
