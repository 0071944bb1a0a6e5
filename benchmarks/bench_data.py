"""Corpus loading at scale: a 500 MB UTF-8 file must load in < 30 s with peak memory < 2x its size.

    python benchmarks/bench_data.py            # 500 MB (needs ~0.6 GB of disk in the temp folder)
    python benchmarks/bench_data.py --quick    # 50 MB smoke run
    python benchmarks/bench_data.py --mb 200 --non-ascii 0.2 --json

It writes a file of the given size into a temporary folder (the bundled ``play`` corpus repeated,
with a fraction of lines in other scripts so the vocabulary is not pure ASCII), then loads it with
``rnnplay.data.corpus.load_corpus`` in a fresh subprocess and reports: load time, the process's
peak resident memory (``ru_maxrss``, which includes torch itself), the baseline after importing
torch, and both ratios against the file size. The targets are on the total peak, so they include
the ~0.3 GB that importing torch costs. Run it alone on the machine for final figures.
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
from _timing import describe_load, eprint, load_info  # noqa: E402

CHILD = r"""
import json, resource, sys, time
import torch
from rnnplay.data.corpus import load_corpus
def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
base = rss()
t0 = time.perf_counter()
c = load_corpus(sys.argv[1])
train, val = c.split()
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "peak_rss": rss(), "base_rss": base, "chars": len(c), "bytes": c.n_bytes,
                  "vocab": len(c.vocab), "dtype": str(c.data.dtype).replace("torch.", ""),
                  "data_bytes": c.data.numel() * c.data.element_size()}))
"""

OTHER = ["Съешь же ещё этих мягких французских булок.\n", "日本語のテキストもここにあります。\n",
         "Ελληνικά γράμματα και λέξεις εδώ.\n", "café naïve über straße façade ✓ → ∞\n"]


def write_corpus(path: str, mb: float, non_ascii: float) -> int:
    from rnnplay import corpora

    base = corpora.path_of("play").read_text(encoding="utf-8")
    lines = base.splitlines(keepends=True)
    block_lines = []
    every = max(1, int(round(1 / non_ascii))) if non_ascii > 0 else 0
    for i, line in enumerate(lines):
        block_lines.append(OTHER[i % len(OTHER)] if every and i % every == 0 else line)
    block = "".join(block_lines).encode("utf-8")
    target = int(mb * 1_000_000)
    with open(path, "wb") as fh:
        written = 0
        while written < target:
            chunk = block[: target - written]
            while chunk and (chunk[-1] & 0xC0) == 0x80:  # never cut inside a character
                chunk = chunk[:-1]
            if chunk and chunk[-1] >= 0xC0:
                chunk = chunk[:-1]
            fh.write(chunk)
            written += len(chunk)
            if len(chunk) < len(block):
                break
    return os.path.getsize(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=500.0, help="file size in MB (default 500)")
    ap.add_argument("--quick", action="store_true", help="50 MB smoke run")
    ap.add_argument("--non-ascii", type=float, default=0.05, help="fraction of lines in other scripts (default 0.05)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args()
    mb = 50.0 if args.quick else args.mb
    with tempfile.TemporaryDirectory(prefix="rnnplay-bench-data-") as tmp:
        path = os.path.join(tmp, "big.txt")
        t0 = time.perf_counter()
        size = write_corpus(path, mb, args.non_ascii)
        eprint(f"wrote {size / 1e6:,.0f} MB in {time.perf_counter() - t0:.1f} s; loading in a fresh process ...")
        load = load_info()
        p = subprocess.run([sys.executable, "-c", CHILD, path], capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"load failed:\n{p.stderr}")
        r = json.loads(p.stdout.strip().splitlines()[-1])
    r.update({"file_bytes": size, "time_target_s": 30.0, "memory_target_ratio": 2.0,
              "peak_ratio": r["peak_rss"] / size, "peak_above_torch_ratio": (r["peak_rss"] - r["base_rss"]) / size,
              "time_ratio": r["seconds"] / 30.0, "load": describe_load(load)})
    if args.json:
        print(json.dumps(r))
        return
    print(f"corpus: {size / 1e6:,.1f} MB, {r['chars']:,} chars, vocab {r['vocab']}, encoded as {r['dtype']} "
          f"({r['data_bytes'] / 1e6:,.1f} MB)")
    print(f"load time: {r['seconds']:.2f} s  (target < 30 s: {r['time_ratio']:.2f} of the budget)")
    print(f"peak RSS : {r['peak_rss'] / 1e6:,.0f} MB = {r['peak_ratio']:.2f}x the file (target < 2x); "
          f"torch alone {r['base_rss'] / 1e6:,.0f} MB, loading added {r['peak_above_torch_ratio']:.2f}x")
    print(f"machine load during the run: {r['load']}")


if __name__ == "__main__":
    main()
