"""Write play.txt: a generated stage play (rnnplay's default corpus).

A small grammar of our own: eight plays of five acts of ten scenes; each scene names a place, brings speakers on
stage, and gives them short speeches of verse-like lines built from templates and word lists
written for this file, with stage directions between. The text has the shape of a play (speaker
names in capitals, indented lines, [Enter ...] / [Exit ...]) so a char-RNN's samples visibly take
that shape within a few hundred steps, while the wording is varied enough to keep learning.

    python -m rnnplay.corpora.gen_play     # rewrites play.txt beside this file (seed 1)
"""

from __future__ import annotations

import random
from pathlib import Path

SEED = 1
PLAYS = 8
ACTS = 5
SCENES_PER_ACT = 10

SPEAKERS = ["ALDRIC", "BRONWEN", "CASSIAN", "DELPHINE", "EDMUND", "FENELLA", "GARETH", "HESTER",
            "IVO", "JUNIPER", "KESTREL", "LORCAN", "MIRABEL", "NORRIS", "OSWIN", "PERPETUA",
            "QUILLON", "ROSALIND", "SILAS", "TAMSIN", "FIRST GUARD", "SECOND GUARD", "MESSENGER",
            "NURSE", "FOOL", "HERALD"]
PLACES = ["A hall in the castle", "The garden by the river", "A road outside the town", "The king's chamber",
          "A tavern at night", "The harbour", "A chapel", "The battlements", "A forest clearing",
          "The market square", "A prison cell", "The queen's orchard", "A camp near the border"]
NOUNS = ["crown", "river", "heart", "sword", "letter", "moon", "garden", "storm", "ring", "tower",
         "night", "promise", "candle", "winter", "road", "harbour", "fire", "honour", "shadow", "song",
         "horse", "bell", "stranger", "daughter", "brother", "father", "mother", "king", "queen", "fool",
         "morning", "gate", "secret", "grave", "feast", "ship", "wound", "prayer", "oath", "field"]
ADJS = ["cold", "bright", "bitter", "gentle", "hollow", "proud", "silent", "golden", "weary", "faithful",
        "wild", "pale", "strange", "broken", "sweet", "heavy", "false", "noble", "quiet", "restless"]
# (base, past, participle, third person)
VERBS = [("keep", "kept", "kept", "keeps"), ("break", "broke", "broken", "breaks"), ("find", "found", "found", "finds"),
         ("follow", "followed", "followed", "follows"), ("betray", "betrayed", "betrayed", "betrays"),
         ("remember", "remembered", "remembered", "remembers"), ("carry", "carried", "carried", "carries"),
         ("answer", "answered", "answered", "answers"), ("summon", "summoned", "summoned", "summons"),
         ("forgive", "forgave", "forgiven", "forgives"), ("guard", "guarded", "guarded", "guards"),
         ("burn", "burned", "burnt", "burns"), ("bury", "buried", "buried", "buries"),
         ("seek", "sought", "sought", "seeks"), ("hold", "held", "held", "holds"), ("wake", "woke", "woken", "wakes"),
         ("trust", "trusted", "trusted", "trusts"), ("mend", "mended", "mended", "mends"),
         ("steal", "stole", "stolen", "steals"), ("wait for", "waited for", "waited for", "waits for")]
ADVS = ["softly", "tonight", "at once", "no more", "again", "too late", "in vain", "before the dawn",
        "for ever", "alone", "with care", "in secret"]
OATHS = ["By my faith", "Alas", "Peace", "Hark", "O heavens", "Good my lord", "Nay", "Upon my life",
         "Gods keep us", "Soft", "Marry", "Fie"]
