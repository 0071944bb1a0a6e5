"""`rnnplay train`: train a CharRNN on a corpus, headless, with a progress bar on stderr.

Ctrl-C (SIGINT), SIGTERM and SIGHUP stop after the step in flight and save a checkpoint; a second
Ctrl-C aborts at once (the last checkpoint on disk stays intact: saves are atomic). ``--steps`` is
the run's total, so ``--resume PATH`` continues from the saved step up to it, writing back to PATH
unless ``--out`` says otherwise. With ``--json`` the last stdout line is a JSON object.
Exit codes: 0 completed, 130 stopped by a signal (after saving), 1 diverged, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import threading
import time

from rnnplay.errors import UserError
from rnnplay.commands._record import add_record_arguments, open_recorder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rnnplay.config import add_setting_arguments

    add_setting_arguments(parser)  # every declared training setting (rnnplay.config)
    a = parser.add_argument
    a("--resume", metavar="PATH", help="continue exactly where this checkpoint stopped (optimizer, RNG, data position)")
    a("--json", action="store_true", help="make the last stdout line a JSON summary")
    add_record_arguments(parser)


def _default_out(corpus: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", os.path.basename(os.path.normpath(corpus)) or "corpus")
    stem = re.sub(r"\.txt$", "", stem).strip("-.") or "corpus"
    base = os.path.join("checkpoints", f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    path, n = base + ".pt", 2
    while os.path.exists(path):
        path, n = f"{base}-{n}.pt", n + 1
    return path


def _config(args: argparse.Namespace, resume=None):
    """The run's TrainConfig from the flags given (and the checkpoint's config when resuming)."""
    import dataclasses

    from rnnplay.config import DEFAULT_CORPUS, TrainConfig, given_settings

    given = given_settings(args)
    if resume is not None:
        config = resume.config_with(**given)
        if args.out is None:
            config = dataclasses.replace(config, out=resume.path)
        return config
    given.setdefault("corpus", DEFAULT_CORPUS)
    given.setdefault("out", _default_out(given["corpus"]))
    return TrainConfig(**given)


def _check_writable(out: str) -> None:
    """Fail before training, not at the first save, when --out cannot be written."""
    folder = os.path.dirname(os.path.abspath(out))
    if os.path.isdir(out):
        raise UserError(f"--out {out!r} is a folder; give a file path such as {os.path.join(out, 'run.pt')}")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out!r}: cannot create folder {folder!r} ({exc.strerror}); choose another path") from None
    if not os.access(folder, os.W_OK):
        raise UserError(f"--out {out!r}: folder {folder!r} is not writable; choose another path")


def run(args: argparse.Namespace) -> int:
    from rnnplay.commands._train_report import Reporter
    from rnnplay.pipeline import Resume, build_run
    from rnnplay.training.events import FanOut
    from rnnplay.training.trainer import Trainer

    resume = Resume.open(args.resume) if args.resume else None  # the checkpoint, read once
    config = _config(args, resume)
    _check_writable(config.out)
    run_ = build_run(config, resume=resume)
    if run_.state.step >= config.steps:
        raise UserError(f"the checkpoint is already at step {run_.state.step} of --steps {config.steps}; "
                        "pass a larger --steps to train further")
    trainer = Trainer(run_)
    stop = threading.Event()
    reporter = Reporter(json_mode=args.json)
    recorder = open_recorder(args)
    signals = {"n": 0, "name": None}

    def on_signal(signum, _frame):
        signals["n"] += 1
        signals["name"] = signal.Signals(signum).name
        if signals["n"] > 1 and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        reporter.stopping(signals["name"])

    names = [s for s in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, s)]
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for s in names:
            previous[s] = signal.signal(getattr(signal, s), on_signal)
    try:
        with reporter:
            trainer.fit(FanOut(reporter.emit, recorder), stop)
    finally:
        if recorder is not None:
            recorder.close()  # a run the trainer did not end (a second Ctrl-C) is "interrupted"
        for s, handler in previous.items():
            signal.signal(getattr(signal, s), handler)
    result = reporter.result(trainer)
    result["run_id"] = recorder.run_id if recorder is not None else None
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        reporter.print_summary(result)
        if recorder is not None and recorder.run_id is not None:
            print(f"recorded as run {recorder.run_id} in {recorder.store.path} (rnnplay runs show {recorder.run_id})")
    if result["status"] == "diverged":
        return 1
    return 130 if result["status"] == "stopped" else 0
