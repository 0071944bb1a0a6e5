"""`rnnplay sample`: print text sampled from a checkpoint; stdout gets the text and nothing else.

The prime text is printed first, then the sampled continuation (streamed as it is generated).
Without ``--prime`` the model starts from a newline (or, if its corpus had none, its first
character) and only the continuation is printed. Prime characters outside the checkpoint's
vocabulary are an error that names them; ``--drop-unknown`` removes them instead. The same
``--seed`` gives the same text; without it every run differs. Sampling runs on the CPU.
"""

from __future__ import annotations

import argparse
import sys

from rnnplay.commands._types import positive_float, positive_int, seed
from rnnplay.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--checkpoint", required=True, metavar="PATH", help="a .pt file written by rnnplay train")
    a("--prime", default="", metavar="TEXT", help="text the model reads first and continues (printed too)")
    a("--length", type=positive_int, default=500, metavar="N", help="characters to generate (default 500)")
    a("--temperature", type=positive_float, default=1.0, metavar="T",
      help="above 0; lower is more conservative, higher more surprising (default 1.0)")
    a("--top-k", type=positive_int, default=None, metavar="K", help="sample only among the K most likely characters")
    a("--greedy", action="store_true", help="always take the most likely character (ignores temperature, seed)")
    a("--seed", type=seed, default=None, metavar="S", help="same seed, same text (default: a fresh random seed)")
    a("--drop-unknown", action="store_true", help="drop prime characters the model never saw instead of failing")


def _show(chars: list[str]) -> str:
    return ", ".join(repr(c) for c in chars[:10]) + (f" and {len(chars) - 10} more" if len(chars) > 10 else "")


def run(args: argparse.Namespace) -> int:
    import torch

    from rnnplay.model import Sampler
    from rnnplay.training.checkpoint import load_checkpoint, model_from_checkpoint

    model, vocab = model_from_checkpoint(load_checkpoint(args.checkpoint))
    prime = args.prime
    unknown = vocab.unknown(prime)
    if unknown:
        if not args.drop_unknown:
            raise UserError(f"--prime has characters this model never saw: {_show(unknown)}; "
                            "remove them or pass --drop-unknown")
        prime = "".join(ch for ch in prime if ch in vocab)
    shown = prime
    if not prime:
        prime = "\n" if "\n" in vocab else vocab.chars[0]
        shown = ""
    seed = args.seed if args.seed is not None else int(torch.seed() % (2**63))
    gen = torch.Generator().manual_seed(seed)
    idx = vocab.encode(prime).long().unsqueeze(0)  # (1, T)
    out = sys.stdout
    out.write(shown)
    buf: list[str] = []
    chars = vocab.chars
    for nxt, _h in Sampler(model).stream(idx, args.length, temperature=args.temperature, top_k=args.top_k,
                                         greedy=args.greedy, generator=gen):
        buf.append(chars[int(nxt[0])])
        if len(buf) >= 64:
            out.write("".join(buf))
            out.flush()
            buf.clear()
    out.write("".join(buf) + "\n")
    out.flush()
    return 0