TEMPLATES = [
    "{Oath}, the {adj} {noun} is {adv} {verb_en}.",
    "The {noun} {verbs} the {noun2}, and the {adj} {noun3} {verbs2} it {adv}.",
    "Come, let us {verb} the {noun} while the {noun2} sleeps.",
    "I have {verb_en} a {adj} {noun}, and it {verbs} me {adv}.",
    "I will {verb} the {noun}, though the {noun2} be {adj}.",
    "What {noun} is this that {verbs} so {adj}?",
    "Go, {verb} the {noun} and {verb2} the {noun2}.",
    "My {noun} was {adj}, and now my {noun2} is {adj2}.",
    "Thou hast {verb_en} the {noun}; {verb} it {adv}.",
    "The {noun} of the {noun2} is {adj} {adv}.",
    "{Oath}! Who would {verb} a {adj} {noun}?",
    "Let the {noun} {verb} the {noun2}, and let us {verb2} {adv}.",
    "O {adj} {noun}, why dost thou {verb} me {adv}?",
    "There is no {noun} so {adj} as a {adj2} {noun2}.",
    "We {verb_ed} the {noun} and {verb_ed2} the {noun2}.",
    "If I {verb} the {noun}, who shall {verb2} the {noun2}?",
    "Speak, {speaker}: where is the {adj} {noun}?",
    "{Speaker}, thy {noun} hath {verb_en} my {noun2}.",
    "Farewell, {speaker}; {verb} the {noun} {adv}.",
]
DIRECTIONS = ["[Enter {a}.]", "[Enter {a} and {b}.]", "[Exit {a}.]", "[Exeunt {a} and {b}.]",
              "[{A} kneels.]", "[{A} draws a sword.]", "[Aside] {line}", "[A bell rings within.]",
              "[{A} reads the letter.]", "[Music. {A} sings.]", "[Thunder.]", "[They fight. {A} falls.]"]


def _title(name: str) -> str:
    return " ".join(w.capitalize() for w in name.split())


def _line(rng: random.Random, here: list[str]) -> str:
    nouns = rng.sample(NOUNS, 3)
    adjs = rng.sample(ADJS, 2)
    (v1, p1, e1, s1), (v2, p2, _e2, s2) = rng.sample(VERBS, 2)
    other = _title(rng.choice(here))
    return rng.choice(TEMPLATES).format(
        Oath=rng.choice(OATHS), noun=nouns[0], noun2=nouns[1], noun3=nouns[2], adj=adjs[0], adj2=adjs[1],
        verb=v1, verb2=v2, verb_ed=p1, verb_ed2=p2, verb_en=e1, verbs=s1, verbs2=s2, adv=rng.choice(ADVS),
        speaker=other, Speaker=other)


def _scene(rng: random.Random, act: int, scene: int) -> list[str]:
    cast = rng.sample(SPEAKERS, rng.randint(2, 4))
    out = [f"SCENE {scene}. {rng.choice(PLACES)}.", "", f"[Enter {', '.join(_title(c) for c in cast[:-1])} "
           f"and {_title(cast[-1])}.]", ""]
    who = None
    for _ in range(rng.randint(8, 16)):
        who = rng.choice([c for c in cast if c != who])
        out.append(f"{who}:")
        for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
            out.append("  " + _line(rng, [c for c in cast if c != who]))
        out.append("")
        if rng.random() < 0.15:
            a, b = rng.sample(cast, 2)
            out.append(rng.choice(DIRECTIONS).format(a=_title(a), b=_title(b), A=_title(a),
                                                     line=_line(rng, [b])))
            out.append("")
    out += ["[Exeunt.]", ""]
    return out


def generate(seed: int = SEED) -> str:
    rng = random.Random(seed)
    lines: list[str] = []
    for _ in range(PLAYS):
        kind = rng.choice(("TRAGEDY", "COMEDY", "HISTORY", "TALE"))
        lines += [f"THE {kind} OF THE {rng.choice(ADJS).upper()} {rng.choice(NOUNS).upper()}", ""]
        for act in range(1, ACTS + 1):
            lines += [f"ACT {act}.", ""]
            for scene in range(1, SCENES_PER_ACT + 1):
                lines += _scene(rng, act, scene)
        lines += ["THE END", "", ""]
    return "\n".join(lines)


def main() -> None:
    out = Path(__file__).resolve().parent / "play.txt"
    out.write_text(generate(), encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
