"""The ``rnnplay`` command: argparse front door, one line and exit code 2 for bad input.

Each subcommand lives in ``rnnplay/commands/<name>.py`` with ``add_arguments(parser)`` and
``run(args) -> int``. Those modules import torch (and textual, for ``tui``) inside ``run`` only,
so ``rnnplay --help`` answers at once. With no subcommand, ``rnnplay`` opens the terminal app.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Sequence

from rnnplay import __version__
from rnnplay.errors import UserError

COMMANDS: dict[str, str] = {
    "tui": "open the terminal app (the default when no command is given)",
    "train": "train a CharRNN on a corpus, headless, with a progress bar",
    "sample": "print text sampled from a checkpoint",
    "score": "how likely a checkpoint finds a text: nats/char, bits/char, perplexity",
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


class StdoutFailed(Exception):
    """A write to stdout failed (a closed pipe, a full device). Not an OSError: no command catches it by mistake."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _GuardedStdout:
    """``sys.stdout`` while a command runs: a failed write or flush raises :class:`StdoutFailed`."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise StdoutFailed(exc) from None

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise StdoutFailed(exc) from None

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    real_stdout = sys.stdout
    sys.stdout = _GuardedStdout(real_stdout)
    command = "rnnplay"
    try:
        parser = build_parser()
        if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
            argv = ["tui", *argv]  # `rnnplay` and `rnnplay --refresh-hz 2` open the app
        args = parser.parse_args(argv)
        command = f"rnnplay {args.command}"
        if args.command == "tui":
            sys.stdout = real_stdout  # the app owns the terminal
        module = importlib.import_module(f"rnnplay.commands.{args.command}")
        return int(module.run(args) or 0)
    except UserError as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except StdoutFailed as exc:
        _discard_stdout(real_stdout)
        if exc.error.errno == errno.EPIPE:
            return 0  # the reader had what it wanted (`rnnplay sample ... | head`): leave quietly
        why = (exc.error.strerror or str(exc.error)).lower()
        print(f"{command}: error: cannot write to stdout: {why}; send the output somewhere with room",
              file=sys.stderr)
        return 2
    finally:
        sys.stdout = real_stdout


def _discard_stdout(stream) -> None:
    """Point fd 1 at /dev/null so what is still buffered (flushed at exit) fails no more."""
    try:
        fd = stream.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


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

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
