"""Write arithmetic.txt: correct arithmetic lines such as ``17+25=42``, ``83-9=74``, ``6*7=42``.

Operands are below 100, differences are never negative. The format is learned in a few dozen
steps; the arithmetic itself only slowly, and :func:`check` scores it: a sample's well-formed lines
and how many of them are correct, so a user can watch a model learn to add.

    python -m rnnplay.corpora.gen_arithmetic    # rewrites arithmetic.txt beside this file (seed 3)
"""

from __future__ import annotations

import random
import re
from pathlib import Path

SEED = 3
COUNT = 40_000
LINE = re.compile(r"^(\d{1,3})([+\-*])(\d{1,3})=(\d{1,5})$")


def generate(seed: int = SEED) -> str:
    rng = random.Random(seed)
    lines = []
    for _ in range(COUNT):
        op = rng.choices("+-*", weights=(5, 4, 2))[0]
        a, b = rng.randrange(100), rng.randrange(100)
        if op == "-" and b > a:
            a, b = b, a
        if op == "*":
            a, b = rng.randrange(20), rng.randrange(20)
        c = a + b if op == "+" else a - b if op == "-" else a * b
        lines.append(f"{a}{op}{b}={c}")
    return "\n".join(lines) + "\n"


def check(text: str) -> tuple[int, int]:
    """(correct, well-formed) over the lines of ``text`` (for scoring samples)."""
    correct = total = 0
    for line in text.splitlines():
        m = LINE.match(line.strip())
        if not m:
            continue
        a, op, b, c = int(m[1]), m[2], int(m[3]), int(m[4])
        total += 1
        correct += (a + b if op == "+" else a - b if op == "-" else a * b) == c
    return correct, total


def main() -> None:
    out = Path(__file__).resolve().parent / "arithmetic.txt"
    out.write_text(generate(), encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
