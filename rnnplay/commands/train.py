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
import math
import os
import re
import signal
import threading
import time

from rnnplay.commands._types import nonneg_int, positive_float, positive_int, probability
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")  # as rnnplay.device, which imports torch
from rnnplay.errors import UserError
from rnnplay.commands._record import add_record_arguments, open_recorder


def _clip(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (v >= 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be 0 (off) or a positive number, got {text}")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rnnplay.pipeline import DEFAULT_CORPUS, LR_SCHEDULES, TrainConfig

    d = TrainConfig()
    a = parser.add_argument
    a("--corpus", metavar="C", help=f"a UTF-8 text file, a folder of them, or a bundled corpus name "
      f"(see 'rnnplay corpora'; default {DEFAULT_CORPUS}; on --resume, the checkpoint's)")
    a("--steps", type=positive_int, metavar="N", help=f"total optimizer steps of the run, also when resuming (default {d.steps})")
    a("--hidden", type=positive_int, metavar="H", help=f"hidden units per layer (default {d.hidden})")
    a("--layers", type=positive_int, metavar="L", help=f"stacked RNN layers (default {d.layers})")
    a("--embed", type=positive_int, metavar="E", help=f"character embedding width (default {d.embed})")
    a("--seq-len", type=positive_int, metavar="T", help=f"characters per stream per step, the BPTT length (default {d.seq_len})")
    a("--batch-size", type=positive_int, metavar="B", help=f"parallel text streams per step (default {d.batch_size})")
    a("--lr", type=positive_float, metavar="X", help=f"Adam learning rate (default {d.lr:g})")
    a("--lr-schedule", choices=LR_SCHEDULES, help="constant (default) or cosine: warm-up, then down to 10%% at --steps")
    a("--dropout", type=probability, metavar="P", help=f"dropout between layers (default {d.dropout:g})")
    a("--clip", type=_clip, metavar="G", help=f"clip gradients to this global norm; 0 turns it off (default {d.clip:g})")
    a("--eval-every", type=positive_int, metavar="K", help=f"validation loss every K steps (default {d.eval_every})")
    a("--sample-every", type=nonneg_int, metavar="K", help=f"print a short sample every K steps; 0: never (default {d.sample_every})")
    a("--device", choices=DEVICE_CHOICES, help="auto (default: cuda, else mps, else cpu), cpu, cuda or mps")
    a("--seed", type=nonneg_int, metavar="S", help=f"seed for the weights and the batch order (default {d.seed})")
    a("--out", metavar="PATH", help="checkpoint file to write (default: a new file in ./checkpoints/; "
      "on --resume, the resumed file); the best so far goes to PATH with .best.pt")
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


def _config(args: argparse.Namespace):
    from rnnplay.pipeline import DEFAULT_CORPUS, TrainConfig, resume_config

    given = {
        "corpus": args.corpus, "steps": args.steps, "hidden": args.hidden, "layers": args.layers,
        "embed": args.embed, "seq_len": args.seq_len, "batch_size": args.batch_size, "lr": args.lr,
        "lr_schedule": args.lr_schedule, "dropout": args.dropout, "clip": args.clip,
        "eval_every": args.eval_every, "sample_every": args.sample_every, "device": args.device,
        "seed": args.seed, "out": args.out,
    }
    if args.resume:
        config = resume_config(args.resume, **given)
        if args.out is None:
            import dataclasses

            config = dataclasses.replace(config, out=args.resume)
        return config
    given = {k: v for k, v in given.items() if v is not None}
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
    from rnnplay.pipeline import build_run
    from rnnplay.training.trainer import Trainer

    config = _config(args)
    _check_writable(config.out)
    run_ = build_run(config, resume=args.resume)
    if run_.state.step >= config.steps:
        raise UserError(f"the checkpoint is already at step {run_.state.step} of --steps {config.steps}; "
                        "pass a larger --steps to train further")
    trainer = Trainer(run_)
    stop = threading.Event()
    reporter = Reporter(json_mode=args.json)
    recorder = open_recorder(args)
    emit = reporter.emit if recorder is None else (lambda e: (reporter.emit(e), recorder(e)))
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
            trainer.fit(emit, stop)
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
