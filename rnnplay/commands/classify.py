"""`rnnplay classify` (being built; see the open issues)."""

from __future__ import annotations

import argparse

from rnnplay.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise UserError("'rnnplay classify' is not built yet")
