"""`rnnplay classify`: the seed's synthetic classifier experiment, headless.

Progress (a rich bar per epoch with loss, train/test accuracy and learning rate) goes to stderr,
so stdout holds only the summary, or with ``--json`` only the JSON object on its last line.
Ctrl-C stops after the batch in flight and still prints the summary of the finished epochs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading

from rnnplay.commands._types import positive_int, seed
from rnnplay.config import add_setting_arguments, parse_device
from rnnplay.errors import UserError
from rnnplay.malloc import keep_freed_memory
from rnnplay.training.events import EpochDone, Started



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=("classify", "tagging"), default="classify",
                        help="classify: the seed's task (label = sign of the sequence mean); tagging: "
                        "per-step tags that depend on the next step, unidirectional vs bidirectional "
                        "SequenceTagger (default: classify)")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="epochs to train (default: 60 for classify, 10 for tagging)")
    add_setting_arguments(parser, ("cell",))  # --cell tanh|gru|lstm (rnn = tanh), declared once in rnnplay.config
    parser.add_argument("--seed", type=seed, default=0, help="seed for data, init and batch order (default 0)")
    parser.add_argument("--device", type=parse_device, metavar="DEVICE", default="auto",
                        help="where to train (default auto: cuda, else mps, else cpu)")
    parser.add_argument("--train-size", type=positive_int, default=5000, metavar="N",
                        help="training sequences (default 5000, as the seed)")
    parser.add_argument("--test-size", type=positive_int, default=1000, metavar="N",
                        help="test sequences (default 1000, as the seed)")
    parser.add_argument("--inspect", action="store_true",
                        help="after training, show what the hidden states do on test sequences")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object as the last line of stdout (no progress bar on stdout)")


def run(args: argparse.Namespace) -> int:
    keep_freed_memory()  # training steps reuse their buffers (rnnplay.malloc)
    import torch

    from rnnplay.classify.experiment import ClassifyConfig
    from rnnplay.device import resolve_device

    if args.inspect and args.task != "classify":
        raise UserError("--inspect looks at the classifier's hidden states; use it with --task classify")
    device = resolve_device(args.device)
    _check_fits(args, device)
    config = ClassifyConfig(task=args.task, epochs=args.epochs, seed=args.seed, device=str(device),
                            n_train=args.train_size, n_test=args.test_size, cell=args.cell or "tanh")
    threads = torch.get_num_threads()
    if device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        # A 64-unit model does ~microsecond GEMMs: one intra-op thread is as fast, and on a busy
        # 2-core machine many times faster (threads spinning against other processes). See README.
        torch.set_num_threads(1)
    try:
        return _run(args, config, device)
    finally:
        torch.set_num_threads(threads)


def _check_fits(args: argparse.Namespace, device) -> None:
    """The inputs are drawn whole (float32, on the CPU, copied to the device): refuse what cannot fit."""
    from rnnplay.classify.data import INPUT_SIZE, SEQ_LEN
    from rnnplay.training.memory import check_fits

    n = args.train_size + args.test_size
    need = 4 * n * SEQ_LEN * INPUT_SIZE * 2  # inputs and a transformed copy while labelling
    check_fits(f"--train-size {args.train_size} --test-size {args.test_size} ({n:,} sequences of "
               f"{SEQ_LEN}x{INPUT_SIZE})", need, "cpu", "lower --train-size (the default is 5000)")


def _run(args: argparse.Namespace, config, device) -> int:
    import torch
    from rich.console import Console

    from rnnplay.classify.experiment import run_experiment

    err = Console(stderr=True, soft_wrap=True)
    out = Console(soft_wrap=True)
    view = _ProgressView(err, config, quiet=args.json and not err.is_terminal)

    stop = threading.Event()
    box: dict = {}

    done = threading.Event()

    def work() -> None:
        try:
            box["result"] = run_experiment(config, view.on_event, stop)
        except BaseException as exc:  # re-raised in the main thread
            box["error"] = exc
        finally:
            done.set()

    # Training runs in a worker so that Ctrl-C (delivered to the main thread) can stop it cleanly
    # after the batch in flight. Wait on an Event, not Thread.join: a join interrupted by Ctrl-C
    # can leave is_alive() wrong on CPython 3.11.
    worker = threading.Thread(target=work, name="rnnplay-classify", daemon=True)
    interrupted = False
    with view:
        worker.start()
        while not done.is_set():
            try:
                done.wait(0.1)
            except KeyboardInterrupt:
                if interrupted:
                    raise  # a second Ctrl-C quits at once
                interrupted = True
                stop.set()
                err.print("stopping after the batch in flight (Ctrl-C again to quit now)", highlight=False)
    worker.join()
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, torch.OutOfMemoryError):
            raise UserError(f"out of memory on {device}; try --device cpu") from None
        raise exc
    result = box["result"]

    inspection = None
    if args.inspect and result.epochs_done > 0:
        from rnnplay.classify.inspect import inspect_hidden

        inspection = inspect_hidden(result.model, result.data.test.x, result.data.test.y, n_sequences=3)

    if args.json:
        payload = result.summary()
        if inspection is not None:
            from rnnplay.classify.inspect import inspection_to_dict

            payload["inspection"] = inspection_to_dict(inspection, units_per_sequence=5)
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        _print_summary(out, result)
        if inspection is not None:
            _print_inspection(out, inspection)
    if result.reason == "failed":
        print(f"rnnplay classify: error: {result.message}", file=sys.stderr)
        return 1
    if interrupted or result.reason == "stopped":
        if not args.json:
            print(f"rnnplay classify: stopped after {result.epochs_done} epochs", file=sys.stderr)
        return 130
    return 0


class _ProgressView:
    """Turns the experiment's events into a rich progress bar (or plain lines when not a terminal)."""

    def __init__(self, console, config, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        self.console = console
        self.quiet = quiet
        self.live = console.is_terminal and not quiet
        self.tasks: dict[str, int] = {}
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, disable=not self.live,
        )
        self.total_epochs = config.total_epochs

    def __enter__(self) -> _ProgressView:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def on_event(self, event) -> None:
        if isinstance(event, Started) and event.experiment is not None:
            info = event.experiment
            for name, params in zip(info.variants, info.variant_params):
                self.tasks[name] = self.progress.add_task(name, total=self.total_epochs, stats=f"{params:,} params")
            if not self.live and not self.quiet:
                self.console.print(f"training on {event.device}: {info.n_train} train / "
                                   f"{info.n_test} test sequences, {self.total_epochs} epochs",
                                   highlight=False)
        elif isinstance(event, EpochDone):
            stats = (f"loss {event.train_loss:.4f}  train {event.train_accuracy:.3f}  "
                     f"test {event.test_accuracy:.3f}  lr {event.lr:.2e}")
            if self.live:
                self.progress.update(self.tasks[event.variant], completed=event.epoch, stats=stats)
            elif not self.quiet:
                self.console.print(f"{event.variant} epoch {event.epoch}/{event.total_epochs}  {stats}  "
                                   f"({event.epoch_s:.2f} s)", highlight=False)


