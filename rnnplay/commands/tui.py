"""`rnnplay` / `rnnplay tui`: the terminal app (Train, Generate and Classify tabs).

Textual is imported inside ``run`` and torch only after the first frame (in a worker thread),
so the app appears fast. Without a terminal the command says so and points to ``rnnplay train``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
from typing import TYPE_CHECKING

from rnnplay.commands._types import nonneg_int, positive_float
from rnnplay.config import FORM_SETTINGS, add_setting_arguments, given_settings
from rnnplay.malloc import keep_freed_memory

PREFILL = tuple(s.name for s in FORM_SETTINGS)  # the Train form's settings (rnnplay.config)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Open the terminal app: pick a corpus and press F5 to watch a char-RNN learn; F9 generates, "
        "F1 shows every key. Over SSH, run it inside tmux for long runs; a dropped session stops and "
        "saves the run. NO_COLOR turns colours off."
    )
    parser.add_argument("--corpus", metavar="C", default=None,
                        help="corpus to preselect: a bundled name (see 'rnnplay corpora') or a path")
    parser.add_argument("--refresh-hz", type=positive_float, default=4.0, metavar="HZ",
                        help="how often the live views redraw (default 4; lower it on slow SSH links)")
    parser.add_argument("--checkpoint-dir", default="checkpoints", metavar="DIR",
                        help="where checkpoints are saved and listed by ctrl+o (default ./checkpoints)")
    parser.add_argument("--checkpoint", metavar="PATH", default=None,
                        help="open this checkpoint at start (generate from it; F5 resumes its training)")
    form = parser.add_argument_group("prefill the Train tab (F5 then trains with these; --device is also the "
                                     "Classify tab's)")
    add_setting_arguments(form, PREFILL)
    parser.add_argument("--torch-threads", type=nonneg_int, default=0, metavar="N",
                        help="CPU threads for training (default 0: torch's own choice)")


if TYPE_CHECKING:
    from rnnplay.tui.app import RnnPlayApp


async def _run(app: RnnPlayApp) -> int | None:
    """Run the app; then let a step still in flight finish and be saved, and say so if it is slow.

    Textual's ``App.run`` would wait for the training thread silently (asyncio.run joins it after
    the screen is restored), so a long step left the user at a blank prompt. ctrl+c there leaves
    at once; the checkpoint on disk stays as it was (saves are atomic).
    """
    result = await app.run_async()
    try:
        for tick in itertools.count():
            if app.session.idle.wait(0.05):
                break
            if tick == 4:  # 0.2 s
                print("rnnplay: finishing the training step in flight and saving it "
                      "(ctrl+c leaves without saving it)…", file=sys.stderr, flush=True)
            await asyncio.sleep(0)
    except asyncio.CancelledError:  # asyncio.run's answer to ctrl+c
        print("rnnplay: left without saving the step in flight", file=sys.stderr, flush=True)
        os._exit(130)
    return result


def after_crash(app: RnnPlayApp) -> str:
    """After an unexpected error closed the app: make sure the run is saved, and say in one line
    what happened, where the run is and where the details are."""
    session = app.session
    session.shutdown(timeout=60.0)  # the step in flight finishes; an unsaved (e.g. paused) run is saved
    crash = app.crash
    assert crash is not None
    line = f"rnnplay: the app stopped on an unexpected error ({crash.summary})"
    if session.saved_step is not None and session.checkpoint_path:
        line += f"; the run is saved in {session.checkpoint_path} (step {session.saved_step})"
    if crash.log is not None:
        line += f"; details in {crash.log}"
    return line


def run(args: argparse.Namespace) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty() and sys.stderr.isatty()):
        print("rnnplay: the app needs a terminal (stdin, stdout and stderr must be a TTY); "
              "for headless training use 'rnnplay train --corpus C' (see rnnplay train --help)",
              file=sys.stderr)
        return 2
    if os.environ.get("TERM", "") == "dumb":
        print("rnnplay: this terminal (TERM=dumb) cannot draw the app; run it in one that can "
              "(e.g. TERM=xterm-256color), or train headless with 'rnnplay train --corpus C'", file=sys.stderr)
        return 2
    if args.checkpoint is not None and not os.path.isfile(args.checkpoint):
        from rnnplay.errors import UserError

        raise UserError(f"--checkpoint {args.checkpoint!r} is not a file; give the path of a .pt file")
    device = args.device or "auto"
    if device != "auto":
        from rnnplay.device import resolve_device  # imports torch, but only when a device is named

        resolve_device(device)
    # Textual draws at most TEXTUAL_FPS frames a second (default 60), and a key that changes the
    # layout (a tab switch) lands in the frame after the next one: up to two frame periods of
    # waiting. 240 cut a tab switch from ~75 to ~55 ms here. Frames are only drawn when something
    # changed, and live data changes at --refresh-hz, so this costs no redraws while idle.
    os.environ.setdefault("TEXTUAL_FPS", "240")
    keep_freed_memory()  # training steps reuse their buffers (rnnplay.malloc)
    from rnnplay.tui.app import make_app

    app = make_app(refresh_hz=args.refresh_hz, checkpoint_dir=args.checkpoint_dir, device=device,
                   corpus=args.corpus, open_checkpoint=args.checkpoint,
                   torch_threads=args.torch_threads or None,
                   prefill=given_settings(args, PREFILL))
    from rnnplay.tui.crash import attach_file_log

    attach_file_log()  # while the app owns the terminal, logged errors go to a file
    result = asyncio.run(_run(app))
    if app.crash is not None:
        print(after_crash(app), file=sys.stderr, flush=True)
        return 1
    report = os.environ.get("RNNPLAY_TUI_REPORT")  # benchmarks/bench_tui.py reads the run's figures
    if report:
        import json

        with open(report, "w", encoding="utf-8") as fh:
            json.dump(app.session.report(), fh)
    return int(result or app.exit_code or 0)
