"""`rnnplay score --checkpoint CKPT FILE|-`: how likely a checkpoint finds a text.

Prints nats/char, bits/char and perplexity. The text is read and scored in pieces, so a file of
any size takes the same memory (see rnnplay.generate.score for how the characters are batched).
Characters the model never saw are skipped (neither read nor predicted), counted and named in the
report. ``-`` reads standard input.

Output: two lines of figures on stdout, or one JSON object with ``--json``. ``--per-char`` writes
a TSV of every character instead (``char``, ``bits``: its surprisal, empty where it was not
scored; tab, newline, carriage return and backslash are written as ``\\t``, ``\\n``, ``\\r``,
``\\\\``), and the summary goes to stderr.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import json
import sys

from rnnplay.commands._types import nonneg_int, positive_int
from rnnplay.config import parse_device
from rnnplay.errors import UserError
from rnnplay.malloc import fixed_mmap_threshold

READ_BYTES = 1 << 20  # 1 MiB per read: the per-read temporaries (code points, indices) stay ~20 MB
_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\\": "\\\\"}
LN2 = 0.6931471805599453


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("file", metavar="FILE", help="the text to score (UTF-8; '-' reads stdin)")
    a("--checkpoint", required=True, metavar="PATH", help="a .pt file written by rnnplay train")
    a("--json", action="store_true", help="print the result as one JSON object")
    a("--per-char", action="store_true", help="print a TSV of each character's surprisal in bits (summary to stderr)")
    a("--lanes", type=positive_int, default=256, metavar="N",
      help="parts of a long text (over 32,768 chars) read side by side, each after a burn-in of the text before it "
           "(default 256; 1 scores exactly as one stream, slower)")
    a("--burn-in", type=nonneg_int, default=128, metavar="N",
      help="characters each lane but the first reads before it scores (default 128)")
    a("--device", default="auto", type=parse_device, metavar="DEVICE", help="where the model runs (default auto: a GPU if there is one)")


def _open_text(name: str):
    if name == "-":
        return contextlib.nullcontext(sys.stdin.buffer), "stdin"
    try:
        return open(name, "rb"), name
    except IsADirectoryError:
        raise UserError(f"{name!r} is a folder; give a text file to score") from None
    except FileNotFoundError:
        raise UserError(f"{name!r} does not exist; give the path of a text file (or - for stdin)") from None
    except OSError as exc:
        raise UserError(f"cannot read {name!r}: {exc.strerror}; check the path and permissions") from None


def _pieces(fh, label: str):
    """Decoded text pieces of a UTF-8 byte stream (a leading BOM dropped); bad UTF-8 is a UserError."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    while True:
        try:
            raw = fh.read(READ_BYTES)
        except OSError as exc:
            raise UserError(f"cannot read {label}: {exc.strerror}; check the file") from None
        if not raw:
            break
        body = raw[len(codecs.BOM_UTF8):] if offset == 0 and raw.startswith(codecs.BOM_UTF8) else raw
        pending = len(decoder.getstate()[0])
        try:
            text = decoder.decode(body)
        except UnicodeDecodeError as exc:
            at = offset + (len(raw) - len(body)) - pending + exc.start
            raise UserError(f"{label} is not valid UTF-8 (byte offset {at}); convert it "
                            "(e.g. iconv -f latin1 -t utf-8)") from None
        offset += len(raw)
        yield text
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise UserError(f"{label} is not valid UTF-8 (it ends inside a character); convert it") from None


def _per_char_writer(out):
    out.write("char\tbits\n")

    def write(cps, nats) -> None:
        lines = []
        for c, v in zip(cps.tolist(), nats.tolist()):
            ch = chr(c)
            lines.append(f"{_ESCAPES.get(ch, ch)}\t{'' if v != v else format(v / LN2, '.4f')}\n")
        out.write("".join(lines))
    return write


def summary(score, label: str, burn_in: int) -> str:
    """The two-line report of a :class:`rnnplay.generate.score.Score`."""
    head = f"{label}: {score.scored:,} characters scored of {score.chars:,}"
    if score.unknown:
        shown = ", ".join(f"{ch!r} x{n}" for ch, n in score.unknown_chars[:10])
        more = f" and {len(score.unknown_chars) - 10} more" if len(score.unknown_chars) > 10 else ""
        head += f" ({score.unknown:,} unknown to the model, skipped: {shown}{more})"
    if not score.exact:
        head += f" (approximate: read as parallel lanes, each after a {burn_in}-char burn-in; --lanes 1 is exact)"
    return (f"{head}\n{score.nats_per_char:.4f} nats/char  {score.bits_per_char:.4f} bits/char  "
            f"perplexity {score.perplexity:.3f}\n")


def run(args: argparse.Namespace) -> int:
    from rnnplay.device import resolve_device
    from rnnplay.generate.score import StreamScorer
    from rnnplay.training.checkpoint import load_checkpoint, model_from_checkpoint

    model, vocab = model_from_checkpoint(load_checkpoint(args.checkpoint))
    fixed_mmap_threshold()
    model = model.to(resolve_device(args.device))
    opened, label = _open_text(args.file)
    out = sys.stdout
    scorer = StreamScorer(model, vocab, lanes=args.lanes, burn_in=args.burn_in,
                          on_chars=_per_char_writer(out) if args.per_char else None)
    with opened as fh:
        for piece in _pieces(fh, label):
            scorer.feed(piece)
    score = scorer.finish()
    if score.scored == 0:
        raise UserError(f"{label} has no characters this model can score ({score.chars:,} read, "
                        f"{score.unknown:,} unknown to it); give a longer text in its alphabet")
    if args.json:
        report = json.dumps({"file": label, "checkpoint": args.checkpoint, **score.to_dict()},
                            ensure_ascii=False) + "\n"
    else:
        report = summary(score, label, args.burn_in)
    (sys.stderr if args.per_char else out).write(report)
    out.flush()
    return 0
