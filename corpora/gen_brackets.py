"""Write brackets.txt: balanced nested brackets of four kinds, one expression per line.

Each line is a random well-nested expression over ``()[]{}<>`` (depth at most 8, up to 40
characters), sometimes with a letter inside. Closing the right bracket in the right order needs
memory of everything still open: a clean test of what a vanilla RNN can hold. :func:`check` says
how many lines of a sample are balanced.

    python -m rnnplay.corpora.gen_brackets    # rewrites brackets.txt beside this file (seed 4)
"""

from __future__ import annotations

import random
from pathlib import Path

SEED = 4
COUNT = 20_000
PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}
MAX_DEPTH = 8
MAX_LEN = 40


def _expr(rng: random.Random, depth: int, budget: list[int]) -> str:
    out = []
    while budget[0] > 0 and rng.random() < (0.75 if depth == 0 and not out else 0.55):
        if depth < MAX_DEPTH and budget[0] >= 2 and rng.random() < 0.8:
            o = rng.choice("([{<")
            budget[0] -= 2
            out.append(o + _expr(rng, depth + 1, budget) + PAIRS[o])
        else:
            budget[0] -= 1
            out.append(rng.choice("abcxyz"))
    return "".join(out)


def generate(seed: int = SEED) -> str:
    rng = random.Random(seed)
    lines = []
    while len(lines) < COUNT:
        e = _expr(rng, 0, [rng.randint(4, MAX_LEN)])
        if e:
            lines.append(e)
    return "\n".join(lines) + "\n"


def balanced(line: str) -> bool:
    closers = {v: k for k, v in PAIRS.items()}
    stack: list[str] = []
    for ch in line:
        if ch in PAIRS:
            stack.append(ch)
        elif ch in closers:
            if not stack or stack.pop() != closers[ch]:
                return False
    return not stack


def check(text: str) -> tuple[int, int]:
    """(balanced, non-empty lines) of ``text``."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return sum(balanced(ln) for ln in lines), len(lines)


def main() -> None:
    out = Path(__file__).resolve().parent / "brackets.txt"
    out.write_text(generate(), encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
