"""What `rnnplay train` shows: a rich progress bar on stderr, short samples, a summary on stdout.

On a terminal the bar shows step, loss, validation loss, chars/s and ETA and redraws a few times a
second (StepDone events only update numbers). Without a terminal (a log file, CI) it prints one
plain line per evaluation instead. Everything but the summary goes to stderr.
"""

from __future__ import annotations

import math
import sys
import time

from rnnplay.config import STEPS_MAX
from rnnplay.training.events import (
    CheckpointSaved,
    EvalDone,
    Failed,
    Finished,
    SampleReady,
    Started,
    StepDone,
)


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _existing(path: str | None) -> str | None:
    """``path`` if a file is there (a resumed run that never beat its best wrote no best file of its own)."""
    import os

    return path if path and os.path.isfile(path) else None


def _short(text: str, width: int = 100, lines: int = 3) -> str:
    out = [ln[:width] for ln in text.strip("\n").splitlines() if ln.strip()][:lines]
    return "\n".join("  | " + ln for ln in out)


class Reporter:
    """Consumes trainer events (``emit``) and renders them; ``result`` builds the JSON summary."""

    def __init__(self, json_mode: bool = False) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.live = self.console.is_terminal
        self.json_mode = json_mode
        self.progress = None
        self.task = None
        self.started: Started | None = None
        self.last_step: StepDone | None = None
        self.val_loss: float | None = None
        self.failed: Failed | None = None
        self.finished: Finished | None = None
        self._last_draw = 0.0
        self._note = ""
        self._by_time = False  # --minutes without --steps: the bar follows the clock, steps are uncapped

    # ---- context: the progress bar lives while training runs --------------------------------

    def __enter__(self) -> Reporter:
        if self.live:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("step {task.fields[step]}"),
                BarColumn(bar_width=24),
                TextColumn("loss {task.fields[loss]}  val {task.fields[val]}  {task.fields[cps]} chars/s"),
                TextColumn("ETA"), TimeRemainingColumn(),
                TextColumn("{task.fields[note]}"),
                console=self.console, refresh_per_second=4, transient=False,
            )
            self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None and self.failed is not None:  # else the error itself is the one line the CLI prints
            self._log(f"rnnplay train: {self.failed.message}", style="bold red")
        if self.progress is not None:
            self.progress.__exit__(*exc)
            self.progress = None

    def stopping(self, signame: str | None) -> None:
        """Called from the signal handler: show that a stop is under way (no I/O in the handler)."""
        self._note = f"stopping ({signame}), saving; Ctrl-C again aborts"

    def _log(self, text: str, style: str | None = None) -> None:
        (self.progress.console if self.progress is not None else self.console).print(text, style=style, markup=False)

    # ---- events ------------------------------------------------------------------------------

    def emit(self, event) -> None:
        if isinstance(event, StepDone):
            self.last_step = event
            now = time.monotonic()
            if self.progress is not None and now - self._last_draw > 0.1:
                self._last_draw = now
                self.progress.update(self.task, completed=event.elapsed_s if self._by_time else event.step,
                                     step=self._step_text(event.step, event.total_steps), loss=_fmt(event.loss),
                                     cps=f"{event.chars_per_s:,.0f}", note=self._note)
        elif isinstance(event, Started):
            self._started(event)
        elif isinstance(event, EvalDone) and event.exact:
            self._log(f"validation loss over the whole split: {_fmt(event.val_loss)} nats/char (exact)")
        elif isinstance(event, EvalDone):
            self.val_loss = event.val_loss
            if self.progress is not None:
                self.progress.update(self.task, val=_fmt(event.val_loss) + ("*" if event.best else ""))
            else:
                s = self.last_step
                self._log(f"step {event.step}/{s.total_steps if s else '?'}  loss {_fmt(s.loss if s else None)}  "
                          f"val {_fmt(event.val_loss)}{' (best)' if event.best else ''}  "
                          f"{s.chars_per_s if s else 0:,.0f} chars/s")
        elif isinstance(event, SampleReady):
            self._log(f"sample at step {event.step}:\n{_short(event.text)}", style="dim")
        elif isinstance(event, CheckpointSaved):
            if event.reason in ("stopped", "diverged", "manual"):
                self._log(f"saved {event.path} ({event.reason}, step {event.step})")
            if event.reason == "stopped" and self._note.startswith("stopping (SIGINT)"):
                self._note = "saved; measuring the exact validation loss, Ctrl-C again skips it"
                if self.progress is not None:
                    self.progress.update(self.task, note=self._note)
        elif isinstance(event, Failed):
            self.failed = event  # shown when the run ends (__exit__)
        elif isinstance(event, Finished):
            self.finished = event
            if self.progress is not None and self.task is not None:
                self.progress.update(self.task, completed=self.progress.tasks[0].total if self._by_time else event.step)

    def _started(self, event: Started) -> None:
        self.started = event
        info = event.run
        corpus, refs, cfg = info.corpus, info.references, info.config
        what = "resuming" if event.resumed else "training"
        self._log(
            f"{what} on {corpus.name}: {corpus.chars:,} chars, vocab {corpus.vocab_size}"
            + (f" (the model's {info.vocab_size}: the parent's and the corpus' characters), "
               if info.vocab_size not in (None, corpus.vocab_size) else ", ") +
            f"validation = last {corpus.val_chars:,} chars; CharRNN {cfg.layers}x{cfg.hidden}"
            f"{'' if cfg.cell == 'tanh' else ' ' + cfg.cell} "
            f"({event.params:,} params) on {event.device}; from step {event.step} " + (
                f"for {cfg.minutes:g} minutes" if event.total_steps >= STEPS_MAX else f"to {event.total_steps}"
                + (f" or {cfg.minutes:g} minutes" if cfg.minutes is not None else ""))
        )
        self._log(f"reference losses (nats/char, validation): uniform {_fmt(refs.uniform)}, "
                  f"unigram {_fmt(refs.unigram)}, bigram {_fmt(refs.bigram)}", style="dim")
        if self.progress is not None:
            self._by_time = cfg.minutes is not None and event.total_steps >= STEPS_MAX
            total = cfg.minutes * 60.0 if self._by_time else event.total_steps
            completed = 0.0 if self._by_time else event.step
            step = self._step_text(event.step, event.total_steps)
            if self.task is None:
                self.task = self.progress.add_task("train", total=total, completed=completed, step=step,
                                                   loss="-", val="-", cps="-", note="")
            else:
                self.progress.update(self.task, total=total, completed=completed, step=step)

    def _step_text(self, step: int, total: int) -> str:
        return f"{step:>6}" if self._by_time else f"{step:>6}/{total}"

    # ---- the end ------------------------------------------------------------------------------

    def result(self, trainer) -> dict:
        summary = trainer.summary()
        status = ("diverged" if self.failed.diverged else "failed") if self.failed else (self.finished.reason if self.finished else "stopped")
        info = self.started.run if self.started else None
        return {
            "status": status,
            "step": summary.step,
            "total_steps": trainer.config.steps,
            "train_loss": summary.train_loss,
            "val_loss": summary.val_loss,
            "best_val_loss": summary.best_val_loss,
            "val_loss_exact": summary.val_loss_exact,
            "val_chars": summary.val_chars,
            "eval_chars": trainer.config.eval_chars,
            "checkpoint": summary.checkpoint,
            "best_checkpoint": _existing(summary.best_checkpoint),
            "corpus": info.corpus.name if info else None,
            "vocab_size": (info.vocab_size or info.corpus.vocab_size) if info else None,  # the model's
            "corpus_vocab_size": info.corpus.vocab_size if info else None,
            "params": self.started.params if self.started else None,
            "device": self.started.device if self.started else None,
            "chars_per_s": round(summary.avg_chars_per_s, 1),
            "recent_chars_per_s": round(summary.chars_per_s, 1),
            "elapsed_s": round(summary.elapsed_s, 3),
            "references": summary.references.to_dict(),
            "message": self.failed.message if self.failed else None,
        }

    def print_summary(self, r: dict) -> None:
        refs = r["references"]
        out = sys.stdout
        spread = min(r["eval_chars"], r["val_chars"])
        of = "" if r["total_steps"] >= STEPS_MAX else f"/{r['total_steps']}"
        print(f"{r['status']} at step {r['step']}{of}: train loss {_fmt(r['train_loss'])}, "
              f"val loss {_fmt(r['val_loss'])} (best {_fmt(r['best_val_loss'])}; estimates over {spread:,} "
              f"chars spread over the split) nats/char; "
              f"bigram reference {_fmt(refs.get('bigram'))}, uniform {_fmt(refs.get('uniform'))}", file=out)
        if r["val_loss_exact"] is not None:
            print(f"exact validation loss over all {r['val_chars']:,} validation chars: "
                  f"{_fmt(r['val_loss_exact'])} nats/char", file=out)
        print(f"{r['chars_per_s']:,.0f} chars/s on average over {r['elapsed_s']:.1f} s "
              f"(recently {r['recent_chars_per_s']:,.0f})", file=out)
        if r["checkpoint"]:
            print(f"checkpoint: {r['checkpoint']}", file=out)
        if r["best_checkpoint"]:
            print(f"best so far: {r['best_checkpoint']}", file=out)
        if r["checkpoint"]:
            print(f"sample: rnnplay sample --checkpoint {r['checkpoint']}", file=out)
