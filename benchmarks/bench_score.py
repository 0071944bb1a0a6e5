"""`rnnplay score` at W2 size against training's forward pass, per character, and its memory.

    python benchmarks/bench_score.py                 # a 100 MB file and a 10 MB one (the lead's figures)
    python benchmarks/bench_score.py --quick         # smoke run: 2 MB and 0.2 MB, few forward rounds
    python benchmarks/bench_score.py --mb 20 --json  # one JSON object on stdout

Target (issue 15): `rnnplay score` of a 100 MB file at W2 size runs at least as fast as training's
forward pass per character, with memory that does not grow with the file.

The checkpoint: a W2-size CharRNN (vocabulary 65, embedding 256, hidden 256, 3 layers, tanh cell)
trained for a few steps by the real CLI (``python -m rnnplay train ... --no-record``, batch 64 x
seq 100) on a training text made of the bundled corpora's lines, limited to their 65 most frequent
characters, in a temporary folder. The weights are barely trained; the speed does not depend on them.

The text to score: the bundled corpora's lines (``play``, ``names``, ``arithmetic``,
``brackets``), shuffled with a seed and repeated to --mb megabytes (10^6 bytes of UTF-8). It holds
characters the model never saw: the 18 rarer characters of those corpora (about 1.8% of the text)
and, in about one line in 500, one of a few non-ASCII characters (2 to 4 bytes of UTF-8). Nothing
outside this project is copied in.

Score runs: ``python -m rnnplay score --checkpoint CK FILE --json --device D`` as a subprocess,
the path a user takes, on the big file, on a file a tenth its size and on a 1 KB file (start-up:
Python, importing torch, loading the checkpoint). Wall time from the start of the process to its
exit; peak RSS from ``os.wait4`` on that child (its own ``ru_maxrss``, not the maximum over all
children that ``RUSAGE_CHILDREN`` gives). chars/s = the file's characters (known or not; the score
reports how many it scored) / wall time. **The target uses that raw figure, start-up included, so
it is conservative**; chars/s net of the 1 KB run's wall time is printed beside it.

The peer, in the same run: training's forward pass at W2 size with the checkpoint's weights,
train mode, grad enabled, batch 64 x seq 100 from zeros (as bench_rnn.py times it), the
cross-entropy loss computed, no backward; timed with ``_timing.interleave``, half of the rounds
before the score runs and half after (a slow spell of the machine shows in both). Its chars/s =
6400 / the median. Targets: score chars/s / forward chars/s >= 1.0; peak RSS of the big file /
peak RSS of the tenth-size file <= 1.10 (the difference in MB is printed too). The score reads
its file 1 MiB at a time, so the memory comparison means something only when the smaller file
spans a few reads (--mb of 20 or more); --quick's 0.2 MB file does not, and the report says so.
Run it alone on the machine for figures; it needs about 1.2x --mb of free space in the temp folder.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout
from _timing import describe_load, eprint, load_info, machine_info, summarize  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPORA = ("play", "names", "arithmetic", "brackets")
VOCAB = 65  # W2's vocabulary
UNSEEN = ("é", "λ", "→", "€", "🙂")  # never in the training text: 2, 2, 3, 3 and 4 bytes of UTF-8
UNSEEN_EVERY = 500  # about one line in this many gets one of them
SPEED_TARGET = 1.0  # score chars/s / training forward chars/s, at least
MEMORY_TARGET = 1.10  # peak RSS big file / tenth-size file, at most
QUICK_MB = 2.0


# ---- the texts ----------------------------------------------------------------------------------

def corpus_lines() -> list[str]:
    """Every line of the bundled corpora, newline kept, in their files' order."""
    from rnnplay import corpora

    lines: list[str] = []
    for name in CORPORA:
        lines += corpora.path_of(name).read_text(encoding="utf-8").splitlines(keepends=True)
    return lines


def model_chars(lines: list[str], n: int = VOCAB) -> set[str]:
    """The n most frequent characters of the lines (ties by code point): the model's vocabulary."""
    counts = Counter("".join(lines))
    return {ch for ch, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]}


