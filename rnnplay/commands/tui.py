"""`rnnplay` / `rnnplay tui`: the terminal app (being built; for now it prints what is coming)."""

from __future__ import annotations

import argparse

from rnnplay import __version__


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    print(f"rnnplay {__version__}: the RNN library is here (from rnnplay import RNN, CharRNN, ...).")
    print("Coming next: rnnplay train / sample / classify and the live terminal app.")
    return 0
