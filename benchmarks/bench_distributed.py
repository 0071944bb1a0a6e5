"""The cost of distributed training on CPU: a 2-process gloo run vs one process, same global batch.

    python benchmarks/bench_distributed.py                # the lead's figures (default model, 300 steps)
    python benchmarks/bench_distributed.py --quick        # smoke run: tiny model, a few steps
    python benchmarks/bench_distributed.py --json

Both sides are real commands run as subprocesses, taking turns (the order reversed every other
round): ``python -m rnnplay train ... --json`` with the machine's cores for its intra-op threads,
and ``python -m torch.distributed.run --nproc-per-node 2 --standalone -m rnnplay train ...`` with
the cores split between the two ranks. Each round gives two paired ratios, 2-process / 1-process:
of the whole command's wall time (start-up, rendezvous and the end-of-run exact validation
included), and of the training time alone (rank 0's clock, ``elapsed_s`` of the JSON summary).
The target (issue 14) is <= 1.3 for the wall time on a 2-core machine: two processes cannot be
faster there; the ratio bounds the overhead (gradient all-reduce, the agreed stop, the loss
all-reduce, two interpreters).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout
from _timing import eprint, load_info, summarize  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = 1.3


def _env(threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def _run(cmd: list[str], env: dict, timeout: float) -> tuple[float, float]:
    """(wall seconds of the command, training seconds from its JSON summary)."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"bench_distributed: {' '.join(cmd[:6])}... failed ({done.returncode}):\n{done.stderr[-2000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return wall, float(summary["elapsed_s"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: tiny model, few steps, one round")
    p.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 4; 1 with --quick)")
    p.add_argument("--steps", type=int, default=None, help="steps per run (default 300; 10 with --quick)")
    p.add_argument("--corpus", default="play")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rounds = args.rounds or (1 if args.quick else 4)
    steps = args.steps or (10 if args.quick else 300)
    model = (["--hidden", "32", "--layers", "2", "--embed", "16", "--seq-len", "16", "--batch-size", "8"]
             if args.quick else [])  # else the defaults: 3 x 256, batch 32 x 64
    cores = os.cpu_count() or 2
    with tempfile.TemporaryDirectory(prefix="rnnplay-bench-dist-") as tmp:
        common = ["train", "--corpus", args.corpus, "--steps", str(steps), *model, "--device", "cpu",
                  "--sample-every", "0", "--checkpoint-every", "0", "--eval-every", str(10**9), "--no-record",
                  "--json", "--force"]
        one = [sys.executable, "-m", "rnnplay", *common, "--out", os.path.join(tmp, "one.pt")]
        two = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
               "-m", "rnnplay", *common, "--out", os.path.join(tmp, "two.pt")]
        sides = {"1 process": (one, _env(cores)), "2 processes": (two, _env(max(1, cores // 2)))}
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
        timeout = 60 + steps * 5.0
        for r in range(rounds):
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            for name in order:
                cmd, env = sides[name]
                times[name].append(_run(cmd, env, timeout))
                eprint(f"round {r + 1}/{rounds} {name}: wall {times[name][-1][0]:.2f} s, "
                       f"training {times[name][-1][1]:.2f} s")
    wall_ratios = sorted(b[0] / a[0] for a, b in zip(times["1 process"], times["2 processes"]))
    train_ratios = sorted(b[1] / a[1] for a, b in zip(times["1 process"], times["2 processes"]))
    result = {
        "steps": steps, "rounds": rounds, "quick": args.quick, "cores": cores,
        "wall_s": {k: summarize([t[0] for t in v]) for k, v in times.items()},
        "train_s": {k: summarize([t[1] for t in v]) for k, v in times.items()},
        "wall_ratio": wall_ratios[len(wall_ratios) // 2],
        "train_ratio": train_ratios[len(train_ratios) // 2],
        "target": TARGET,
        "load": load_info(),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"2-process gloo / 1 process, same global batch, {steps} steps, {rounds} rounds on {cores} cores:")
        print(f"  wall time of the command: ratio {result['wall_ratio']:.2f} (target <= {TARGET})")
        print(f"  training time (rank 0's clock): ratio {result['train_ratio']:.2f}")
        if args.quick:
            print("  (--quick: a smoke run; the figures mean nothing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
