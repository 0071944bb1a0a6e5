"""What each cell learns: the seed's tanh cell against the GRU and the LSTM, same data, same budget.

    python benchmarks/bench_cells.py --only checkable                  # brackets and arithmetic (~10 min)
    python benchmarks/bench_cells.py --only budget --corpus ../shared/corpora/tinyshakespeare.txt --minutes 10
    python benchmarks/bench_cells.py --quick                           # smoke run of both parts

checkable: on the bundled corpora whose samples can be checked (``brackets``: is a line balanced;
``arithmetic``: is ``a+b=c`` right), each cell is trained with the same settings, steps, width and
seed (same data order), then scored exactly on the whole validation split and sampled: 32 samples
of --sample-len characters from a newline at temperature --temperature, with a fixed generator; the
share of their complete lines that are valid (the generated corpus itself is 100% valid).

budget: ``rnnplay sweep --grid cell=tanh,gru,lstm --minutes M --jobs J`` on --corpus (recorded in
a temporary run store), then the exact validation loss each cell reached in the same wall time. A
gated cell costs more per step, so it takes fewer steps in the budget: that is the comparison a
user with M minutes cares about. By default the three train at once (``--jobs 3``, one torch
thread each, sharing the cores equally), so the machine's slow and fast minutes fall on all three
alike; ``--jobs 1`` trains them one after another with the whole machine each. Figures must be
measured alone on the machine.
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
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from _timing import describe_load, eprint, load_info  # noqa: E402

import torch  # noqa: E402

CELLS = ("tanh", "gru", "lstm")


def valid_share(corpus: str, text: str) -> tuple[int, int]:
    """(valid, complete lines) of a sample; the part after the last newline is cut off mid-line."""
    from rnnplay.corpora import gen_arithmetic, gen_brackets

    whole = text[: text.rfind("\n") + 1] if "\n" in text else ""
    lines = [ln for ln in whole.splitlines() if ln.strip()]
    if corpus == "brackets":
        return sum(gen_brackets.balanced(ln) for ln in lines), len(lines)
    correct, _well_formed = gen_arithmetic.check(whole)
    return correct, len(lines)


def train_one(corpus: str, cell: str, args: argparse.Namespace) -> dict:
    from rnnplay.pipeline import TrainConfig, build_run
    from rnnplay.training.trainer import Trainer

    config = TrainConfig(corpus=corpus, cell=cell, steps=args.steps, hidden=args.hidden, layers=args.layers,
                         embed=args.embed, seed=args.seed, sample_every=0, out=None, device="cpu")
    trainer = Trainer(build_run(config), hidden_stats_hz=0)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    train_s = time.perf_counter() - t0
    val = trainer.evaluate(max_chars=None)
    run = trainer.run
    model = run.model.eval()
    prime = run.vocab.encode("\n").long().view(1, 1).expand(32, 1).contiguous()  # (32, 1)
    with torch.no_grad():
        out = model.generate(prime, args.sample_len, temperature=args.temperature,
                             generator=torch.Generator().manual_seed(args.seed))  # (32, N)
    valid = lines = 0
    for row in out:
        v, n = valid_share(corpus, run.vocab.decode(row))
        valid, lines = valid + v, lines + n
    return {"corpus": corpus, "cell": cell, "params": sum(p.numel() for p in model.parameters()),
            "val_loss": val, "train_s": train_s, "valid": valid, "lines": lines,
            "valid_share": valid / lines if lines else 0.0}


def checkable(args: argparse.Namespace) -> list[dict]:
    rows = []
    for corpus in ("brackets", "arithmetic"):
        for cell in CELLS:
            r = train_one(corpus, cell, args)
            eprint(f"{corpus} {cell}: val {r['val_loss']:.4f}, valid {r['valid']}/{r['lines']} in {r['train_s']:.0f} s")
            rows.append(r)
    return rows


def budget(args: argparse.Namespace) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bench-cells-") as tmp:
        env = dict(os.environ, RNNPLAY_RUNS_DB=os.path.join(tmp, "runs.db"),
                   PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [sys.executable, "-m", "rnnplay", "sweep", "--corpus", args.corpus, "--grid", "cell=" + ",".join(CELLS),
               "--minutes", f"{args.minutes:g}", "--hidden", str(args.hidden), "--layers", str(args.layers),
               "--seed", str(args.seed), "--device", "cpu", "--checkpoint-dir", tmp, "--jobs", str(args.jobs),
               "--json"]
        eprint("running: " + " ".join(cmd[1:]))
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.minutes * 60 * 6 + 600)
        if p.returncode != 0:
            raise SystemExit(f"bench_cells: the sweep failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
        results = json.loads(p.stdout.strip().splitlines()[-1])
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("checkable", "budget"), default=None)
    ap.add_argument("--corpus", default=os.path.join(ROOT, "..", "shared", "corpora", "tinyshakespeare.txt"),
                    help="the budget part's corpus (default ../shared/corpora/tinyshakespeare.txt)")
    ap.add_argument("--minutes", type=float, default=10.0, help="the budget part's minutes per cell (default 10)")
    ap.add_argument("--jobs", type=int, default=3, help="the budget part's cells trained at once (default 3)")
    ap.add_argument("--steps", type=int, default=1000, help="the checkable part's steps per cell (default 1000)")
    ap.add_argument("--hidden", type=int, default=128, help="hidden units (default 128)")
    ap.add_argument("--layers", type=int, default=2, help="layers (default 2)")
    ap.add_argument("--embed", type=int, default=32, help="the checkable part's embedding (default 32)")
    ap.add_argument("--sample-len", type=int, default=400, help="characters per sample (default 400)")
    ap.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (default 0.8)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="smoke run: 40 steps, 0.1 minute, width 32")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args()
    if args.quick:
        args.steps, args.minutes, args.hidden, args.layers, args.embed, args.sample_len = 40, 0.1, 32, 1, 16, 100
    load_before = load_info()
    out: dict = {"hidden": args.hidden, "layers": args.layers}
    if args.only in (None, "checkable"):
        out["checkable"] = checkable(args)
    if args.only in (None, "budget"):
        if not os.path.exists(args.corpus):
            eprint(f"bench_cells: {args.corpus} not found; skipping the budget part")
        else:
            out["budget"] = budget(args)
    out["load_before"], out["load_after"] = describe_load(load_before), describe_load(load_info())
    if args.json:
        print(json.dumps(out))
        return
    if "checkable" in out:
        print(f"checkable corpora: {args.layers}x{args.hidden}, embed {args.embed}, {args.steps} steps of 32x64, "
              f"seed {args.seed}; 32 samples x {args.sample_len} chars at T={args.temperature:g}")
        print("| corpus | cell | params | exact val loss | valid lines | train s |")
        print("|---|---|---|---|---|---|")
        for r in out["checkable"]:
            print(f"| {r['corpus']} | {r['cell']} | {r['params']:,} | {r['val_loss']:.4f} | "
                  f"{r['valid_share'] * 100:.1f}% ({r['valid']}/{r['lines']}) | {r['train_s']:.0f} |")
    if "budget" in out:
        print(f"equal budget: {args.minutes:g} minutes per cell on {os.path.basename(args.corpus)}, "
              f"{args.layers}x{args.hidden}, rnnplay sweep --grid cell=tanh,gru,lstm --jobs {args.jobs}")
        print("| cell | steps | exact val loss | best estimate |")
        print("|---|---|---|---|")
        for r in out["budget"]:
            print(f"| {r.get('settings', {}).get('cell', r.get('cell', '?'))} | {r.get('steps', '?')} | "
                  f"{_f(r.get('val_loss_exact'))} | {_f(r.get('best_val_loss'))} |")
    print(f"load before {out['load_before']}, after {out['load_after']}")


def _f(v) -> str:
    return f"{v:.4f}" if isinstance(v, (int, float)) else "-"


if __name__ == "__main__":
    main()
