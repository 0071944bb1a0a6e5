"""The char-RNN training loop: a plain loop that reports events and stops on a threading.Event.

    trainer = Trainer(build_run(config))
    trainer.fit(emit, stop)     # until config.steps, or until stop is set; call again to continue

API used by the CLI and the TUI:

* ``fit(emit, stop)`` emits ``Started``; ``StepDone`` every step (cheap: consumers buffer);
  ``HiddenStats`` at most ``hidden_stats_hz`` times a second (default 0: never; the app asks for
  2 a second): 8 evenly spaced units' activations over the first sequence of the step's batch,
  per layer, and each layer's tanh saturation, the fraction of |h| > 0.95 over its first 8
  sequences; copied from that step's own training forward (``rnnplay.model.fast.tap_hidden``), so
  they cost no extra pass and never change the training; a model the tap cannot reach gets an
  extra no-grad pass instead; a gated cell adds its gates' saturation (and the LSTM a few units of
  c), recomputed from those states by its kind's probe (rnnplay.training.probes);
  ``EvalDone`` every ``eval_every`` steps; ``SampleReady`` every ``sample_every`` steps and, with
  ``sample_every_s`` > 0, also every that many seconds (the app's "every few seconds");
  ``CheckpointSaved``; then ``Finished("completed" | "stopped")`` or ``Failed(message)``.
  It is re-entrant: after a stop, ``fit`` again continues from the current step (pause/resume).
  On stop it saves a checkpoint (reason "stopped"), at the end one (reason "finished").
* ``lock`` (a ``threading.Lock``) is held during every step, evaluation and save (events are
  emitted after it is released): another thread takes it to read the weights between steps. ``sampler()`` does that and returns a
  :class:`rnnplay.model.Sampler` snapshot; ``vocab`` decodes its output. ``step`` is the step count.
* ``save(path=None, reason="manual")`` writes an atomic checkpoint (default ``config.out``).
* ``train_step()`` runs one step with no events (benchmarks use it); ``evaluate()`` the validation loss.

Checkpoints: ``config.out`` every ``checkpoint_every`` steps, on stop and at the end, and the best
validation loss so far in ``best_path(out)`` (``run.pt`` -> ``run.best.pt``). With ``out=None``
nothing is written unless ``save(path)`` is called.

Divergence guard: a non-finite loss or gradient norm, or a loss above ``2 ln V + 1`` (twice the
uniform guess) for 3 steps running, stops the run. The trainer then restores the last good state
(it keeps an in-memory copy every 50 steps), saves it with reason "diverged", and emits ``Failed``
saying what to change (lower --lr or --clip). The trainer never prints and never sets the thread
count: its callers decide.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Callable

import torch
import torch.nn.functional as F

from rnnplay.pipeline import Run
from rnnplay.training.checkpoint import best_path
from rnnplay.training.events import (
    CheckpointSaved,
    EvalDone,
    Event,
    Failed,
    Finished,
    HiddenStats,
    RunInfo,
    RunSummary,
    SampleReady,
    Started,
    StepDone,
)
from rnnplay.training import checkpoint as run_state
from rnnplay.training import probes
from rnnplay.model import fast
from rnnplay.model.cell import map_state

GOOD_EVERY = 50
EXPLODE_STEPS = 3


class Diverged(Exception):
    """Raised inside the loop; fit() turns it into a Failed event. ``step``: the step that failed."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