def write_text(path: str, n_bytes: int, seed: int, lines: list[str] | None = None,
               keep: set[str] | None = None, unseen_every: int = UNSEEN_EVERY) -> tuple[int, int]:
    """Write up to n_bytes of UTF-8: the lines shuffled (a new shuffle per pass), whole lines only.

    ``keep``: drop every other character (the training text). ``unseen_every``: put one of
    UNSEEN into about one line in this many (0: none). Deterministic in its arguments.
    Returns (bytes, characters) written.
    """
    lines = corpus_lines() if lines is None else lines
    rng = random.Random(seed)
    drop = None if keep is None else str.maketrans("", "", "".join(set("".join(lines)) - keep))
    written = chars = 0
    buf: list[str] = []
    buf_bytes = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        while True:
            order = list(lines)
            rng.shuffle(order)
            for line in order:
                if drop is not None:
                    line = line.translate(drop)
                if unseen_every and rng.randrange(unseen_every) == 0:
                    at = rng.randrange(len(line))  # before the newline
                    line = line[:at] + rng.choice(UNSEEN) + line[at:]
                size = len(line.encode("utf-8")) if not line.isascii() else len(line)
                if written + size > n_bytes:
                    fh.write("".join(buf))
                    return written, chars
                buf.append(line)
                buf_bytes += size
                written += size
                chars += len(line)
                if buf_bytes >= 1 << 20:
                    fh.write("".join(buf))
                    buf, buf_bytes = [], 0


# ---- the checkpoint -----------------------------------------------------------------------------

