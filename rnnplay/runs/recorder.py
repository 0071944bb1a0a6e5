"""The run recorder: one more consumer of the trainer's events, writing one run into the store.

    recorder = Recorder.open(path, kind="train")      # None (after one line to ``warn``) if unusable
    trainer.fit(FanOut(reporter.emit, recorder), stop)
    recorder.close()

Per event it only appends a tuple to a deque (``StepDone`` comes every step); a writer thread
commits what piled up once every ``flush_s`` seconds (default 1) in one transaction, and at the
end. The thread also writes a heartbeat every few seconds while the run is open, so a killed
process is seen as interrupted (see :mod:`rnnplay.runs.store`); what was flushed before the kill
stays. A store that fails mid-run (disk full, file removed) gets one line to ``warn`` and the run
trains on unrecorded: the recorder never raises into the trainer.

A ``Started`` after a ``Finished`` (the app pauses and resumes one trainer) continues the same run
row. A run resumed from a checkpoint in a new process is a new row whose ``parent_id`` is the run
that wrote that checkpoint, when the store has it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sqlite3
import sys
import threading
import time
from collections import deque
from typing import Any, Callable

from rnnplay.runs.store import RunStore, StoreUnavailable
from rnnplay.training.events import CheckpointSaved, EvalDone, Failed, Finished, SampleReady, Started, StepDone

HEARTBEAT_S = 5.0


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _num(x: Any) -> float | None:
    """A float for the store, None for missing or non-finite values."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