class Trainer:
    """Trains a :class:`~rnnplay.pipeline.Run` (see the module docstring)."""

    def __init__(self, run: Run, hidden_stats_hz: float = 0.0, hidden_units: int = 8,
                 sample_every_s: float = 0.0, exact_on_stop: bool = False) -> None:
        self.run = run
        # Measure the exact validation loss also when stopped (after the checkpoint is saved); the
        # CLI turns it on for Ctrl-C and off again for a hang-up or SIGTERM, the app leaves it off.
        self.exact_on_stop = exact_on_stop
        self.sample_every_s = sample_every_s
        self.lock = threading.Lock()
        self.hidden_stats_hz = hidden_stats_hz
        self.hidden_units = hidden_units
        self._params = [p for p in run.model.parameters() if p.requires_grad]
        from rnnplay.training.precision import Precision

        self.precision = Precision(run.config.precision, run.device)
        self.forward = run.model  # what the training step calls: the model, or its DDP wrapper (training/distributed.py)
        self._vocab_size = len(run.vocab)
        self._explode_at = 2.0 * math.log(max(2, self._vocab_size)) + 1.0
        self._over = 0
        self._good: dict | None = None
        self._elapsed = 0.0
        self._chars_per_s = 0.0
        self._steps_run = 0  # steps taken by this Trainer (this process), for the average rate
        self._last_hidden_t = 0.0
        self._tapped: list[torch.Tensor] | None = None  # this step's hidden states, when tapped
        self._last_sample_t = time.perf_counter()
        self.last_checkpoint: str | None = None
        self._final_val: tuple[int, float] | None = None  # (step, exact validation loss) at the end

    # ---- public state ------------------------------------------------------------------------

    @property
    def step(self) -> int:
        return self.run.state.step

    @property
    def vocab(self):
        return self.run.vocab

    @property
    def config(self):
        return self.run.config

    def set_total_steps(self, steps: int) -> None:
        """Change the run's target (e.g. to continue a finished run in the TUI)."""
        import dataclasses

        with self.lock:
            self.run.config = dataclasses.replace(self.run.config, steps=steps)
            self.run.schedule.total = steps

    def out_of_time(self) -> bool:
        """Whether the run's time budget (``config.minutes``) is used up."""
        minutes = self.run.config.minutes
        return minutes is not None and self.run.state.trained_s >= minutes * 60.0

    def sampler(self):
        """A Sampler over a snapshot of the live weights (taken between steps, under ``lock``)."""
        from rnnplay.model import Sampler

        with self.lock:
            return Sampler(self.run.model)

    def save(self, path: str | None = None, reason: str = "manual") -> str:
        """Write a checkpoint atomically (default: ``config.out``) and return its path."""
        with self.lock:
            return self._save(path, reason)

    # ---- one step ----------------------------------------------------------------------------

    def train_step(self, tap_hidden: bool = False) -> tuple[float, float]:
        """One optimizer step, no events. Returns (loss, grad norm before clipping).

        With ``tap_hidden`` it keeps a small copy of the forward's hidden states for HiddenStats.
        """
        run = self.run
        model, state = run.model, run.state
        x, y, reset = next(run.batches)  # (B, T) long each
        x = x.to(run.device, non_blocking=True)
        y = y.to(run.device, non_blocking=True)
        if reset or state.hidden is None:
            state.hidden = model.init_state(x.shape[0], device=run.device)  # (L, B, H), or the LSTM's (h, c)
        lr = run.schedule(state.step, state.trained_s)
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        model.train()
        h0 = state.hidden  # (L, B, H) or (h, c); replaced below, never modified in place
        self._tapped = None
        with self.precision.autocast():  # fp32: nothing; bf16/fp16: autocast (rnnplay.training.precision)
            if tap_hidden:
                with fast.tap_hidden(self._take_states):
                    logits, h_n = self.forward(x, h0)  # (B, T, V), (L, B, H)
            else:
                logits, h_n = self.forward(x, h0)  # (B, T, V), (L, B, H)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        run.optimizer.zero_grad(set_to_none=True)
        scaler = self.precision.scaler  # fp16 only; disabled, it passes the loss and the step through
        scaler.scale(loss).backward()
        if scaler.is_enabled():
            scaler.unscale_(run.optimizer)  # clip and report the true gradients
        if run.config.clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self._params, run.config.clip)
        else:
            norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in self._params if p.grad is not None]))
        loss_v, norm_v = self._loss_value(loss), float(norm)
        overflow = scaler.is_enabled() and not math.isfinite(norm_v)  # fp16: the scaler skips this step
        if not (math.isfinite(loss_v) and (math.isfinite(norm_v) or overflow)):
            raise Diverged(f"the loss became {loss_v} (gradient norm {norm_v})", state.step + 1)
        scaler.step(run.optimizer)
        scaler.update()
        state.hidden = map_state(lambda t: t.detach().float(), h_n)  # carried in float32 whatever the precision
        state.step += 1
        state.train_loss.append(loss_v)
        if loss_v > self._explode_at:
            self._over += 1
            if self._over >= EXPLODE_STEPS:
                raise Diverged(f"the loss exploded to {loss_v:.2f} (above {self._explode_at:.2f}, "
                               f"twice a uniform guess, {EXPLODE_STEPS} steps running)", state.step)
        else:
            self._over = 0
        self._last_batch = (x, h0)
        return loss_v, norm_v

    def _loss_value(self, loss: torch.Tensor) -> float:
        """The step's loss as a float (a distributed run averages it over the ranks)."""
        return loss.detach().item()

    @torch.no_grad()
    def evaluate(self, max_chars: int | None = -1) -> float:
        """Mean cross-entropy (nats/char) on validation, state carried along each stream.

        By default the periodic estimate: ``config.eval_chars`` characters spread evenly over the
        whole split. ``max_chars=None`` measures the exact loss over every validation character.
        """
        from rnnplay.data.batches import val_chunks

        run, model = self.run, self.run.model
        cfg = run.config
        chars = cfg.eval_chars if max_chars == -1 else max_chars
        was_training = model.training
        model.eval()
        total, count, h = 0.0, 0, None
        try:
            for x, y in val_chunks(run.val_data, cfg.batch_size, cfg.seq_len, chars):
                x, y = x.to(run.device), y.to(run.device)  # (b, t) each
                logits, h = model(x, h)  # (b, t, V)
                total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum"))
                count += y.numel()
        finally:
            model.train(was_training)
        return total / max(1, count)

    # ---- the loop ----------------------------------------------------------------------------

    def fit(self, emit: Callable[[Event], None], stop: threading.Event) -> None:
        """Train until ``config.steps`` or until ``stop`` is set (see the module docstring)."""
        run = self.run
        state = run.state
        with self.lock:
            run_state.restore_rng(state)
            if self._good is None or self._good["step"] != state.step:
                self._good = run_state.snapshot(run)
        emit(Started(state.step, run.config.steps, sum(p.numel() for p in self._params), str(run.device),
                     resumed=state.step > 0, run=self.run_info()))
        t_last = time.perf_counter()
        pending: list[Event] = []  # events are emitted outside the lock, so a consumer may take it
        try:
            while state.step < run.config.steps and not stop.is_set() and not self.out_of_time():
                hidden_due = (self.hidden_stats_hz > 0
                              and time.perf_counter() - self._last_hidden_t >= 1.0 / self.hidden_stats_hz)
                with self.lock:
                    loss, norm = self.train_step(tap_hidden=hidden_due)
                    now = time.perf_counter()
                    dt = max(1e-9, now - t_last)
                    t_last = now
                    self._elapsed += dt
                    state.trained_s += dt
                    self._steps_run += 1
                    cps = run.batches.chars_per_step / dt
                    self._chars_per_s = cps if self._chars_per_s == 0 else 0.9 * self._chars_per_s + 0.1 * cps
                    pending.append(StepDone(state.step, run.config.steps, loss, run.optimizer.param_groups[0]["lr"],
                                            norm, self._chars_per_s, self._elapsed))
                    self._periodic(pending.append, now, hidden_due)
                _flush(pending, emit)
        except Diverged as exc:
            with self.lock:
                self._on_diverged(pending.append, str(exc), exc.step)
            _flush(pending, emit)
            return
        except Exception as exc:
            _flush(pending, emit)
            emit(Failed(state.step, f"{type(exc).__name__}: {exc}"))
            raise
        with self.lock:
            run_state.capture_rng(state)
            if state.step >= run.config.steps or self.out_of_time():
                if not state.val_step or state.val_step[-1] != state.step:
                    self._eval(pending.append)
                self._final_val = (state.step, self.evaluate(max_chars=None))
                pending.append(EvalDone(state.step, self._final_val[1], best=False, exact=True))
                reason, ckpt_reason = "completed", "finished"
            else:
                reason, ckpt_reason = "stopped", "stopped"
            if run.config.out is not None:
                pending.append(CheckpointSaved(state.step, self._save(None, ckpt_reason), ckpt_reason))
        _flush(pending, emit)
        if reason == "stopped" and self.exact_on_stop:  # the checkpoint is on disk: this may be cut short
            try:
                with self.lock:
                    self._final_val = (state.step, self.evaluate(max_chars=None))
                emit(EvalDone(state.step, self._final_val[1], best=False, exact=True))
            except KeyboardInterrupt:  # a second Ctrl-C skips the measurement, nothing else
                pass
        emit(Finished(state.step, reason, summary=self.summary()))

    def _periodic(self, emit: Callable[[Event], None], now: float, hidden_due: bool) -> None:
        run, state, cfg = self.run, self.run.state, self.run.config
        if hidden_due:
            stats = self._hidden_stats()
            if stats is not None:
                emit(stats)
            self._last_hidden_t = time.perf_counter()
        if state.step % cfg.eval_every == 0:
            self._eval(emit)
        by_time = self.sample_every_s > 0 and now - self._last_sample_t >= self.sample_every_s
        if (cfg.sample_every and state.step % cfg.sample_every == 0) or by_time:
            self._last_sample_t = now
            text = self._sample(cfg.sample_len)
            if text is not None:
                emit(SampleReady(state.step, text))
        if cfg.out is not None and cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0:
            emit(CheckpointSaved(state.step, self._save(None, "periodic"), "periodic"))
        if state.step % GOOD_EVERY == 0 and self._over == 0:
            self._good = run_state.snapshot(run)

    def _eval(self, emit: Callable[[Event], None]) -> None:
        state, cfg = self.run.state, self.run.config
        val = self.evaluate()
        best = math.isfinite(val) and (state.best_val_loss is None or val < state.best_val_loss)
        state.val_step.append(state.step)
        state.val_loss.append(val)
        if best:
            state.best_val_loss = val
        emit(EvalDone(state.step, val, best))
        if best and cfg.out is not None:
            path = self._save(best_path(cfg.out), "best")
            emit(CheckpointSaved(state.step, path, "best"))

    def _on_diverged(self, emit: Callable[[Event], None], what: str, at: int) -> None:
        run, cfg = self.run, self.run.config
        good = self._good
        run_state.load_snapshot(run, good)
        self._over = 0
        where, path = "", None
        if cfg.out is not None:
            path = self._save(None, "diverged")
            emit(CheckpointSaved(run.state.step, path, "diverged"))
            where = f" and saved them to {path}"
        emit(Failed(run.state.step,
                    f"training diverged at step {at}: {what}. Kept the weights of step {run.state.step}{where}. "
                    + _divergence_advice(cfg, path), diverged=True))

    # ---- hidden stats, samples, checkpoints ------------------------------------------------

    def _take_states(self, layers: list[torch.Tensor]) -> None:
        if self._tapped is None:  # the model's first stack forward is its RNN
            self._tapped = probes.tapped_states(layers)

    def _hidden_stats(self) -> HiddenStats | None:
        last = getattr(self, "_last_batch", None)
        if self._tapped is not None:
            return probes.tapped_stats(self.run, self._tapped, last, self.hidden_units)
        return None if last is None else probes.hidden_stats(self.run, last, self.hidden_units)

    def _sample(self, length: int) -> str | None:
        return probes.live_sample(self.run, length)

    def _save(self, path: str | None, reason: str) -> str:
        from rnnplay.errors import UserError
        from rnnplay.training.checkpoint import save_checkpoint

        target = path or self.run.config.out
        if target is None:
            raise UserError("no checkpoint path: set --out (config.out) or pass a path")
        run_state.capture_rng(self.run.state)
        written = save_checkpoint(run_state.payload(self.run, reason), target)
        if path is None:
            self.last_checkpoint = written
        return written

    def run_info(self) -> RunInfo:
        run = self.run
        return RunInfo(run.corpus_info, run.references, run.config, run.batches.chars_per_step, run.resumed_from,
                       getattr(run, "parent", None), len(run.vocab))

    def summary(self) -> RunSummary:
        state, out = self.run.state, self.run.config.out
        return RunSummary(
            step=state.step,
            train_loss=state.train_loss[-1] if state.train_loss else None,
            val_loss=state.val_loss[-1] if state.val_loss else None,
            val_loss_exact=self._final_val[1] if self._final_val and self._final_val[0] == state.step else None,
            val_chars=int(self.run.val_data.numel()) - 1,
            best_val_loss=state.best_val_loss,
            checkpoint=self.last_checkpoint,
            best_checkpoint=best_path(out) if out and state.best_val_loss is not None else None,
            chars_per_s=self._chars_per_s,
            avg_chars_per_s=self._steps_run * self.run.batches.chars_per_step / self._elapsed if self._elapsed else 0.0,
            elapsed_s=self._elapsed,
            references=self.run.references,
        )


def _divergence_advice(cfg, path: str | None) -> str:
    """What to change: a learning rate at most the default (3x lower than the one that diverged), a tighter clip."""
    from rnnplay.config import TrainConfig

    default = TrainConfig()
    lr = min(cfg.lr / 3, default.lr)
    clip = max(0.5, min(cfg.clip / 5, default.clip)) if cfg.clip > 0 else 1.0
    clip_now = f"now {cfg.clip:g}" if cfg.clip > 0 else "it is off"
    then = f"rnnplay train --resume {path} --lr {lr:.2g}" if path else f"train again with --lr {lr:.2g}"
    return (f"Lower --lr (now {cfg.lr:g}; try {lr:.2g}) or set --clip {clip:g} ({clip_now}), then: {then}")


def _flush(pending: list, emit: Callable[[Event], None]) -> None:
    for event in pending:
        emit(event)
    pending.clear()