def _env() -> dict:
    return dict(os.environ, RNNPLAY_RUNS_DB="off",
                PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def make_checkpoint(tmp: str, w: dict, device: str, seed: int) -> str:
    """Train a W2-size CharRNN for 3 steps with the CLI on the 65-character training text."""
    lines = corpus_lines()
    train = os.path.join(tmp, "train.txt")
    write_text(train, 400_000, seed + 1, lines, keep=model_chars(lines), unseen_every=0)
    ck = os.path.join(tmp, "w2.pt")
    cmd = [sys.executable, "-m", "rnnplay", "train", "--corpus", train, "--steps", "3",
           "--hidden", str(w["H"]), "--layers", str(w["L"]), "--embed", str(w["I"]),
           "--batch-size", str(w["B"]), "--seq-len", str(w["T"]), "--eval-every", "3", "--sample-every", "0",
           "--checkpoint-every", "0", "--device", device, "--seed", str(seed), "--out", ck, "--no-record", "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=tmp, timeout=3600)
    if p.returncode != 0:
        sys.exit(f"rnnplay train failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return ck


# ---- the score runs -----------------------------------------------------------------------------

def score_run(ck: str, path: str, device: str, tmp: str) -> dict:
    """`python -m rnnplay score --checkpoint CK PATH --json` as a child: wall s, its peak RSS, its JSON."""
    cmd = [sys.executable, "-m", "rnnplay", "score", "--checkpoint", ck, path, "--json", "--device", device]
    out_path, err_path = os.path.join(tmp, "score.out"), os.path.join(tmp, "score.err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=_env(), cwd=tmp)
        _, status, usage = os.wait4(p.pid, 0)  # this child's own rusage
        wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    with open(out_path, encoding="utf-8") as fh:
        stdout = fh.read()
    with open(err_path, encoding="utf-8", errors="replace") as fh:
        stderr = fh.read()
    if p.returncode != 0:
        sys.exit(f"rnnplay score failed ({p.returncode}) on {path}:\n{stderr[-2000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "peak_rss_bytes": usage.ru_maxrss * 1024, "stderr": stderr.strip(),
            "score": result}  # Linux: ru_maxrss in KiB


# ---- the peer: training's forward pass ----------------------------------------------------------

def forward_fn(ck: str, w: dict, device: str, seed: int):
    """Training's forward at W2 size with the checkpoint's weights: train mode, grad on, loss, no backward.

    This process then keeps freed memory for reuse as ``rnnplay train`` does (rnnplay.malloc), so the
    forward runs as fast as it does in training; the score runs in its own process with its own
    setting."""
    import torch
    import torch.nn.functional as F

    from rnnplay.malloc import keep_freed_memory
    from rnnplay.training.checkpoint import load_checkpoint, model_from_checkpoint

    keep_freed_memory()

    model, vocab = model_from_checkpoint(load_checkpoint(ck))
    model = model.to(device).train()
    V = len(vocab)
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, V, (w["B"], w["T"]), generator=g).to(device)  # (B, T)
    y = torch.randint(0, V, (w["B"], w["T"]), generator=g).to(device)  # (B, T)

    def forward() -> None:
        with torch.enable_grad():
            logits, _ = model(x)  # (B, T, V)
            F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))

    return forward, model.describe(), V


# ---- the report ---------------------------------------------------------------------------------

def _mb(n: float) -> str:
    return f"{n / 1e6:,.0f}"


def markdown(r: dict) -> str:
    m, t = r["machine"], r["targets"]
    fwd, runs = r["forward"], r["runs"]
    big, small = runs["big"], runs["small"]
    yes = lambda ok: "yes" if ok else "**no**"  # noqa: E731
    out = [
        f"# `rnnplay score` at W2 size ({r['command']})",
        "",
        f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, torch {m['torch']} "
        f"({m['torch_threads']} threads), device {r['device']}. Load at start: {describe_load(m['load_at_start'])}; "
        f"at the end: {describe_load(r['load_at_end'])}. Wall time {r['wall_s']:.0f} s.",
        f"Model: CharRNN {r['model']}, vocabulary {r['vocab']} (3 training steps by `rnnplay train`).",
        "",
        "## Targets",
        "",
        "| target | measured | target | met |",
        "|---|---|---|---|",
        f"| score chars/s of the {big['mb']:g} MB file / training forward chars/s (start-up included) | "
        f"{big['chars_per_s']:,.0f} / {fwd['chars_per_s']:,.0f} = {t['speed_ratio']:.2f} | "
        f">= {SPEED_TARGET:.1f} | {yes(t['speed_met'])} |",
        f"| peak RSS, {big['mb']:g} MB file / {small['mb']:g} MB file | {_mb(big['peak_rss_bytes'])} / "
        f"{_mb(small['peak_rss_bytes'])} MB = {t['memory_ratio']:.3f} (+{t['memory_growth_mb']:,.1f} MB) | "
        f"<= {MEMORY_TARGET:.2f} | {yes(t['memory_met'])} |",
        "",
        "## Score runs (`python -m rnnplay score --checkpoint CK FILE --json`, a subprocess each)",
        "",
        "| file | chars | unknown to the model | wall s | chars/s | chars/s net of start-up | peak RSS MB | bits/char |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key in ("big", "small", "startup"):
        run = runs[key]
        s = run["score"]
        net = run.get("chars_per_s_net")
        net = "-" if not net else (f"{net:,.0f}" if run["wall_s"] >= 3 * runs["startup"]["wall_s"]
                                   else f"({net:,.0f}: start-up dominates)")
        out.append(f"| {run['label']} | {s['chars']:,} | {s['unknown']:,} ({len(s['unknown_chars'])} distinct) | "
                   f"{run['wall_s']:.2f} | {run['chars_per_s']:,.0f} | {net} | {_mb(run['peak_rss_bytes'])} | "
                   f"{s['bits_per_char']:.3f} |")
    notes = [f"Net of start-up (the 1 KB run's wall time subtracted), the speed ratio is {t['speed_ratio_net']:.2f}."]
    if small["bytes"] < 2 * r["read_bytes"]:
        notes.append(f"The {small['mb']:g} MB file is less than two of the score's {r['read_bytes'] / 2**20:g} MiB "
                     "reads, so it does not reach the steady state: the memory ratio of this run (a smoke run) "
                     "says nothing about growth.")
    out += [
        "",
        " ".join(notes),
        "",
        f"Training's forward (train mode, grad on, loss, no backward), batch {r['config']['B']} x seq "
        f"{r['config']['T']}: median {fwd['median'] * 1e3:.1f} ms (p25 {fwd['p25'] * 1e3:.1f}, "
        f"p75 {fwd['p75'] * 1e3:.1f}, n {fwd['n']}; before the score runs {fwd['median_before'] * 1e3:.1f}, "
        f"after {fwd['median_after'] * 1e3:.1f}) = {fwd['chars_per_s']:,.0f} chars/s.",
        "",
        "The score's wall time includes Python's start-up, importing torch and loading the checkpoint (the "
        "1 KB row), so its chars/s is a conservative figure. Peak RSS is the child's own ru_maxrss (os.wait4) "
        "and includes torch. chars counts every character of the file, known or not.",
    ]
    return "\n".join(out)


# ---- main ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=None, help="size of the big file in MB (default 100; --quick 2)")
    ap.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK_MB:g} MB and {QUICK_MB / 10:g} MB, "
                    "few forward rounds")
    ap.add_argument("--rounds", type=int, default=None, help="forward-pass rounds in all (default 40; --quick 6)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N], for the score and the forward")
    ap.add_argument("--seed", type=int, default=0, help="seed of the texts, the weights and the forward's batch")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the markdown report")
    args = ap.parse_args(argv)
    mb = args.mb if args.mb is not None else (QUICK_MB if args.quick else 100.0)
    if mb <= 0:
        ap.error("--mb must be above 0")
    rounds = args.rounds or (6 if args.quick else 40)
    if rounds < 2:
        ap.error("--rounds must be at least 2 (half before the score runs, half after)")

    from bench_rnn import WORKLOADS  # imports torch
    from _timing import interleave
    from rnnplay.commands.score import READ_BYTES

    w = WORKLOADS["W2"]
    t0 = time.perf_counter()
    report: dict = {"machine": machine_info(args.device), "device": args.device, "config": w, "args": vars(args),
                    "read_bytes": READ_BYTES, "command": "python " + " ".join(["benchmarks/bench_score.py"] + sys.argv[1:])}
    with tempfile.TemporaryDirectory(prefix="rnnplay-bench-score-") as tmp:
        eprint("training a W2-size checkpoint for 3 steps ...")
        ck = make_checkpoint(tmp, w, args.device, args.seed)
        forward, describe, V = forward_fn(ck, w, args.device, args.seed)
        report["model"], report["vocab"] = describe, V
        if V != VOCAB:
            sys.exit(f"the checkpoint's vocabulary has {V} characters, not {VOCAB}")
        lines = corpus_lines()
        files = {}
        for key, size, label in (("big", mb, f"{mb:g} MB"), ("small", mb / 10, f"{mb / 10:g} MB"),
                                 ("startup", 0.001, "1 KB (start-up)")):
            path = os.path.join(tmp, f"{key}.txt")
            n_bytes, n_chars = write_text(path, int(size * 1_000_000), args.seed, lines)
            files[key] = {"path": path, "mb": size, "label": label, "bytes": n_bytes, "chars": n_chars}
            eprint(f"wrote {label}: {n_bytes:,} bytes, {n_chars:,} chars")

        half = rounds // 2
        eprint(f"training forward: {half} rounds ...")
        before = interleave({"forward": forward}, half, 3, device=args.device)["forward"]
        runs = {}
        for key in ("startup", "small", "big"):
            f = files[key]
            eprint(f"rnnplay score {f['label']} ...")
            run = score_run(ck, f["path"], args.device, tmp)
            if run["score"]["chars"] != f["chars"]:
                sys.exit(f"rnnplay score read {run['score']['chars']:,} chars of {f['label']}, "
                         f"the file has {f['chars']:,}")
            run.update({k: f[k] for k in ("mb", "label", "bytes", "chars")})
            run["chars_per_s"] = f["chars"] / run["wall_s"]
            runs[key] = run
        for key in ("small", "big"):
            net = runs[key]["wall_s"] - runs["startup"]["wall_s"]
            runs[key]["chars_per_s_net"] = runs[key]["chars"] / net if net > 0 else None
        eprint(f"training forward: {rounds - half} rounds ...")
        after = interleave({"forward": forward}, rounds - half, 1, device=args.device)["forward"]

    fwd = summarize(before + after)
    fwd.update({"median_before": summarize(before)["median"], "median_after": summarize(after)["median"],
                "chars_per_s": w["B"] * w["T"] / fwd["median"], "times_s": before + after})
    report["forward"], report["runs"] = fwd, runs
    speed = runs["big"]["chars_per_s"] / fwd["chars_per_s"]
    memory = runs["big"]["peak_rss_bytes"] / runs["small"]["peak_rss_bytes"]
    report["targets"] = {
        "speed_ratio": speed, "speed_target": SPEED_TARGET, "speed_met": speed >= SPEED_TARGET,
        "speed_ratio_net": (runs["big"]["chars_per_s_net"] or float("nan")) / fwd["chars_per_s"],
        "memory_ratio": memory, "memory_target": MEMORY_TARGET, "memory_met": memory <= MEMORY_TARGET,
        "memory_growth_mb": (runs["big"]["peak_rss_bytes"] - runs["small"]["peak_rss_bytes"]) / 1e6,
    }
    report["load_at_end"] = load_info()
    report["wall_s"] = time.perf_counter() - t0
    print(json.dumps(report, default=str) if args.json else markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
