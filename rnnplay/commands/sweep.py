"""`rnnplay sweep`: train every combination of a grid of settings, record each, rank them.

    rnnplay sweep --corpus C --grid hidden=128,256 lr=1e-3,3e-3 [--minutes M | --steps N] [--jobs J]

A grid key is any training setting (``rnnplay train --help``); its values are parsed and checked by
the setting's declaration, and every combination is checked before anything runs. Any other
training flag (``--steps``, ``--minutes``, ``--layers`` ...) applies to every combination.

Each combination is one ``python -m rnnplay train --json`` process (a crash or a divergence ends
that combination only), one at a time, or ``--jobs J`` at once (on a machine with several GPUs,
one GPU each; on CPU the cores are shared out). Each is recorded in the run store under the sweep's
name, with its checkpoint and log in ``checkpoints/<sweep>/``. Run the same command again to resume:
completed combinations are skipped, stopped or interrupted ones continue from their checkpoints,
failed ones run again. The sweep ends with a table ranked by best validation loss.

Exit codes: 0 every combination completed, 1 some failed, 2 bad input, 130 stopped (Ctrl-C).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from rnnplay.errors import UserError

POLL_S = 0.2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rnnplay.config import add_setting_arguments

    parser.add_argument("--grid", nargs="+", action="extend", required=True, metavar="NAME=V1,V2",
                        help="a setting and the values to try, e.g. hidden=128,256 lr=1e-3,3e-3 (repeatable)")
    parser.add_argument("--jobs", type=_positive, default=1, metavar="J",
                        help="combinations trained at once (default 1; one GPU each where there are several)")
    parser.add_argument("--name", metavar="NAME", help="the sweep's name in the run store (default: sweep-<hash "
                        "of the grid and settings>, so the same command resumes the same sweep)")
    parser.add_argument("--checkpoint-dir", default="checkpoints", metavar="DIR",
                        help="checkpoints and logs go to DIR/<sweep>/ (default ./checkpoints)")
    parser.add_argument("--runs-db", metavar="PATH", help="the run store (default checkpoints/runs.db, or $RNNPLAY_RUNS_DB)")
    parser.add_argument("--json", action="store_true", help="make the last stdout line a JSON list of the results")
    names = tuple(s.name for s in _sweepable())
    add_setting_arguments(parser, names=names, help_suffix=" (every combination)")


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _sweepable():
    from rnnplay.config import specs

    return [s for s in specs() if s.flag and s.name != "out"]


@dataclass
class Job:
    label: str  # "hidden=128,lr=0.001"
    grid: dict[str, Any]
    settings: dict[str, Any]  # base + grid
    name: str = ""
    out: str = ""
    log: str = ""
    resume: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"
    run_id: int | None = None
    seconds: float = 0.0


def _value(v: Any) -> str:
    from rnnplay.config import Spec

    return Spec("").show(v) if not isinstance(v, str) else v


def plan(grid_args: list[str], base: dict[str, Any]) -> list[Job]:
    """Every combination, checked; a typo or an out-of-range value is a UserError before any run."""
    from rnnplay.config import TrainConfig, parse_assignment

    grid: dict[str, list[Any]] = {}
    for text in grid_args:
        key, values = parse_assignment(text)
        if key in grid:
            raise UserError(f"--grid {key} is given twice; list all its values once: {key}=V1,V2")
        if key in base:
            raise UserError(f"{key} is both a --grid key and --{key.replace('_', '-')}; keep one")
        if len(set(map(_value, values))) != len(values):
            raise UserError(f"--grid {text!r} repeats a value")
        grid[key] = values
    jobs = []
    for combo in itertools.product(*grid.values()):
        chosen = dict(zip(grid, combo))
        settings = {**base, **chosen}
        TrainConfig(**settings)  # the declared bounds, and the checks across settings
        jobs.append(Job(",".join(f"{k}={_value(v)}" for k, v in chosen.items()), chosen, settings))
    return jobs


def sweep_id(grid_args: list[str], base: dict[str, Any]) -> str:
    text = json.dumps({"grid": sorted(grid_args), "base": {k: _value(v) for k, v in sorted(base.items())}})
    return "sweep-" + hashlib.sha1(text.encode()).hexdigest()[:8]


def _flags(settings: dict[str, Any]) -> list[str]:
    from rnnplay.config import spec

    out = []
    for k, v in settings.items():
        out += [spec(k).option, _value(v)]
    return out


def run(args: argparse.Namespace) -> int:
    from rnnplay.config import given_settings
    from rnnplay.runs.store import RunStore, StoreUnavailable, resolve_path

    base = given_settings(args, names=tuple(s.name for s in _sweepable()))
    jobs = plan(args.grid, base)
    name = args.name or sweep_id(args.grid, base)
    if not re.fullmatch(r"[A-Za-z0-9_.=-]+", name):
        raise UserError(f"--name {name!r}: use letters, digits, '-', '_', '.' or '='")
    folder = os.path.join(args.checkpoint_dir, name)
    db = resolve_path(args.runs_db)
    done: dict[str, Any] = {}
    if db is not None:
        try:
            with RunStore.open(db) as store:
                for r in reversed(store.runs(sweep=name)):  # oldest first: the newest attempt wins
                    done[r.name] = r
        except StoreUnavailable as exc:
            print(f"rnnplay sweep: {exc}; the sweep runs unrecorded (and cannot be resumed)", file=sys.stderr)
            db = None
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {folder!r} ({exc.strerror}); choose another --checkpoint-dir") from None
    todo = []
    for job in jobs:
        job.name = f"{name}/{job.label}"
        stem = re.sub(r"[^A-Za-z0-9_.=-]+", "-", job.label)
        job.out, job.log = os.path.join(folder, stem + ".pt"), os.path.join(folder, stem + ".log")
        prev = done.get(job.name)
        if prev is not None and prev.status == "completed":
            job.status, job.run_id = "skipped", prev.id
            job.result = {"best_val_loss": prev.best_val, "val_loss_exact": prev.summary.get("val_loss_exact"),
                          "step": prev.steps, "elapsed_s": prev.elapsed_s, "status": "completed"}
            continue
        if prev is not None and prev.status in ("stopped", "interrupted") and os.path.isfile(job.out):
            job.resume = job.out
        todo.append(job)
    skipped = len(jobs) - len(todo)
    print(f"sweep {name}: {len(jobs)} combinations" + (f", {skipped} already completed" if skipped else "")
          + f"; {len(todo)} to train, {min(args.jobs, max(1, len(todo)))} at a time; logs in {folder}",
          file=sys.stderr, flush=True)
    interrupted = _run_jobs(todo, args, name, db)
    _report(jobs, args.json)
    if interrupted:
        print(f"rnnplay sweep: stopped; run the same command again to resume", file=sys.stderr)
        return 130
    return 0 if all(j.status in ("completed", "skipped") for j in jobs) else 1


def _command(job: Job, name: str, db: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "rnnplay", "train", "--json", "--name", job.name, "--sweep-id", name]
    cmd += ["--runs-db", db] if db is not None else ["--no-record"]
    if job.resume:
        return cmd + ["--resume", job.resume] + _flags(job.settings)
    return cmd + ["--out", job.out, "--force"] + _flags(job.settings)


def _devices(args: argparse.Namespace) -> list[str | None]:
    """What each job slot gets as CUDA_VISIBLE_DEVICES (None: leave it)."""
    if args.jobs < 2 or getattr(args, "device", None) not in (None, "auto", "cuda"):
        return [None]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [v for v in visible.split(",") if v.strip()]
    else:
        try:
            import torch

            ids = [str(i) for i in range(torch.cuda.device_count())]
        except Exception:
            ids = []
    return ids if len(ids) > 1 else [None]


def _run_jobs(todo: list[Job], args: argparse.Namespace, name: str, db: str | None) -> bool:
    devices = _devices(args)
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    running: dict[int, tuple[Job, subprocess.Popen, Any, float]] = {}
    queue = list(todo)
    total, finished = len(todo), 0
    try:
        while queue or running:
            while queue and len(running) < args.jobs:
                slot = next(i for i in range(args.jobs) if i not in running)
                job = queue.pop(0)
                env = dict(os.environ)
                if devices[slot % len(devices)] is not None:
                    env["CUDA_VISIBLE_DEVICES"] = devices[slot % len(devices)]
                if args.jobs > 1 and "OMP_NUM_THREADS" not in os.environ:
                    env["OMP_NUM_THREADS"] = str(threads)
                log = open(job.log, "a", encoding="utf-8")
                log.write(f"$ {' '.join(_command(job, name, db))}\n")
                log.flush()
                proc = subprocess.Popen(_command(job, name, db), stdout=subprocess.PIPE, stderr=log, text=True,
                                        env=env)
                running[slot] = (job, proc, log, time.monotonic())
                print(f"  start {job.label}" + (" (continuing)" if job.resume else ""), file=sys.stderr, flush=True)
            time.sleep(POLL_S)
            for slot, (job, proc, log, t0) in list(running.items()):
                if proc.poll() is None:
                    continue
                _finish(job, proc, log, t0)
                del running[slot]
                finished += 1
                best = job.result.get("best_val_loss")
                print(f"  [{finished}/{total}] {job.label}: {job.status}"
                      + (f", best val {best:.3f}" if best is not None else "")
                      + (f" (run {job.run_id})" if job.run_id else "") + f", {job.seconds:.0f} s"
                      + ("" if job.status == "completed" else f"; log: {job.log}"), file=sys.stderr, flush=True)
    except KeyboardInterrupt:  # the children got the same SIGINT: they stop and save
        for job, proc, log, t0 in running.values():
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            _finish(job, proc, log, t0)
        return True
    return False


def _finish(job: Job, proc: subprocess.Popen, log, t0: float) -> None:
    out = proc.stdout.read() if proc.stdout else ""
    log.close()
    job.seconds = time.monotonic() - t0
    lines = [ln for ln in out.strip().splitlines() if ln.startswith("{")]
    try:
        job.result = json.loads(lines[-1]) if lines else {}
    except ValueError:
        job.result = {}
    job.run_id = job.result.get("run_id")
    rc = proc.returncode
    job.status = {0: "completed", 1: "diverged", 130: "stopped"}.get(rc, "failed")
    if rc == 2:
        job.status = "bad input"
    if job.status == "failed" and not job.result:
        job.result = {"message": f"exit code {rc}"}


def _report(jobs: list[Job], as_json: bool) -> None:
    from rnnplay.runs.report import fmt_loss, table

    def key(j: Job):  # the exact validation loss where the run measured it, else its best estimate
        exact = j.result.get("val_loss_exact")
        best = exact if exact is not None else j.result.get("best_val_loss")
        return (best is None, best if best is not None else 0.0)

    ranked = sorted(jobs, key=key)
    if as_json:
        print(json.dumps([{"rank": i + 1, "settings": j.grid, "status": "completed" if j.status == "skipped" else j.status,
                           "run_id": j.run_id, "best_val_loss": j.result.get("best_val_loss"),
                           "val_loss_exact": j.result.get("val_loss_exact"), "steps": j.result.get("step"),
                           "elapsed_s": j.result.get("elapsed_s")} for i, j in enumerate(ranked)]))
        return
    keys = list(jobs[0].grid) if jobs else []
    rows = []
    for i, j in enumerate(ranked):
        r = j.result
        rows.append([i + 1, j.run_id or "-", *(_value(j.grid[k]) for k in keys), fmt_loss(r.get("best_val_loss")),
                     fmt_loss(r.get("val_loss_exact")), r.get("step") or "-",
                     f"{r['elapsed_s']:.1f}" if r.get("elapsed_s") else "-",
                     "completed (earlier)" if j.status == "skipped" else j.status])
    sys.stdout.write("".join(line + "\n" for line in table(
        ["rank", "run", *keys, "best val", "exact val", "steps", "time s", "status"], rows, right={0, 1})))
