"""The run store's targets: recording costs <= 1% of `rnnplay train` throughput; on a store of 200
runs x 20,000 steps, `rnnplay runs` answers in < 0.5 s and `rnnplay runs show ID` in < 1 s.

    python benchmarks/bench_runs.py                 # both parts, full size (the lead's figures)
    python benchmarks/bench_runs.py --quick         # smoke run: tiny model, small store
    python benchmarks/bench_runs.py --only record   # or --only store; --json for one JSON object

Recording: `python -m rnnplay train ... --json` run as a subprocess, recorded and `--no-record`
taking turns (the order reversed every other round), each run's own average chars/s (training
time only, from its JSON summary) compared per round: the paired ratio recorded / unrecorded,
median over the rounds. 1.000 means free; the target is >= 0.99.

Recording's own work (``record_cpu``, part of ``--only record``): one recorded run of
--cpu-steps steps trained in this process with the recorder's event handling (wall time) and
its flushes (thread CPU time) accounted, as a share of the training time: a figure the machine's
noise does not move, where the paired ratio's rounds differ by several percent from each other.

Runs tab: 10 runs overlaid, the key that redraws the chart (x), timed through Textual's Pilot from
the press to the frame processed (no real terminal, no training alongside: bench_tui.py's tmux
method is the one for keypress-to-screen while a run trains), and the chart's draw alone.

Store: builds a store of --runs runs x --steps metric rows (plus an evaluation every 100 steps and
a sample every 250) in a temporary folder, then times the real commands as subprocesses (Python
start-up included), median of --repeats, and the queries alone in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout
from _timing import describe_load, eprint, load_info, summarize  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(db: str) -> dict:
    env = dict(os.environ, RNNPLAY_RUNS_DB=db, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return env


def bench_record(args: argparse.Namespace, tmp: str) -> dict:
    corpus = args.corpus
    model = (["--hidden", "16", "--layers", "1", "--embed", "8", "--seq-len", "16", "--batch-size", "4"]
             if args.quick else [])
    base = [sys.executable, "-m", "rnnplay", "train", "--corpus", corpus, "--steps", str(args.train_steps),
            "--device", args.device, "--eval-every", str(max(1, args.train_steps // 4)), "--sample-every", "0",
            "--json", *model]
    db = os.path.join(tmp, "record.db")
    rates: dict[str, list[float]] = {"recorded": [], "unrecorded": []}
    for r in range(args.rounds):
        order = ["recorded", "unrecorded"] if r % 2 == 0 else ["unrecorded", "recorded"]
        for name in order:
            cmd = base + ["--out", os.path.join(tmp, f"{name}-{r}.pt")] + (["--no-record"] if name == "unrecorded" else [])
            p = subprocess.run(cmd, capture_output=True, text=True, env=_env(db), cwd=tmp, timeout=3600)
            if p.returncode != 0:
                raise SystemExit(f"bench_runs: train failed ({p.returncode}): {p.stderr.strip().splitlines()[-1:]}")
            result = json.loads(p.stdout.strip().splitlines()[-1])
            if (result["run_id"] is None) != (name == "unrecorded"):
                raise SystemExit("bench_runs: a recorded run was not recorded (or the reverse)")
            rates[name].append(result["chars_per_s"])
        eprint(f"round {r + 1}/{args.rounds}: recorded {rates['recorded'][-1]:,.0f} chars/s, "
               f"unrecorded {rates['unrecorded'][-1]:,.0f}")
    ratios = [a / b for a, b in zip(rates["recorded"], rates["unrecorded"])]
    return {"rounds": args.rounds, "steps_per_run": args.train_steps,
            "recorded_chars_per_s": summarize(rates["recorded"]),
            "unrecorded_chars_per_s": summarize(rates["unrecorded"]),
            "paired_ratio": statistics.median(ratios), "ratios": ratios, "target_ratio": 0.99}


def bench_record_cpu(args: argparse.Namespace, tmp: str) -> dict:
    """Recording's own work in one recorded run, in this process: the time the trainer's thread
    spends handing events to the recorder (wall), plus the CPU time of every flush (the writer
    thread's transactions, thread CPU time) and of closing, against the run's training time.
    Unlike the paired ratio this does not depend on how busy the machine is; it is an upper bound
    of what recording takes from training (a flush on the other core costs the trainer nothing
    unless the two contend for a core or the GIL)."""
    import threading

    from rnnplay.config import TrainConfig
    from rnnplay.pipeline import build_run
    from rnnplay.runs.recorder import Recorder
    from rnnplay.training.events import FanOut, Finished
    from rnnplay.training.trainer import Trainer

    class Accounted(Recorder):
        event_s = flush_cpu_s = 0.0
        flushes = events = 0

        def __call__(self, event) -> None:
            t = time.perf_counter()
            super().__call__(event)
            self.event_s += time.perf_counter() - t
            self.events += 1

        def flush(self) -> None:
            t = time.thread_time()
            super().flush()
            self.flush_cpu_s += time.thread_time() - t
            self.flushes += 1

    extra = (dict(hidden=16, layers=1, embed=8, seq_len=16, batch_size=4) if args.quick else {})
    config = TrainConfig(corpus=args.corpus, steps=args.cpu_steps, device=args.device, sample_every=0,
                         eval_every=max(1, args.cpu_steps // 4), checkpoint_every=0,
                         out=os.path.join(tmp, "accounted.pt"), **extra)
    recorder = Accounted.open(os.path.join(tmp, "accounted.db"))
    summary: list = []

    def keep(event) -> None:
        if isinstance(event, Finished):
            summary.append(event.summary)

    Trainer(build_run(config)).fit(FanOut(keep, recorder), threading.Event())
    t = time.perf_counter()
    recorder.close()
    close_s = time.perf_counter() - t
    train_s = summary[0].elapsed_s
    total = recorder.event_s + recorder.flush_cpu_s + close_s
    return {"steps": args.cpu_steps, "train_s": train_s, "events": recorder.events, "event_s": recorder.event_s,
            "flushes": recorder.flushes, "flush_cpu_s": recorder.flush_cpu_s, "close_s": close_s,
            "recording_s": total, "share": total / train_s, "target_share": 0.01}


def build_store(path: str, runs: int, steps: int) -> int:
    """A store like a busy user's: ``runs`` finished runs of ``steps`` steps each; returns a run id."""
    from rnnplay.runs.store import RunStore

    rng = random.Random(0)
    now = time.time() - runs * 600
    with RunStore.open(path) as store:
        middle = None
        for i in range(runs):
            hidden, lr = rng.choice((64, 128, 256, 512)), rng.choice((1e-3, 2e-3, 3e-3))
            config = {"corpus": "play", "steps": steps, "hidden": hidden, "layers": 3, "lr": lr, "seq_len": 64,
                      "batch_size": 32, "seed": i, "lr_schedule": "cosine", "out": f"checkpoints/run{i}.pt"}
            rid = store.create_run(name=f"play-3x{hidden}-{i}", config=config, corpus="play", status="completed",
                                   started_at=now + i * 600, params=hidden * hidden * 6, total_steps=steps,
                                   steps=steps, best_val=1.5 + rng.random(), train_loss=1.4, chars_per_s=50000.0)
            loss = [4.0 * (0.6 + 0.4 / (1 + s / 500)) + rng.random() * 0.05 for s in range(1, steps + 1)]
            store.write(rid, steps=((s, s * 0.04, loss[s - 1], lr, 0.8, 50000.0) for s in range(1, steps + 1)),
                        evals=((s, s * 0.04, loss[s - 1] + 0.1) for s in range(100, steps + 1, 100)),
                        samples=((s, "a sample of two hundred characters " * 6) for s in range(250, steps + 1, 250)))
            if i == runs // 2:
                middle = rid
    return middle


def _time_cmd(cmd: list[str], db: str, repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, env=_env(db), timeout=600)
        times.append(time.perf_counter() - t0)
        if p.returncode != 0:
            raise SystemExit(f"bench_runs: {' '.join(cmd[2:])} failed: {p.stderr.strip()}")
    return summarize(times)


def bench_store(args: argparse.Namespace, tmp: str) -> dict:
    from rnnplay.runs.store import RunStore

    db = os.path.join(tmp, "big.db")
    t0 = time.perf_counter()
    rid = build_store(db, args.runs, args.steps)
    built = time.perf_counter() - t0
    eprint(f"built {args.runs} runs x {args.steps} steps in {built:.1f} s ({os.path.getsize(db) / 1e6:.0f} MB)")
    py = [sys.executable, "-m", "rnnplay"]
    startup = _time_cmd([sys.executable, "-c", "pass"], db, args.repeats)
    ls = _time_cmd(py + ["runs"], db, args.repeats)
    show = _time_cmd(py + ["runs", "show", str(rid)], db, args.repeats)
    with RunStore.open(db, readonly=True) as store:
        t0 = time.perf_counter()
        store.runs()
        q_list = time.perf_counter() - t0
        t0 = time.perf_counter()
        store.get(rid), store.metrics(rid), store.evals(rid), store.samples(rid)
        q_show = time.perf_counter() - t0
    return {"runs": args.runs, "steps": args.steps, "build_s": built, "db_mb": os.path.getsize(db) / 1e6,
            "python_startup_s": startup, "runs_list_s": ls, "runs_show_s": show,
            "list_query_s": q_list, "show_queries_s": q_show,
            "list_vs_target": ls["median"] / 0.5, "show_vs_target": show["median"] / 1.0}


def bench_tab(args: argparse.Namespace, tmp: str) -> dict:
    """The Runs tab with 10 runs of --steps steps overlaid: key press (x: step <-> time, which
    redraws the chart) to processed-and-drawn, through Textual's Pilot, and the chart's draw alone."""
    import asyncio

    os.environ["RNNPLAY_RUNS_DB"] = db = os.path.join(tmp, "tab.db")
    build_store(db, 10, args.steps)
    sys.path.insert(0, os.path.join(ROOT, "tests", "tui"))
    from tui_fakes import FakeFactory  # noqa: E402

    from rnnplay.tui.app import make_app
    from rnnplay.tui.runs_chart import RunsChart

    keys, draws, noop = [], [], []

    async def drive() -> None:
        app = make_app(trainer_factory=FakeFactory(), checkpoint_dir=tmp, warm_backend=False)
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.press("f4")
            table = app.query_one("#runs-table")
            while table.row_count < 10:
                await pilot.pause(0.05)
            table.focus()
            for _ in range(10):
                await pilot.press("space", "down")
            chart = app.query_one(RunsChart)
            while len(chart.curves) < 10:
                await pilot.pause(0.05)
            for _ in range(args.repeats * 8):
                t0 = time.perf_counter()
                await pilot.press("x")
                await pilot.pause(0)
                keys.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                chart.rows(*chart.size)
                draws.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                await pilot.press("z")  # bound to nothing: Pilot's own cost per key
                await pilot.pause(0)
                noop.append(time.perf_counter() - t0)

    asyncio.run(drive())
    from _timing import quantile

    return {"runs": 10, "steps": args.steps, "key_p50_s": quantile(keys, 0.5), "key_p95_s": quantile(keys, 0.95),
            "draw_p95_s": quantile(draws, 0.95), "n": len(keys), "noop_key_p50_s": quantile(noop, 0.5), "key_p95_vs_target": quantile(keys, 0.95) / 0.1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny model, 2 rounds, 5 runs x 500 steps")
    ap.add_argument("--only", choices=("record", "store", "tab"))
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--train-steps", type=int, default=400, help="steps of each timed rnnplay train run")
    ap.add_argument("--cpu-steps", type=int, default=1000,
                    help="steps of the run whose recording work is accounted in-process")
    ap.add_argument("--corpus", default="play")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.train_steps, args.runs, args.steps, args.repeats = 2, 40, 5, 500, 2
        args.cpu_steps = 200
    out: dict = {"load_at_start": load_info()}
    with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
        if args.only in (None, "record"):
            out["record_cpu"] = bench_record_cpu(args, tmp)
            out["record"] = bench_record(args, tmp)
        if args.only in (None, "store"):
            out["store"] = bench_store(args, tmp)
        if args.only in (None, "tab"):
            out["tab"] = bench_tab(args, tmp)
    out["load_at_end"] = load_info()
    if args.json:
        print(json.dumps(out))
        return
    print(f"machine load: {describe_load(out['load_at_start'])} -> {describe_load(out['load_at_end'])}")
    if "record" in out:
        r = out["record"]
        print(f"recording: {r['rounds']} paired rounds of {r['steps_per_run']}-step rnnplay train runs: "
              f"recorded {r['recorded_chars_per_s']['median']:,.0f} vs unrecorded "
              f"{r['unrecorded_chars_per_s']['median']:,.0f} chars/s (medians); paired ratio "
              f"{r['paired_ratio']:.3f} (target >= {r['target_ratio']}); per round "
              + ", ".join(f"{x:.3f}" for x in r["ratios"]))
    if "record_cpu" in out:
        c = out["record_cpu"]
        print(f"recording's own work in a {c['steps']}-step run ({c['train_s']:.1f} s of training): "
              f"{c['events']} events handed over in {c['event_s'] * 1e3:.1f} ms, {c['flushes']} flushes "
              f"{c['flush_cpu_s'] * 1e3:.1f} ms CPU, close {c['close_s'] * 1e3:.1f} ms: "
              f"{c['share'] * 100:.3f}% of the training time (target <= {c['target_share'] * 100:.0f}%)")
    if "store" in out:
        s = out["store"]
        print(f"store: {s['runs']} runs x {s['steps']} steps, {s['db_mb']:.0f} MB, built in {s['build_s']:.1f} s")
        print(f"  rnnplay runs          {s['runs_list_s']['median']:.3f} s median (target < 0.5: "
              f"{s['list_vs_target']:.2f}x of it); query alone {s['list_query_s'] * 1e3:.1f} ms")
        print(f"  rnnplay runs show ID  {s['runs_show_s']['median']:.3f} s median (target < 1: "
              f"{s['show_vs_target']:.2f}x of it); queries alone {s['show_queries_s'] * 1e3:.1f} ms")
        print(f"  (python start-up alone {s['python_startup_s']['median']:.3f} s)")
    if "tab" in out:
        t = out["tab"]
        print(f"Runs tab, {t['runs']} runs x {t['steps']} steps overlaid: key to screen p50 {t['key_p50_s'] * 1e3:.1f} ms, "
              f"p95 {t['key_p95_s'] * 1e3:.1f} ms (target < 100: {t['key_p95_vs_target']:.2f}x of it; Pilot, no "
              f"terminal, no training alongside); chart draw alone p95 {t['draw_p95_s'] * 1e3:.1f} ms; "
              f"a key bound to nothing p50 {t['noop_key_p50_s'] * 1e3:.1f} ms (Pilot's own cost)")


if __name__ == "__main__":
    main()
