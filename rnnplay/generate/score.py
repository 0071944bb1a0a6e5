"""Streamed scoring of a text under a CharRNN: surprisal per character, nats and bits per character.

The text arrives in pieces (:meth:`StreamScorer.feed`), so a file of any size is scored in memory
that does not grow with it. Characters the vocabulary lacks are counted, skipped (neither read nor
predicted: the model sees the text without them) and reported.

Each character is predicted from the model's state after reading everything before it. The very
first character is predicted after a newline (the corpus' usual boundary, and what ``rnnplay
sample`` starts from); a vocabulary without a newline leaves the first character unscored.

Speed: a character-level RNN steps one character at a time, so a single stream at batch 1 is
bound by per-step overhead. The scorer cuts the known characters into blocks of ``lanes x
segment`` and reads the lanes of a block side by side, as training reads its batch. The first
lane continues from the state the previous block ended in; every other lane starts from the
state after a ``burn_in`` of the characters just before it (read from zeros, not scored). So a
text shorter than ``2 * segment`` is scored exactly; a longer one differs from the exact
one-stream score only by what the model would remember from more than ``burn_in`` characters back
at the start of each lane (one lane start per ``segment`` characters). ``lanes=1`` is exact.

Memory: the model's forwards run in one :class:`rnnplay.model.fast.Workspace` per scorer, so the
layers' large buffers and the logits are allocated once, not once per chunk, and so are the
log-probabilities (fresh buffers would be mapped and faulted in anew each time: about one page
fault per character scored).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rnnplay.data.vocab import Vocab, code_points
from rnnplay.generate.state import State, cat_rows, select_rows, zeros_like_rows
from rnnplay.model.fast import Workspace, reuse_buffers

LN2 = math.log(2.0)


@dataclass(frozen=True)
class Score:
    """The result of scoring a text. ``nats`` is the total surprisal of the scored characters."""

    chars: int  # characters read, known or not
    scored: int  # characters whose probability was computed
    unknown: int  # characters not in the vocabulary (skipped)
    unknown_chars: tuple[tuple[str, int], ...]  # (character, count), most frequent first
    nats: float
    exact: bool = True  # False when lanes after the first started from a burn-in, not the true state

    @property
    def nats_per_char(self) -> float:
        return self.nats / self.scored if self.scored else float("nan")

    @property
    def bits_per_char(self) -> float:
        return self.nats_per_char / LN2

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats_per_char) if self.scored else float("nan")

    def to_dict(self) -> dict:
        return {"chars": self.chars, "scored": self.scored, "unknown": self.unknown,
                "unknown_chars": dict(self.unknown_chars), "nats": self.nats, "exact": self.exact,
                "nats_per_char": self.nats_per_char, "bits_per_char": self.bits_per_char,
                "perplexity": self.perplexity}


# on_chars(code points (m,) int32, surprisal in nats (m,) float32, NaN where not scored), in text order
CharsCallback = Callable[[torch.Tensor, torch.Tensor], None]


class StreamScorer:
    """Score a text fed in pieces. ``feed(text)`` any number of times, then ``finish() -> Score``.

    model: a CharRNN (any cell; only ``forward(idx, state)`` is used), in eval mode. The model's
    device is used. ``on_chars`` receives every character of the text in order with its
    surprisal (for per-character output); without it nothing per character is kept.

    The defaults read 256 lanes in chunks of 64 steps: a chunk has the 16,384 rows of 64 lanes x 256
    steps, but each step's (lanes, H) x (H, H) product is four times taller, which runs faster per
    character on a CPU (W2 size, 4 M chars in process: 205-207k chars/s with 64 x 256, 227-245k
    with 256 x 64).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        vocab: Vocab,
        on_chars: CharsCallback | None = None,
        lanes: int = 256,
        segment: int = 16384,
        chunk: int = 64,
        burn_in: int = 128,
    ) -> None:
        if min(lanes, segment, chunk) < 1 or burn_in < 0:
            raise ValueError("lanes, segment and chunk must be >= 1, burn_in >= 0")
        self.model, self.vocab, self.on_chars = model, vocab, on_chars
        self.lanes, self.segment, self.chunk, self.burn_in = lanes, segment, chunk, min(burn_in, segment)
        self.device = next(model.parameters()).device
        self._lut = vocab.lookup_table()  # code point -> index or -1
        self._known: list[torch.Tensor] = []  # pending known indices (long), in order
        self._n_known = 0
        self._cps: list[torch.Tensor] = []  # pending code points (int32), only with on_chars
        self._unknown: dict[int, int] = {}  # code point -> count
        self._chars = self._scored = 0
        self._nats = 0.0
        self._exact = True
        start = vocab.stoi.get("\n")
        self._last = None if start is None else torch.tensor([start], dtype=torch.long)  # the char before the next
        self._state: State | None = None  # batch-1 state after reading everything up to _last
        self._workspace = Workspace()  # the model's buffers and the log-probabilities, reused per chunk

    # ---- input ------------------------------------------------------------------------------

    def feed(self, text: str) -> None:
        """Add the next piece of the text; scores every full block it completes."""
        cps = code_points(text)  # (n,) int32
        if cps.numel() == 0:
            return
        self._chars += cps.numel()
        idx = torch.index_select(self._lut, 0, cps)  # (n,) int32, -1 for unknown
        bad = idx < 0
        if bool(bad.any()):
            vals, counts = torch.unique(cps[bad], return_counts=True)
            for v, c in zip(vals.tolist(), counts.tolist()):
                self._unknown[v] = self._unknown.get(v, 0) + c
            idx = idx[~bad]
        self._known.append(idx.long())
        self._n_known += idx.numel()
        if self.on_chars is not None:
            self._cps.append(cps.clone())  # code_points is a view of a temporary buffer
        block = self.lanes * self.segment
        while self._n_known >= block + 1:  # keep one back: the final block is the only padded one
            self._take_block(block, final=False)

    def finish(self) -> Score:
        """Score what is left and return the totals."""
        if self._n_known:
            self._take_block(self._n_known, final=True)
        if self.on_chars is not None and self._cps:  # unknown characters after the last known one
            rest = torch.cat(self._cps)
            self._cps = []
            self.on_chars(rest, torch.full((rest.numel(),), float("nan")))
        unknown = sorted(self._unknown.items(), key=lambda kv: (-kv[1], kv[0]))
        return Score(chars=self._chars, scored=self._scored, unknown=sum(self._unknown.values()),
                     unknown_chars=tuple((chr(c), n) for c, n in unknown), nats=self._nats,
                     exact=self._exact)

    # ---- blocks -----------------------------------------------------------------------------

    def _take_block(self, n: int, final: bool) -> None:
        known = torch.cat(self._known) if len(self._known) > 1 else self._known[0]  # (N,) long
        x, rest = known[:n], known[n:]
        self._known, self._n_known = ([rest] if rest.numel() else []), rest.numel()
        if self._last is None:  # no newline to start from: the first character is only read
            inp, tgt = x[:-1], x[1:]
            lead = 1
        else:
            inp, tgt = torch.cat([self._last, x[:-1]]), x
            lead = 0
        self._last = x[-1:]
        nats = self._score(inp, tgt, final) if tgt.numel() else torch.empty(0)  # (n - lead,)
        self._scored += nats.numel()
        self._nats += float(nats.sum(dtype=torch.float64))
        if self.on_chars is not None:
            self._emit(n, torch.cat([torch.full((lead,), float("nan")), nats]) if lead else nats)

    def _emit(self, n: int, nats: torch.Tensor) -> None:
        """Hand the pending text up to its n-th known character to on_chars, unknowns as NaN."""
        cps = torch.cat(self._cps) if len(self._cps) > 1 else self._cps[0]  # (M,) int32
        known = torch.index_select(self._lut, 0, cps) >= 0  # (M,)
        end = int(torch.nonzero(known.cumsum(0) == n)[0]) + 1  # just past the n-th known character
        head, mask = cps[:end], known[:end]
        out = torch.full((end,), float("nan"))
        out[mask] = nats.float()
        self._cps = [cps[end:]] if end < cps.numel() else []
        self.on_chars(head, out)

    @torch.no_grad()
    def _score(self, inp: torch.Tensor, tgt: torch.Tensor, final: bool) -> torch.Tensor:
        """Surprisal (nats) of tgt[i] after reading inp[..i]: inp, tgt (n,) long -> (n,) float32."""
        n = inp.numel()
        lanes = self.lanes if not final else max(1, min(self.lanes, n // self.segment))
        S = -(-n // lanes)  # segment length of this block
        self._exact = self._exact and lanes == 1
        pad = lanes * S - n  # only the final block is padded (at the end of its last lane)
        dev = self.device
        X = F.pad(inp, (0, pad)).view(lanes, S).to(dev)  # (lanes, S)
        Y = F.pad(tgt, (0, pad)).view(lanes, S).to(dev)  # (lanes, S)
        out = torch.empty(lanes, S, dtype=torch.float32, device=dev)  # (lanes, S)
        model = self.model
        with reuse_buffers(self._workspace):  # every chunk's layer buffers are the last chunk's
            state = self._start_states(X, lanes)
            for t in range(0, S, self.chunk):
                x = X[:, t:t + self.chunk]  # (lanes, c)
                c = x.shape[1]
                logits, state = model(x, state)  # (lanes, c, V): CharRNN's is a view of (c, lanes, V)
                lt = logits.transpose(0, 1)  # (c, lanes, V), contiguous for CharRNN
                z = lt.reshape(c * lanes, -1)  # (c * lanes, V)
                logp = self._workspace.empty_for(-1, z)("logp", *z.shape)  # reused too: no buffer per chunk
                torch.log_softmax(z, 1, out=logp)
                nats = logp.gather(1, Y[:, t:t + c].t().reshape(-1, 1)).neg_()  # (c * lanes, 1)
                out[:, t:t + c] = nats.view(c, lanes).t()
        if not final:
            self._state = select_rows(state, torch.tensor([lanes - 1], device=dev))
        return out.view(-1)[:n].cpu()

    def _start_states(self, X: torch.Tensor, lanes: int) -> State | None:
        """The state each lane starts from: lane 0 the carried one, others after a burn-in."""
        if lanes == 1:
            return self._state
        W = self.burn_in
        if W:
            # lane b's burn-in: the W characters before it, i.e. the last W of lane b-1
            _, burned = self.model(X[:-1, X.shape[1] - W:], None)  # state (., lanes-1, .)
        else:
            _, burned = self.model(X[:1, :1], None)
            burned = zeros_like_rows(burned, lanes - 1)
        first = self._state if self._state is not None else zeros_like_rows(burned, 1)
        return cat_rows(first, burned)


def score_text(model: torch.nn.Module, vocab: Vocab, text: str, **kwargs) -> Score:
    """Score one string (see :class:`StreamScorer` for the keyword arguments)."""
    scorer = StreamScorer(model, vocab, **kwargs)
    scorer.feed(text)
    return scorer.finish()
