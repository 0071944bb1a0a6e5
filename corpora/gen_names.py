"""Write names.txt: invented names, one per line, from syllable rules (no real name list is used).

Three made-up "languages", each a set of onsets, vowels and codas with its own preferences, build
names of one to three syllables; a few get an epithet ("Orvel the Younger") or a place ("Isha of
Tamerun"). Duplicates are kept, as in any real list of names.

    python -m rnnplay.corpora.gen_names    # rewrites names.txt beside this file (seed 2)
"""

from __future__ import annotations

import random
from pathlib import Path

SEED = 2
COUNT = 30_000

STYLES = [
    {"onsets": ["b", "d", "g", "k", "m", "n", "r", "t", "th", "v", "br", "dr", "gr", "kr"],
     "vowels": ["a", "o", "u", "ai", "e"], "codas": ["", "", "n", "r", "k", "g", "m", "rn", "th"]},
    {"onsets": ["l", "s", "f", "h", "y", "sh", "el", "", "ph", "c", "ari", "m"],
     "vowels": ["i", "e", "a", "ia", "ea", "ie", "y"], "codas": ["", "", "l", "s", "n", "th", "nd", "lle"]},
    {"onsets": ["t", "z", "q", "x", "j", "p", "ch", "ts", "k", "w"],
     "vowels": ["a", "i", "o", "u", "ei", "ao", "ua"], "codas": ["", "n", "ng", "", "l", "x"]},
]
EPITHETS = ["the Younger", "the Elder", "the Bold", "the Wise", "the Quiet", "the Red", "the Lame", "Twice-Born"]


def _name(rng: random.Random, style: dict) -> str:
    parts = []
    for _ in range(rng.choice((1, 2, 2, 2, 3, 3))):
        parts.append(rng.choice(style["onsets"]) + rng.choice(style["vowels"]) + rng.choice(style["codas"]))
    name = "".join(parts)
    return name[:1].upper() + name[1:]


def generate(seed: int = SEED) -> str:
    rng = random.Random(seed)
    places = [_name(rng, rng.choice(STYLES)) + rng.choice(("mere", "ford", "un", "holt", "vale", "ia"))
              for _ in range(40)]
    lines = []
    for _ in range(COUNT):
        style = STYLES[rng.choices((0, 1, 2), weights=(5, 4, 2))[0]]
        name = _name(rng, style)
        r = rng.random()
        if r < 0.06:
            name += " " + rng.choice(EPITHETS)
        elif r < 0.12:
            name += " of " + rng.choice(places)
        lines.append(name)
    return "\n".join(lines) + "\n"


def main() -> None:
    out = Path(__file__).resolve().parent / "names.txt"
    out.write_text(generate(), encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
