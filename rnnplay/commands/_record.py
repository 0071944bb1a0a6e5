"""The flags that choose where (and whether) a training run is recorded, and opening the recorder.

Shared by ``rnnplay train`` and ``rnnplay sweep``; the store and the recorder are in rnnplay.runs.
"""

from __future__ import annotations

import argparse

from rnnplay.runs.store import ENV_VAR


def add_record_arguments(parser: argparse.ArgumentParser, sweep_flag: bool = True) -> None:
    g = parser.add_argument_group("run store (rnnplay runs lists what was recorded)")
    g.add_argument("--runs-db", metavar="PATH", help=f"record the run in this SQLite file (default "
                   f"checkpoints/runs.db, or ${ENV_VAR}; 'off' turns recording off)")
    g.add_argument("--no-record", action="store_true", help="do not record the run in the run store")
    g.add_argument("--name", metavar="NAME", help="the run's name in the store (default <corpus>-<layers>x<hidden>-<id>)")
    if sweep_flag:
        g.add_argument("--sweep-id", metavar="ID", help=argparse.SUPPRESS)  # set by rnnplay sweep


def store_path(args: argparse.Namespace) -> str | None:
    """The store to record into, or None when recording is off."""
    from rnnplay.runs.store import resolve_path

    if getattr(args, "no_record", False):
        return None
    return resolve_path(getattr(args, "runs_db", None))


def open_recorder(args: argparse.Namespace, kind: str = "train"):
    """A :class:`rnnplay.runs.recorder.Recorder`, or None (recording off, or the store unusable:
    then one line on stderr says so and the run trains unrecorded)."""
    from rnnplay.runs.recorder import Recorder

    sweep = getattr(args, "sweep_id", None)
    return Recorder.open(store_path(args), name=getattr(args, "name", None),
                         kind="sweep" if sweep else kind, sweep=sweep)
