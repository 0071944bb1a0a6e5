"""Loading a corpus: a UTF-8 file, a folder of them, a bundled corpus, or ``python``.

``--corpus C`` is resolved by :func:`resolve_corpus`:

* an existing path: a file, or a folder whose files (recursively, skipping names that start with
  ``.``) are concatenated in sorted order of their relative paths, byte for byte, nothing inserted;
* else a bundled corpus name (``rnnplay corpora`` lists them; see ``corpora/README.md``);
* ``python``: the installed Python standard library's ``.py`` sources (see
  :mod:`rnnplay.corpora.python_stdlib`).

Characters are Unicode code points; a UTF-8 byte-order mark at the start of a file is dropped.
:func:`load_corpus` reads the files twice, 1 MB at a time, so memory stays near the size of the
encoded result (plus ~50 MB of fixed buffers): the first pass validates (UTF-8, no NUL bytes),
counts characters, collects the vocabulary and a CRC-32 fingerprint; the second encodes each chunk
into a preallocated tensor of the smallest dtype that fits the vocabulary (see
:mod:`rnnplay.data.vocab`: UTF-32 view + lookup table, no Python loop per character). A 500 MB
corpus loads in seconds with peak memory well under twice the file (``benchmarks/bench_data.py``).

Bad input is a :class:`~rnnplay.errors.UserError` of one line: a missing path, an empty corpus, a
binary file (a NUL byte), or bytes that are not UTF-8 (the file and the byte offset are named).
"""

from __future__ import annotations

import codecs
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rnnplay.data.facts import CorpusInfo

import torch

from rnnplay.data.vocab import _PIECE, MAX_CODE_POINT, Vocab, code_points
from rnnplay.errors import UserError

CHUNK_BYTES = 1 << 20
VAL_FRACTION = 0.1
_BOM = codecs.BOM_UTF8


@dataclass(frozen=True)
class CorpusSource:
    """Where a corpus comes from: ``kind`` is "file", "folder", "bundled" or "python"."""

    name: str
    kind: str
    files: tuple[Path, ...]
    location: str
    description: str = ""


@dataclass
class Corpus:
    """An encoded corpus. ``data`` is (N,) in the vocabulary's compact dtype.

    ``split()`` gives the training part and the validation part: the last ``VAL_FRACTION``
    (10%) of the characters, so validation text is never seen in training (for a folder, that is
    the tail of its last files in sorted order).
    """

    source: CorpusSource
    vocab: Vocab
    data: torch.Tensor  # (N,)
    n_bytes: int
    fingerprint: str  # CRC-32 of the bytes read, hex, plus the character count
    info: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.source.name

    def __len__(self) -> int:
        return int(self.data.numel())

    def split(self, val_fraction: float = VAL_FRACTION) -> tuple[torch.Tensor, torch.Tensor]:
        """(train (N - n_val,), val (n_val,)) views; n_val = max(2, round(N * val_fraction))."""
        n = len(self)
        n_val = max(2, int(round(n * val_fraction)))
        if n - n_val < 2:
            raise UserError(
                f"corpus {self.name!r} has only {n} characters: too short to hold out a validation "
                "part; use a longer text (a few thousand characters at least)"
            )
        return self.data[: n - n_val], self.data[n - n_val :]


# ---- resolving --corpus --------------------------------------------------------------------------


def resolve_corpus(spec: str) -> CorpusSource:
    """Turn the ``--corpus`` value into a :class:`CorpusSource` (path first, then bundled names)."""
    from rnnplay import corpora

    if not spec or not spec.strip():
        raise UserError("--corpus is empty; give a path to a UTF-8 text file or folder, or a bundled name")
    path = Path(spec).expanduser()
    if path.exists():
        if path.is_dir():
            files = tuple(_folder_files(path))
            if not files:
                raise UserError(f"corpus folder {spec!r} holds no files; put UTF-8 text files in it")
            return CorpusSource(path.name or spec, "folder", files, str(path.resolve()),
                                f"{len(files)} files from {spec}")
        if not path.is_file():
            raise UserError(f"corpus {spec!r} is not a regular file or folder")
        return CorpusSource(path.name, "file", (path,), str(path.resolve()), f"text file {spec}")
    if spec == corpora.PYTHON:
        from rnnplay.corpora import python_stdlib

        files = tuple(python_stdlib.stdlib_files())
        return CorpusSource(spec, "python", files, python_stdlib.stdlib_dir(), python_stdlib.DESCRIPTION)
    if spec in corpora.BUNDLED:
        entry = corpora.BUNDLED[spec]
        return CorpusSource(spec, "bundled", (corpora.path_of(spec),), spec, entry.description)
    raise UserError(
        f"corpus {spec!r}: no such file or folder, and not a bundled corpus "
        f"(bundled: {', '.join(corpora.names())}; see 'rnnplay corpora')"
    )


