"""`rnnplay corpora`: list the bundled corpora with size, vocabulary size and description.

Each corpus is read (the ``python`` one is assembled from this Python's standard library), so
the figures are exact. ``--json`` prints one JSON object per line instead of the table.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per corpus instead of a table")


def run(args: argparse.Namespace) -> int:
    from rnnplay import corpora
    from rnnplay.data.corpus import load_corpus
    from rnnplay.pipeline import DEFAULT_CORPUS

    rows = []
    for name in corpora.names():
        c = load_corpus(name)
        rows.append({"name": name, "chars": len(c), "bytes": c.n_bytes, "vocab_size": len(c.vocab),
                     "files": len(c.source.files), "default": name == DEFAULT_CORPUS,
                     "description": corpora.description(name)})
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(f"{'name':<12} {'chars':>10} {'vocab':>6}  description")
    for r in rows:
        name = r["name"] + (" *" if r["default"] else "")
        print(f"{name:<12} {r['chars']:>10,} {r['vocab_size']:>6}  {r['description']}")
    print("\n* default. Use one with: rnnplay train --corpus NAME (or any UTF-8 file or folder path).")
    return 0
