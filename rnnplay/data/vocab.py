"""Character vocabularies: Unicode code points <-> dense indices.

A :class:`Vocab` is the sorted list of the distinct code points of a corpus (sorted by code point,
so the same text always gives the same indices). It encodes text to the smallest integer dtype
that holds every index (uint8 up to 256 characters, int16 up to 32,768, else int32), and it is
stored in checkpoints as a plain ``str`` of its characters, so loading needs no pickled objects.

Encoding is vectorised: the text's UTF-32 encoding is viewed as an int32 tensor of code points and
mapped through a dense lookup table with one ``index_select``, so millions of characters encode in
milliseconds.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch

MAX_CODE_POINT = 0x10FFFF
_PIECE = 1 << 20


def smallest_dtype(n: int) -> torch.dtype:
    """The smallest integer dtype that holds indices 0..n-1: uint8, int16 or int32."""
    if n <= 256:
        return torch.uint8
    if n <= 32768:
        return torch.int16
    return torch.int32


def code_points(text: str) -> torch.Tensor:
    """text -> (N,) int32 tensor of its code points, without a Python loop."""
    if not text:
        return torch.empty(0, dtype=torch.int32)
    raw = text.encode("utf-32-le", "surrogatepass")  # 4 bytes per code point, no BOM
    with warnings.catch_warnings():  # bytes are read-only; we never write to the view
        warnings.simplefilter("ignore", UserWarning)
        return torch.frombuffer(raw, dtype=torch.int32)  # (N,)


class Vocab:
    """The characters of a corpus, sorted by code point. ``len(vocab)`` is the vocabulary size."""

    def __init__(self, chars: Iterable[str]) -> None:
        chars = sorted(set(chars))
        if not chars:
            raise ValueError("a vocabulary needs at least one character")
        if any(len(c) != 1 for c in chars):
            raise ValueError("vocabulary entries must be single characters")
        self.chars: list[str] = chars
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(chars)}
        self.dtype: torch.dtype = smallest_dtype(len(chars))
        self._lut: torch.Tensor | None = None  # (MAX_CODE_POINT + 1,) built on first encode

    # ---- construction and storage ------------------------------------------------------------

    @classmethod
    def from_seen(cls, seen: torch.Tensor) -> Vocab:
        """From a boolean (or count) table over code points, as the corpus loader builds it."""
        cps = torch.nonzero(seen).flatten().tolist()
        return cls(chr(c) for c in cps)

    def to_string(self) -> str:
        """The characters in index order, as one string (what checkpoints store)."""
        return "".join(self.chars)

    @classmethod
    def from_string(cls, s: str) -> Vocab:
        vocab = cls(s)
        if vocab.to_string() != s:
            raise ValueError("a stored vocabulary must be sorted and free of duplicates")
        return vocab

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, ch: object) -> bool:
        return ch in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and other.chars == self.chars

    def __repr__(self) -> str:
        return f"Vocab({len(self)} chars, {str(self.dtype).replace('torch.', '')})"

    # ---- encoding ------------------------------------------------------------------------------

    def lookup_table(self) -> torch.Tensor:
        """(MAX_CODE_POINT + 1,) table: code point -> index (-1 for unknown), int32."""
        if self._lut is None:
            lut = torch.full((MAX_CODE_POINT + 1,), -1, dtype=torch.int32)
            cps = torch.tensor([ord(c) for c in self.chars], dtype=torch.long)
            lut[cps] = torch.arange(len(self.chars), dtype=torch.int32)
            self._lut = lut
        return self._lut

    def encode_code_points(self, cps: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """cps (N,) int32 code points -> (N,) indices in ``self.dtype`` (written into ``out`` if given).

        Raises ValueError if a code point is not in the vocabulary (use :meth:`unknown` first).
        """
        lut = self.lookup_table()
        if out is None:
            out = torch.empty(cps.numel(), dtype=self.dtype)
        for s in range(0, cps.numel(), _PIECE):  # pieces: the int32 temporary stays small
            idx = torch.index_select(lut, 0, cps[s : s + _PIECE])  # (n,) int32
            if int(idx.min()) < 0:
                piece = cps[s : s + _PIECE]
                bad = sorted({chr(int(c)) for c in piece[idx < 0][:1000].tolist()})
                raise ValueError(f"characters not in the vocabulary: {''.join(bad)!r}")
            out[s : s + _PIECE].copy_(idx)
        return out

    def encode(self, text: str) -> torch.Tensor:
        """text -> (N,) indices in the vocabulary's compact dtype."""
        return self.encode_code_points(code_points(text))

    def unknown(self, text: str) -> list[str]:
        """The distinct characters of ``text`` that are not in the vocabulary, in order of appearance."""
        seen: dict[str, None] = {}
        for ch in text:
            if ch not in self.stoi:
                seen.setdefault(ch, None)
        return list(seen)

    def decode(self, indices: Iterable[int] | torch.Tensor) -> str:
        if isinstance(indices, torch.Tensor):
            indices = indices.flatten().tolist()
        chars = self.chars
        return "".join(chars[i] for i in indices)
