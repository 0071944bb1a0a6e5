"""`rnnplay train`: train a CharRNN on a corpus, headless, with a progress bar on stderr.

Ctrl-C (SIGINT), SIGTERM and SIGHUP stop after the step in flight and save a checkpoint; a second
Ctrl-C aborts at once (the last checkpoint on disk stays intact: saves are atomic). ``--steps`` is
the run's total, so ``--resume PATH`` continues from the saved step up to it, writing back to PATH
unless ``--out`` says otherwise. With ``--json`` the last stdout line is a JSON object.
Exit codes: 0 completed, 130 stopped by a signal (after saving), 1 diverged, 2 bad input.

Under torchrun (``torchrun --nproc-per-node N -m rnnplay train ...``) the processes train one model
together (rnnplay.training.distributed); rank 0 alone prints, records and saves. A rank that loses
its peers prints one line and exits 1.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from rnnplay.errors import UserError
from rnnplay.commands._record import add_record_arguments, open_recorder
from rnnplay.malloc import keep_freed_memory




def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rnnplay.config import add_setting_arguments

    add_setting_arguments(parser)  # every declared training setting (rnnplay.config)
    a = parser.add_argument
    a("--resume", metavar="PATH", help="continue exactly where this checkpoint stopped (optimizer, RNG, data "
      "position); writes back to PATH (to NAME.pt for NAME.best.pt) unless --out says otherwise")
    a("--init-from", metavar="CKPT", help="a new run that starts from this checkpoint's weights (and its shape: "
      "hidden, layers, embed) on --corpus; characters it never saw get fresh rows, the others keep theirs; "
      "optimizer, schedule and steps start afresh")
    a("--force", action="store_true", help="let --out replace a checkpoint of another run (never a file rnnplay did not write)")
    a("--json", action="store_true", help="make the last stdout line a JSON summary")
    add_record_arguments(parser)


def _config(args: argparse.Namespace, resume=None, init=None):
    """The run's TrainConfig from the flags given (and the checkpoint's config when resuming)."""
    import dataclasses

    from rnnplay.config import DEFAULT_CORPUS, STEPS_MAX, TrainConfig, given_settings

    given = given_settings(args)
    if resume is not None:
        config = resume.config_with(**given)
        if "corpus" not in given:  # a relative path from an older checkpoint, resumed from another folder
            from rnnplay.data.corpus import locate_saved_corpus

            saved = (resume.payload.get("corpus") or {}).get("corpus_location")
            config = dataclasses.replace(config, corpus=locate_saved_corpus(config.corpus, saved))
        if args.out is None:
            from rnnplay.training.checkpoint import resume_out

            config = dataclasses.replace(config, out=resume_out(resume.path))
        return config
    given.setdefault("corpus", DEFAULT_CORPUS)
    if given.get("minutes") is not None and "steps" not in given:
        given["steps"] = STEPS_MAX  # a time budget alone: the clock ends the run
    if init is not None:
        from rnnplay.training.finetune import parent_config

        return parent_config(given, init.payload, init.path)  # the parent's shape
    return TrainConfig(**given)  # out None: claim_out claims a new name


def run(args: argparse.Namespace) -> int:
    keep_freed_memory()  # training steps reuse their buffers (rnnplay.malloc)
    import dataclasses

    from rnnplay.training.distributed import Dist

    if args.resume and args.init_from:
        raise UserError("--resume continues a run and --init-from starts a new one from its weights; choose one")
    d = Dist.from_env()
    if d is not None:
        return _run_distributed(args, d)
    from rnnplay.pipeline import Resume, build_run
    from rnnplay.training.outpath import claim_out

    resume = Resume.open(args.resume) if args.resume else None  # the checkpoint, read once
    init = Resume.open(args.init_from) if args.init_from else None
    config = _config(args, resume, init)
    with claim_out(config.out, corpus=config.corpus, resume=args.resume, force=args.force) as claim:
        run_ = build_run(dataclasses.replace(config, out=claim.path), resume=resume, init_from=init)
        claim.adopt(run_)  # another run's file at the path is refused; the best file's loss is the bar
        if init is not None:
            from rnnplay.training.finetune import describe

            new = len(run_.vocab) - len(init.payload["vocab"])
            print(f"rnnplay train: note: {describe(init.path, new, run_.vocab)}", file=sys.stderr, flush=True)
        note = _schedule_note(resume, run_.config)
        if note:
            print(f"rnnplay train: note: {note}", file=sys.stderr, flush=True)
        return _train(args, run_)


def _run_distributed(args: argparse.Namespace, d) -> int:
    """One rank of a torchrun run: rank 0 claims --out and shares its path; every rank builds the run."""
    import contextlib
    import dataclasses

    from rnnplay.pipeline import Resume, build_run
    from rnnplay.training import distributed

    try:
        resume = Resume.open(args.resume) if args.resume else None  # every rank reads it (a shared folder)
        init = Resume.open(args.init_from) if args.init_from else None  # likewise: the same weights everywhere
        config = _config(args, resume, init)
        distributed.check_config(config, d)
    except UserError:
        if d.main:
            raise
        return 2  # the same settings fail on every rank: rank 0 alone says why
    try:
        device = distributed.start(d, config.device)
        with contextlib.ExitStack() as stack:
            error, run_ = None, None
            try:
                path = None
                if d.main:
                    from rnnplay.training.outpath import claim_out

                    claim = stack.enter_context(claim_out(config.out, corpus=config.corpus, resume=args.resume,
                                                          force=args.force))
                    path = claim.path
            except UserError as exc:
                error = exc
            path = distributed.share_path(d, path)
            if path is not None:
                try:
                    run_ = build_run(dataclasses.replace(config, out=path), resume=resume, device=device,
                                     init_from=init)
                    if d.main:
                        claim.adopt(run_)
                except UserError as exc:
                    error = exc
            if not distributed.agree(d, error is None and path is not None):
                if error is not None:
                    raise error
                return 2  # another rank could not start and said why
            note = _schedule_note(resume, run_.config) if d.main else None
            if note:
                print(f"rnnplay train: note: {note}", file=sys.stderr, flush=True)
            return _train(args, run_, d)
    except distributed.PeerLost as exc:
        import os

        last = locals().get("path")
        hint = (f"; the last checkpoint is {last}: resume with the same command and --resume {last}"
                if last and os.path.isfile(last) else "")
        print(f"rnnplay train: error: {exc}{hint}", file=sys.stderr, flush=True)
        return 1
    finally:
        distributed.stop(d)


def _schedule_note(resume, config) -> str | None:
    """A cosine run resumed with another --steps: its schedule is redrawn for the new total; say how."""
    from rnnplay.pipeline import LRSchedule

    saved = resume.config if resume is not None else None
    if saved is None or config.lr_schedule != "cosine" or config.steps == saved.steps or resume.step >= config.steps:
        return None
    was, now = LRSchedule(saved)(resume.step), LRSchedule(config)(resume.step)
    keep = f"; pass --steps {saved.steps} to keep the original one" if resume.step < saved.steps else ""
    return (f"the cosine schedule was planned for {saved.steps} steps and is redrawn to end at {config.steps}: the "
            f"learning rate at step {resume.step} goes from {was:.3g} to {now:.3g}, then follows the new curve{keep}")


def _train(args: argparse.Namespace, run_, d=None) -> int:
    from rnnplay.commands._train_report import Reporter
    from rnnplay.training.events import FanOut
    from rnnplay.training.trainer import Trainer

    if d is not None and not d.main:
        return _train_rank(run_, d)
    config = run_.config
    if run_.state.step >= config.steps:
        raise UserError(f"the checkpoint is already at step {run_.state.step} of --steps {config.steps}; "
                        "pass a larger --steps to train further")
    if d is not None:
        from rnnplay.training.distributed import DistributedTrainer

        trainer = DistributedTrainer(run_, d)  # no exact measurement after a stop: the ranks part at once
    else:
        trainer = Trainer(run_, exact_on_stop=True)
    if trainer.out_of_time():
        raise UserError(f"the checkpoint has already trained {run_.state.trained_s / 60:.2f} minutes, its --minutes "
                        f"{config.minutes:g}; pass a larger --minutes to train further")
    stop = threading.Event()
    reporter = Reporter(json_mode=args.json)
    recorder = open_recorder(args)
    signals = {"n": 0, "name": None}

    def on_signal(signum, _frame):
        signals["n"] += 1
        signals["name"] = signal.Signals(signum).name
        if signals["n"] > 1 and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if signum != signal.SIGINT:  # a hang-up or SIGTERM wants the process gone: no exact pass
            trainer.exact_on_stop = False
        stop.set()
        reporter.stopping(signals["name"])

    previous = _install(on_signal)
    try:
        with reporter:
            trainer.fit(FanOut(reporter.emit, recorder), stop)
    except KeyboardInterrupt:  # the second Ctrl-C: no save; say what is on disk
        from rnnplay.training.outpath import after_abort

        raise UserError(after_abort(config.out, trainer.last_checkpoint)) from None
    finally:
        if recorder is not None:
            recorder.close()  # a run the trainer did not end (a second Ctrl-C) is "interrupted"
        _restore(previous)
    result = reporter.result(trainer)
    result["run_id"] = recorder.run_id if recorder is not None else None
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        reporter.print_summary(result)
        if recorder is not None and recorder.run_id is not None:
            print(f"recorded as run {recorder.run_id} in {recorder.store.path} (rnnplay runs show {recorder.run_id})")
    if result["status"] in ("diverged", "failed"):
        return 1
    return 130 if result["status"] == "stopped" else 0


def _install(handler) -> dict:
    """Route SIGINT, SIGTERM and SIGHUP to ``handler``; the handlers they had."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for s in ("SIGINT", "SIGTERM", "SIGHUP"):
            if hasattr(signal, s):
                previous[s] = signal.signal(getattr(signal, s), handler)
    return previous


def _restore(previous: dict) -> None:
    for s, handler in previous.items():
        signal.signal(getattr(signal, s), handler)


def _train_rank(run_, d) -> int:
    """A rank other than 0: trains its share silently; stops when any rank is asked to (the stop is agreed)."""
    from rnnplay.training.distributed import DistributedTrainer
    from rnnplay.training.events import Failed, Finished

    if run_.state.step >= run_.config.steps:
        return 2  # rank 0 says why (before it wraps the model, a step every rank takes)
    trainer = DistributedTrainer(run_, d)
    if trainer.out_of_time():
        return 2
    stop = threading.Event()
    ended: dict = {}

    def on_signal(signum, _frame):
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    def emit(event) -> None:
        if isinstance(event, (Failed, Finished)):
            ended["event"] = event

    previous = _install(on_signal)
    try:
        trainer.fit(emit, stop)
    except KeyboardInterrupt:
        return 130
    finally:
        _restore(previous)
    event = ended.get("event")
    if isinstance(event, Failed):
        return 1
    return 130 if isinstance(event, Finished) and event.reason == "stopped" else 0