def _folder_files(root: Path) -> Iterator[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            if not f.startswith("."):
                p = Path(dirpath) / f
                if p.is_file():
                    found.append(p)
    return iter(sorted(found, key=lambda p: p.relative_to(root).as_posix()))


# ---- reading ------------------------------------------------------------------------------------


def _read_text_chunks(source: CorpusSource, chunk_bytes: int) -> Iterator[tuple[str, bytes]]:
    """Yield ``(decoded text, raw bytes)`` per chunk of every file, validating as it goes."""
    for path in source.files:
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        offset = 0
        try:
            fh = open(path, "rb")
        except OSError as exc:
            raise UserError(f"cannot read corpus file {str(path)!r}: {exc.strerror}; check the path and permissions") from None
        with fh:
            while True:
                raw = fh.read(chunk_bytes)
                if not raw:
                    break
                nul = raw.find(b"\x00")
                if nul >= 0:
                    raise UserError(
                        f"corpus file {str(path)!r} looks binary (a NUL byte at offset {offset + nul}); "
                        "give a UTF-8 text file"
                    )
                body = raw[len(_BOM):] if offset == 0 and raw.startswith(_BOM) else raw
                pending = len(decoder.getstate()[0])
                try:
                    text = decoder.decode(body)
                except UnicodeDecodeError as exc:
                    start = offset + (len(raw) - len(body)) - pending + exc.start
                    raise UserError(
                        f"corpus file {str(path)!r} is not valid UTF-8 (byte offset {start}); "
                        "convert it to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                    ) from None
                offset += len(raw)
                yield text, raw
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                pending = len(decoder.getstate()[0])
                raise UserError(
                    f"corpus file {str(path)!r} is not valid UTF-8 (it ends inside a character at byte "
                    f"offset {offset - pending}); convert it to UTF-8"
                ) from None


def load_corpus(spec: str | CorpusSource, chunk_bytes: int = CHUNK_BYTES) -> Corpus:
    """Read, validate and encode a corpus (two chunked passes; see the module docstring)."""
    source = resolve_corpus(spec) if isinstance(spec, str) else spec
    seen = torch.zeros(MAX_CODE_POINT + 1, dtype=torch.bool)  # code points present
    index = torch.empty(_PIECE, dtype=torch.long)  # reused: no allocation per chunk
    n_chars = n_bytes = 0
    crc = 0
    for text, raw in _read_text_chunks(source, chunk_bytes):
        cps = code_points(text)  # (n,) int32
        for s in range(0, cps.numel(), _PIECE):
            piece = cps[s : s + _PIECE]
            seen.index_fill_(0, index[: piece.numel()].copy_(piece), True)
        n_chars += cps.numel()
        n_bytes += len(raw)
        crc = zlib.crc32(raw, crc)
    if n_chars == 0:
        what = "folder" if source.kind == "folder" else "file"
        raise UserError(f"corpus {source.name!r} is empty ({what} {source.location}); give a text with some characters")
    vocab = Vocab.from_seen(seen)
    del seen, index
    data = torch.empty(n_chars, dtype=vocab.dtype)  # (N,)
    pos = 0
    for text, _raw in _read_text_chunks(source, chunk_bytes):
        cps = code_points(text)
        n = cps.numel()
        if pos + n > n_chars:
            raise UserError(f"corpus {source.name!r} changed while it was being read; try again")
        vocab.encode_code_points(cps, out=data[pos : pos + n])
        pos += n
    if pos != n_chars:
        raise UserError(f"corpus {source.name!r} changed while it was being read; try again")
    vocab._lut = None  # 4 MB lookup table: not needed any more
    return Corpus(source, vocab, data, n_bytes, f"{crc:08x}-{n_chars}")


def corpus_summary(corpus: Corpus) -> CorpusInfo:
    """Plain facts for run info and ``rnnplay corpora``."""
    train, val = corpus.split()
    return CorpusInfo(name=corpus.name, kind=corpus.source.kind, location=corpus.source.location,
                      files=len(corpus.source.files), chars=len(corpus), bytes=corpus.n_bytes,
                      vocab_size=len(corpus.vocab), train_chars=int(train.numel()), val_chars=int(val.numel()),
                      fingerprint=corpus.fingerprint)