class Recorder:
    """Records the events of one run (see the module docstring)."""

    def __init__(self, store: RunStore, *, name: str | None = None, kind: str = "train", sweep: str | None = None,
                 flush_s: float = 1.0, warn: Callable[[str], None] = _stderr) -> None:
        self.store = store
        self.name, self.kind, self.sweep = name, kind, sweep
        self.flush_s = flush_s
        self.warn = warn
        self.run_id: int | None = None
        self._init_from: str | None = None  # the parent checkpoint of a fine-tuned run (kept in its summary)
        self._steps: deque = deque()
        self._evals: deque = deque()
        self._samples: deque = deque()
        self._fields: dict[str, Any] = {}
        self._last: StepDone | None = None
        self._active = False
        self._broken = False
        self._lock = threading.Lock()  # one user of the connection at a time
        self._fields_lock = threading.Lock()  # never held across a write: the trainer thread takes it
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._handlers = {StepDone: self._step, EvalDone: self._eval, SampleReady: self._sample,
                          CheckpointSaved: self._checkpoint, Started: self._started, Finished: self._finished,
                          Failed: self._failed}

    @classmethod
    def open(cls, path: str | None, warn: Callable[[str], None] = _stderr, **kwargs: Any) -> Recorder | None:
        """A recorder on the store at ``path``; None when ``path`` is None (recording off) or the
        store cannot be used, after one line to ``warn`` saying so."""
        if path is None:
            return None
        try:
            store = RunStore.open(path)
        except StoreUnavailable as exc:
            warn(f"rnnplay: {exc}; this run trains unrecorded")
            return None
        return cls(store, warn=warn, **kwargs)

    # ---- the consumer -----------------------------------------------------------------------

    def __call__(self, event: Any) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None and not self._broken:
            handler(event)

    def _step(self, e: StepDone) -> None:
        self._steps.append((e.step, e.elapsed_s, e.loss, e.lr, e.grad_norm, e.chars_per_s))
        self._last = e

    def _eval(self, e: EvalDone) -> None:
        if e.exact:  # the end-of-run loss over the whole split: it reaches the store in the run's summary
            return
        last = self._last
        self._evals.append((e.step, last.elapsed_s if last else None, _num(e.val_loss)))
        with self._fields_lock:
            self._fields["val_loss"] = _num(e.val_loss)
            if e.best:
                self._fields["best_val"] = _num(e.val_loss)

    def _sample(self, e: SampleReady) -> None:
        self._samples.append((e.step, e.text))

    def _checkpoint(self, e: CheckpointSaved) -> None:
        with self._fields_lock:
            self._fields["best_checkpoint" if e.reason == "best" else "checkpoint"] = os.path.abspath(e.path)

    def _started(self, e: Started) -> None:
        facts = run_facts(e)
        with self._lock:
            try:
                if self.run_id is None:
                    source = facts["resumed_from"] or facts["parent"]  # resumed, or fine-tuned from
                    parent = self.store.by_checkpoint(source) if source else None
                    self._init_from = facts["parent"] if not facts["resumed_from"] else None
                    config = facts["config"]
                    self.run_id = self.store.create_run(
                        name=self.name or "", kind=self.kind, sweep=self.sweep, config=config,
                        corpus=facts["corpus"], corpus_location=facts["corpus_location"],
                        corpus_chars=facts["corpus_chars"], corpus_hash=facts["corpus_hash"],
                        device=e.device, params=e.params, steps=e.step, total_steps=e.total_steps,
                        checkpoint=config.get("out") or None, parent_id=parent.id if parent else None,
                        summary={"references": facts["references"], "init_from": self._init_from})
                    if not self.name:
                        self.store.update_run(self.run_id, name=default_name(facts, self.run_id))
                else:
                    self.store.update_run(self.run_id, status="running", ended_at=None, total_steps=e.total_steps,
                                          heartbeat_at=time.time(), message=None)
            except (sqlite3.Error, OSError) as exc:
                self._break(exc)
                return
        self._active = True
        if self._thread is None:
            self._thread = threading.Thread(target=self._writer, name="rnnplay-recorder", daemon=True)
            self._thread.start()

    def _finished(self, e: Finished) -> None:
        summary = e.summary
        fields: dict[str, Any] = {"status": e.reason, "ended_at": time.time(), "steps": e.step}
        if summary is not None:
            s = _plain(summary)
            if self._init_from:
                s["init_from"] = self._init_from
            fields["summary"] = s
            for key, column in (("train_loss", "train_loss"), ("val_loss", "val_loss"),
                                ("best_val_loss", "best_val"), ("avg_chars_per_s", "chars_per_s"),
                                ("elapsed_s", "elapsed_s")):
                if s.get(key) is not None:
                    fields[column] = _num(s[key])
        self._end(fields)

    def _failed(self, e: Failed) -> None:
        status = "diverged" if e.diverged else "failed"
        self._end({"status": status, "ended_at": time.time(), "message": e.message})

    def _end(self, fields: dict[str, Any]) -> None:
        self._active = False
        with self._fields_lock:
            self._fields.update(fields)
        self.flush()

    # ---- writing ----------------------------------------------------------------------------

    def _writer(self) -> None:
        last_beat = 0.0
        while not self._closing:
            self._wake.wait(self.flush_s)
            self._wake.clear()
            if self._closing or self._broken:
                break
            now = time.time()
            if self._steps or self._evals or self._samples or self._fields or (
                    self._active and now - last_beat >= HEARTBEAT_S):
                self.flush()
                last_beat = now

    def flush(self) -> None:
        """Write what piled up (and the run's current figures) in one transaction."""
        if self.run_id is None or self._broken:
            return
        with self._lock:
            steps = [self._steps.popleft() for _ in range(len(self._steps))]
            evals = [self._evals.popleft() for _ in range(len(self._evals))]
            samples = [self._samples.popleft() for _ in range(len(self._samples))]
            with self._fields_lock:
                fields, self._fields = self._fields, {}
            fields.setdefault("heartbeat_at", time.time())
            if self._active:
                fields.setdefault("status", "running")  # back from "interrupted" after a suspend
            if steps:
                step, elapsed, loss, _lr, _norm, cps = steps[-1]
                fields.setdefault("steps", step)
                fields.setdefault("train_loss", _num(loss))
                fields.setdefault("chars_per_s", _num(cps))
                fields.setdefault("elapsed_s", _num(elapsed))
            try:
                self.store.write(self.run_id, steps, evals, samples, fields)
            except (sqlite3.Error, OSError) as exc:
                self._break(exc)

    def _break(self, exc: BaseException) -> None:
        self._broken = True
        self._steps.clear()
        self._evals.clear()
        self._samples.clear()
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.warn(f"rnnplay: the run store {self.store.path!r} failed ({text}); the run trains on unrecorded")

    def close(self, status: str | None = None) -> None:
        """Stop the writer and write the rest. A run still open ends with ``status`` (default
        "interrupted": the caller was stopped before the trainer said how the run ended)."""
        if self._active:
            self._end({"status": status or "interrupted", "ended_at": time.time()})
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()
        self.store.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close("interrupted" if exc_type is not None else None)


# ---- what a Started event says about the run -----------------------------------------------------

def _plain(obj: Any) -> Any:
    """Dataclasses (nested) as plain dicts for JSON."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def run_facts(e: Started) -> dict[str, Any]:
    """Corpus, config, references and resume source from a Started event (a classifier
    experiment, which carries no RunInfo, is recorded with its device and size only)."""
    run = e.run
    if run is None:
        return {"corpus": None, "corpus_location": None, "corpus_chars": None, "corpus_hash": None,
                "config": {}, "references": {}, "resumed_from": None, "parent": None}
    corpus = run.corpus
    return {"corpus": corpus.name, "corpus_location": corpus.location, "corpus_chars": corpus.chars,
            "corpus_hash": corpus.fingerprint, "config": run.config.to_dict(),
            "references": run.references.to_dict(), "resumed_from": run.resumed_from,
            "parent": run.parent}


def default_name(facts: dict[str, Any], run_id: int) -> str:
    """``<corpus>-<layers>x<hidden>-<id>``, e.g. ``play-3x256-12``."""
    cfg = facts["config"]
    stem = os.path.splitext(os.path.basename(str(facts["corpus"] or "run")))[0] or "run"
    size = f"{cfg.get('layers')}x{cfg.get('hidden')}" if cfg.get("hidden") else "run"
    return f"{stem}-{size}-{run_id}"
