"""`rnnplay sample`: print text sampled from a checkpoint; stdout gets the text and nothing else.

The prime text is printed first, then the sampled continuation (streamed as it is generated).
Without ``--prime`` the model starts from a newline (or, if its corpus had none, its first
character) and only the continuation is printed. Prime characters outside the checkpoint's
vocabulary are an error that names them; ``--drop-unknown`` removes them instead. The same
``--seed`` gives the same text; without it every run differs. Sampling runs on the CPU.

``--num-samples N`` samples N texts in one batch (printed in order, ``--separator`` between them);
``--stop TEXT`` ends each sample just before its first occurrence of TEXT in the continuation;
``--beam W`` prints the best continuation found by a beam search of width W (deterministic;
ranked by log-probability per character), or its N best with ``--num-samples``.
"""

from __future__ import annotations

import argparse
import sys

from rnnplay.commands._types import positive_float, positive_int, seed
from rnnplay.errors import UserError

BEAM_MAX = 1000
SAMPLES_MAX = 10_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--checkpoint", required=True, metavar="PATH", help="a .pt file written by rnnplay train")
    a("--prime", default="", metavar="TEXT", help="text the model reads first and continues (printed too)")
    a("--length", type=positive_int, default=500, metavar="N",
      help="characters to generate (default 500; the most, with --stop)")
    a("--temperature", type=positive_float, default=None, metavar="T",
      help="above 0; lower is more conservative, higher more surprising (default 1.0)")
    a("--top-k", type=positive_int, default=None, metavar="K", help="sample only among the K most likely characters")
    a("--greedy", action="store_true", help="always take the most likely character (ignores temperature, seed)")
    a("--seed", type=seed, default=None, metavar="S", help="same seed, same text (default: a fresh random seed)")
    a("--drop-unknown", action="store_true", help="drop prime characters the model never saw instead of failing")
    a("--num-samples", type=positive_int, default=1, metavar="N", help="texts to sample, in one batch (default 1)")
    a("--stop", default=None, metavar="TEXT",
      help="end each sample just before its first occurrence of TEXT (\\n, \\t and \\\\ are understood)")
    a("--separator", default="---", metavar="TEXT",
      help="a line printed between samples when there are several (default ---; '' for none)")
    a("--beam", type=positive_int, default=None, metavar="W",
      help="beam search of width W instead of sampling: the most likely continuation (deterministic)")


def _show(chars: list[str]) -> str:
    return ", ".join(repr(c) for c in chars[:10]) + (f" and {len(chars) - 10} more" if len(chars) > 10 else "")


def unescape(text: str) -> str:
    """``\\n``, ``\\t``, ``\\r`` and ``\\\\`` in a command-line argument -> the characters."""
    out, i = [], 0
    table = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in table:
            out.append(table[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _check(args: argparse.Namespace) -> None:
    if args.beam is not None:
        clash = [f for f, on in (("--greedy", args.greedy), ("--top-k", args.top_k is not None),
                                 ("--temperature", args.temperature is not None),
                                 ("--seed", args.seed is not None)) if on]
        if clash:
            raise UserError(f"--beam searches deterministically, so {' and '.join(clash)} do not apply; drop one")
        if args.beam > BEAM_MAX:
            raise UserError(f"--beam {args.beam} is too wide (at most {BEAM_MAX})")
        if args.num_samples > args.beam:
            raise UserError(f"--num-samples {args.num_samples} with --beam {args.beam}: a beam keeps at most "
                            f"{args.beam} texts; widen the beam or ask for fewer")
    if args.num_samples > SAMPLES_MAX:
        raise UserError(f"--num-samples {args.num_samples} is more than one batch takes here (at most {SAMPLES_MAX:,})")
    if args.stop is not None and not unescape(args.stop):
        raise UserError("--stop is empty; give the text that ends a sample (e.g. --stop '\\n')")


def run(args: argparse.Namespace) -> int:
    import torch

    from rnnplay.generate.beam import beam_search
    from rnnplay.generate.sampling import sample_texts
    from rnnplay.training.checkpoint import load_checkpoint, model_from_checkpoint

    _check(args)
    model, vocab = model_from_checkpoint(load_checkpoint(args.checkpoint))
    prime = args.prime
    unknown = vocab.unknown(prime)
    if unknown:
        if not args.drop_unknown:
            raise UserError(f"--prime has characters this model never saw: {_show(unknown)}; "
                            "remove them or pass --drop-unknown")
        prime = "".join(ch for ch in prime if ch in vocab)
    stop = unescape(args.stop) if args.stop is not None else None
    if stop and vocab.unknown(stop):
        raise UserError(f"--stop has characters this model never saw ({_show(vocab.unknown(stop))}), "
                        "so it could never end a sample; give one in its alphabet")
    shown = prime
    if not prime:
        prime = "\n" if "\n" in vocab else vocab.chars[0]
        shown = ""
    out = sys.stdout
    if args.beam is not None:
        hyps = beam_search(model, vocab.encode(prime).long(), args.length, args.beam,
                           stop=tuple(vocab.encode(stop).tolist()) if stop else None)
        n_stop = len(stop) if stop else 0
        texts = [vocab.decode(h.tokens[:len(h.tokens) - n_stop] if h.finished else h.tokens)
                 for h in hyps[:args.num_samples]]
    else:
        seed_value = args.seed if args.seed is not None else int(torch.seed() % (2**63))
        gen = torch.Generator().manual_seed(seed_value)
        streaming = args.num_samples == 1

        def write(piece: str) -> None:
            out.write(piece)
            out.flush()

        if streaming:
            out.write(shown)
        texts = sample_texts(model, vocab, prime, args.num_samples, args.length, stop=stop,
                             temperature=1.0 if args.temperature is None else args.temperature,
                             top_k=args.top_k, greedy=args.greedy, generator=gen,
                             on_text=write if streaming else None)
        if streaming:
            out.write("\n")
            out.flush()
            return 0
    separator = unescape(args.separator)
    for i, text in enumerate(texts):
        if i and separator:
            out.write(separator + "\n")
        out.write(shown + text + "\n")
    out.flush()
    return 0