def _print_summary(out, result) -> None:
    from rich.table import Table

    cfg = result.config
    done = result.epochs_done
    cell = "" if cfg.cell == "tanh" else f" --cell {cfg.cell}"
    title = (f"rnnplay classify --task {cfg.task}{cell}: {done}/{cfg.total_epochs} epochs, seed {cfg.seed}, "
             f"{result.device}, {result.seconds:.1f} s")
    table = Table(title=title, title_justify="left")
    for col in ("model", "params", "train loss", "train acc", "test acc"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for v in result.variants:
        last = v.history[-1] if v.history else None
        table.add_row(v.name, f"{v.params:,}", f"{last.train_loss:.4f}" if last else "-",
                      f"{last.train_accuracy:.3f}" if last else "-", f"{last.test_accuracy:.3f}" if last else "-")
    out.print(table)
    if cfg.task == "tagging":
        bound = ((cfg.seq_len - 1) * 0.75 + 1.0) / cfg.seq_len
        out.print(f"Accuracies are per step. A left-to-right tagger cannot see x[t+1] when it tags step t: "
                  f"its best possible accuracy is about {bound:.3f}.", highlight=False)
    else:
        out.print("train acc: running accuracy over each epoch's batches, dropout on; "
                  "test acc: eval mode on the held-out set.", highlight=False)


def _print_inspection(out, ins) -> None:
    from rich.table import Table

    from rnnplay.classify.inspect import sparkline

    seqs = len(ins.sequences)
    out.print(f"\n[bold]What the hidden states do[/bold] (last layer, {ins.hidden_size} units, "
              f"{ins.n_points:,} test steps)")
    units = Table(title="Units that track the running mean of the input (Pearson r over all test steps)",
                  title_justify="left")
    units.add_column("unit", justify="right")
    units.add_column("r", justify="right")
    units.add_column("activation on test sequence 0 (-1..1)")
    for u, r in ins.top_units:
        units.add_row(str(u), f"{r:+.3f}", sparkline(ins.sequences[0].hidden[u], -1.0, 1.0))
    out.print(units)
    acc = ins.accuracy_by_step
    out.print(f"Readout of the head at step t vs the final label: {sparkline(acc, 0.0, 1.0)}  "
              f"{acc[0]:.2f} at step 1, {acc[len(acc) // 2 - 1]:.2f} at step {len(acc) // 2}, "
              f"{acc[-1]:.2f} at step {len(acc)}. P(class 1) vs running mean: r = {ins.prediction_mean_r:+.3f}",
              highlight=False)
    for s in ins.sequences[:seqs]:
        t = Table(title=f"test sequence {s.index}: label {s.label}, predicted {s.predicted}", title_justify="left")
        t.add_column("series")
        t.add_column("over the steps")
        t.add_column("first", justify="right")
        t.add_column("last", justify="right")
        rm_hi = max(abs(v) for v in s.running_mean) or 1.0
        t.add_row("running mean", sparkline(s.running_mean, -rm_hi, rm_hi),
                  f"{s.running_mean[0]:+.3f}", f"{s.running_mean[-1]:+.3f}")
        t.add_row("P(class 1)", sparkline(s.prob_class1, 0.0, 1.0), f"{s.prob_class1[0]:.2f}", f"{s.prob_class1[-1]:.2f}")
        for u, _ in ins.top_units[:3]:
            h = s.hidden[u]
            t.add_row(f"unit {u}", sparkline(h, -1.0, 1.0), f"{h[0]:+.2f}", f"{h[-1]:+.2f}")
        out.print(t)
