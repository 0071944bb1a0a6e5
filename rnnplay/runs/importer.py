"""Runs from existing checkpoints: each ``.pt`` file holds its config and metric history.

A checkpoint gives the config, corpus, step, train loss per step, validation losses, the best
validation loss and the save time; it does not hold wall times, learning rates, gradient norms or
throughput, so those stay empty for an imported run. ``run.best.pt`` files are skipped when their
``run.pt`` is imported too (same run, shorter history). A checkpoint already in the store (its
path is a run's checkpoint) is skipped, so importing a folder twice adds nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

from rnnplay.errors import UserError
from rnnplay.runs.store import RunStore

REASON_STATUS = {"finished": "completed", "stopped": "stopped", "diverged": "diverged", "manual": "stopped",
                 "periodic": "interrupted", "best": "stopped"}


@dataclass(frozen=True)
class Imported:
    path: str
    run_id: int | None  # None: skipped
    note: str  # "imported", or why it was skipped


def checkpoint_files(paths: Iterable[str]) -> list[str]:
    """The ``.pt`` files named or inside the folders named (not recursive), ``.best.pt`` last-resort."""
    files: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            files.extend(sorted(os.path.join(p, n) for n in os.listdir(p) if n.endswith(".pt")))
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise UserError(f"{p!r} is neither a checkpoint file nor a folder; give .pt files or folders of them")
    mains = {os.path.abspath(f) for f in files if not f.endswith(".best.pt")}
    out = []
    for f in files:
        if f.endswith(".best.pt") and os.path.abspath(f[: -len(".best.pt")] + ".pt") in mains:
            continue
        out.append(f)
    return out


def import_checkpoint(store: RunStore, path: str) -> Imported:
    from rnnplay.training.checkpoint import load_checkpoint

    known = store.by_checkpoint(path)
    if known is not None:
        return Imported(path, None, f"already recorded as run {known.id}")
    try:
        payload = load_checkpoint(path)
    except UserError as exc:
        return Imported(path, None, str(exc))
    config = dict(payload.get("config") or {})
    corpus = dict(payload.get("corpus") or {})
    hist = payload.get("history") or {}
    train = [float(x) for x in _list(hist.get("train_loss"))]
    val_steps = [int(x) for x in _list(hist.get("val_step"))]
    val = [float(x) for x in _list(hist.get("val_loss"))]
    step = int(payload.get("step", len(train)))
    first = step - len(train) + 1  # the history's steps end at the saved step
    saved = _saved_at(payload.get("saved_at"), path)
    best = payload.get("best_val_loss")
    weights = payload.get("weights") or {}
    params = sum(int(t.numel()) for t in weights.values() if hasattr(t, "numel")) or None
    stem = os.path.splitext(os.path.basename(path))[0]
    run_id = store.create_run(
        name=stem, kind="import", status=REASON_STATUS.get(str(payload.get("reason")), "stopped"),
        config=config, corpus=corpus.get("corpus"), corpus_location=corpus.get("corpus_location"),
        corpus_chars=corpus.get("chars"), corpus_hash=corpus.get("fingerprint"), params=params,
        started_at=saved, ended_at=saved, heartbeat_at=saved, host=None, pid=None, steps=step,
        total_steps=config.get("steps"), train_loss=train[-1] if train else None,
        val_loss=val[-1] if val else None, best_val=None if best is None else float(best),
        checkpoint=path, summary={"references": dict(payload.get("references") or {}),
                                  "imported_from": os.path.abspath(path),
                                  "rnnplay_version": payload.get("rnnplay_version")})
    store.write(run_id,
                steps=[(first + i, None, loss, None, None, None) for i, loss in enumerate(train)],
                evals=[(s, None, v) for s, v in zip(val_steps, val)])
    return Imported(path, run_id, "imported")


def _list(t) -> list:
    if t is None:
        return []
    return t.tolist() if hasattr(t, "tolist") else list(t)


def _saved_at(text, path: str) -> float:
    if isinstance(text, str):
        try:
            return time.mktime(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
        except ValueError:
            pass
    return os.path.getmtime(path)
