"""Metrics out of the store: CSV, JSON Lines, TensorBoard event files.

CSV and JSON Lines hold one row per recorded step and run: ``run_id, run_name, step, elapsed_s,
train_loss, lr, grad_norm, chars_per_s, val_loss`` (``val_loss`` where the step was evaluated;
an evaluation at a step with no metric row gets a row of its own). TensorBoard export writes one
sub-folder per run (``DIR/<id>-<name>``) with ``loss/train``, ``loss/val``, ``lr``, ``grad_norm``
and ``chars_per_s`` scalars and the config as text; it needs the optional ``tensorboard``
package (``pip install 'rnnplay[tensorboard]'``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import sys
from collections.abc import Iterator, Sequence
from typing import IO, Any

from rnnplay.errors import UserError
from rnnplay.runs.store import RunRow, RunStore

FIELDS = ("run_id", "run_name", "step", "elapsed_s", "train_loss", "lr", "grad_norm", "chars_per_s", "val_loss")
TENSORBOARD_HINT = "TensorBoard export needs the tensorboard package: pip install 'rnnplay[tensorboard]'"


def rows(store: RunStore, runs: Sequence[RunRow]) -> Iterator[dict[str, Any]]:
    for r in runs:
        evals = {step: val for step, _e, val in store.evals(r.id)}
        seen = set()
        for step, elapsed, loss, lr, norm, cps in store.metrics(r.id):
            seen.add(step)
            yield dict(zip(FIELDS, (r.id, r.name, step, elapsed, loss, lr, norm, cps, evals.get(step))))
        for step, val in sorted(evals.items()):
            if step not in seen:
                yield dict(zip(FIELDS, (r.id, r.name, step, None, None, None, None, None, val)))


def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def open_output(path: str, force: bool) -> IO[str]:
    """``-`` is stdout; an existing file is refused unless ``force`` (never overwrite by surprise)."""
    if path == "-":
        return sys.stdout
    if os.path.isdir(path):
        raise UserError(f"{path!r} is a folder; give a file path for the export")
    if os.path.exists(path) and not force:
        raise UserError(f"{path!r} exists; choose another file, or pass --force to replace it")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        return open(path, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise UserError(f"cannot write {path!r} ({exc.strerror or exc}); choose another path") from None


def write_csv(store: RunStore, runs: Sequence[RunRow], fh: IO[str]) -> int:
    writer = csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    n = 0
    for row in rows(store, runs):
        writer.writerow({k: ("" if v is None else _clean(v)) for k, v in row.items()})
        n += 1
    return n


def write_jsonl(store: RunStore, runs: Sequence[RunRow], fh: IO[str]) -> int:
    n = 0
    for row in rows(store, runs):
        fh.write(json.dumps({k: _clean(v) for k, v in row.items()}) + "\n")
        n += 1
    return n


def write_tensorboard(store: RunStore, runs: Sequence[RunRow], folder: str) -> list[str]:
    """One event-file folder per run under ``folder``; returns the folders written."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError(TENSORBOARD_HINT) from None
    written = []
    for r in runs:
        sub = os.path.join(folder, f"{r.id}-{re.sub(r'[^A-Za-z0-9_.=-]+', '-', r.name)}")
        if os.path.exists(sub) and os.listdir(sub):
            raise UserError(f"{sub!r} exists and is not empty; export to another folder")
        writer = SummaryWriter(log_dir=sub)
        try:
            for step, elapsed, loss, lr, norm, cps in store.metrics(r.id):
                wall = r.started_at + elapsed if elapsed is not None else None
                for tag, v in (("loss/train", loss), ("lr", lr), ("grad_norm", norm), ("chars_per_s", cps)):
                    if v is not None and math.isfinite(v):
                        writer.add_scalar(tag, v, step, walltime=wall)
            for step, elapsed, val in store.evals(r.id):
                if val is not None and math.isfinite(val):
                    wall = r.started_at + elapsed if elapsed is not None else None
                    writer.add_scalar("loss/val", val, step, walltime=wall)
            writer.add_text("config", "\n".join(f"    {k} = {v}" for k, v in sorted(r.config.items())), 0)
        finally:
            writer.close()
        written.append(sub)
    return written
