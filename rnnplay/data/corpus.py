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
import errno
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
    if _exists(path, spec):
        if path.is_dir():
            files = tuple(_folder_files(path))
            if not files:
                raise UserError(f"corpus folder {spec!r} holds no files; put UTF-8 text files in it")
            return CorpusSource(path.name or spec, "folder", files, str(path.resolve()),
                                f"{len(files)} files from {spec}")
        if not path.is_file():
            raise UserError(f"corpus {spec!r} is not a regular file or folder")
        _refuse_kernel_file(path)
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


def locate_saved_corpus(spec: str, saved_location: str | None) -> str:
    """The corpus a resumed checkpoint names, found from this folder: ``spec`` itself, else where it was.

    Checkpoints store a path corpus as an absolute path; older ones kept it as typed (relative to
    the folder the run started in). Such a path is looked up at the recorded absolute location.
    """
    from rnnplay import corpora

    if os.path.lexists(os.path.expanduser(spec)) or spec in corpora.BUNDLED or spec == corpora.PYTHON:
        return spec
    if os.path.isabs(os.path.expanduser(spec)):
        raise UserError(f"the checkpoint's corpus {spec!r} is not there any more; pass --corpus PATH "
                        "(the same text, wherever it is now)")
    if saved_location and os.path.isabs(saved_location) and os.path.exists(saved_location):
        return saved_location
    raise UserError(f"the checkpoint's corpus {spec!r} is a path relative to the folder it was trained in "
                    f"({saved_location or 'not recorded'}) and is not found from here; pass --corpus PATH")


def _exists(path: Path, shown: str) -> bool:
    """Whether ``path`` is there; a symlink loop, a dangling link or an unreadable parent is named, not "missing"."""
    try:
        os.stat(path)
        return True
    except (FileNotFoundError, NotADirectoryError):
        if os.path.islink(path):
            raise UserError(f"corpus {shown!r} is a symbolic link to {os.readlink(path)!r}, which does not exist; "
                            "point it at a text file or folder") from None
        return False
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(f"corpus {shown!r} is a symbolic link loop (it leads back to itself); "
                            "point it at a real file or folder") from None
        raise UserError(f"cannot open corpus {shown!r} ({exc.strerror}); check the path and its permissions") from None


_KERNEL_ROOTS = ("/proc", "/sys", "/dev")


def _refuse_kernel_file(path: Path) -> None:
    """/proc, /sys and /dev files are not texts: some block forever when read (/proc/kmsg), others change."""
    real = os.path.realpath(path)
    if any(real == r or real.startswith(r + "/") for r in _KERNEL_ROOTS):
        raise UserError(f"corpus {str(path)!r} is a kernel or device file ({real}), not a text; "
                        "copy what you want into a regular file first")


def _folder_files(root: Path) -> Iterator[Path]:
    """Every visible regular file under ``root`` (symlinked subfolders followed once), sorted by relative path.

    Stops with one line at anything it cannot use: an unreadable subfolder (it used to be skipped
    silently, so the run trained on part of the folder), a symlink loop, a dangling link, a FIFO or device.
    """
    found = []

    def unreadable(exc: OSError) -> None:
        raise UserError(f"corpus folder {str(root)!r}: cannot read {exc.filename!r} ({exc.strerror}); fix its "
                        "permissions or move it out of the folder (rnnplay does not train on part of a folder)")

    seen = {os.path.realpath(root)}
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=True):
        keep = []
        for d in sorted(dirnames):
            if d.startswith("."):
                continue
            full = os.path.join(dirpath, d)
            real = os.path.realpath(full)
            if real in seen:
                raise UserError(f"corpus folder {str(root)!r}: {full!r} is a symbolic link loop (it leads back to "
                                f"{real!r}, already read); remove it")
            seen.add(real)
            keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            if f.startswith("."):
                continue
            p = Path(dirpath) / f
            if p.is_file():
                found.append(p)
            elif os.path.islink(p) and not os.path.exists(p):
                try:
                    os.stat(p)
                    what = "a symbolic link that cannot be followed"
                except OSError as exc:
                    what = ("a symbolic link loop" if exc.errno == errno.ELOOP
                            else f"a symbolic link to {os.readlink(p)!r}, which does not exist")
                raise UserError(f"corpus folder {str(root)!r}: {str(p)!r} is {what}; remove it or fix it")
            elif not p.is_dir():
                raise UserError(f"corpus folder {str(root)!r}: {str(p)!r} is not a regular file (a FIFO, socket "
                                "or device); move it out of the folder")
    for p in found:
        _refuse_kernel_file(p)
    return iter(sorted(found, key=lambda p: p.relative_to(root).as_posix()))


# ---- reading ------------------------------------------------------------------------------------


def _read_text_chunks(source: CorpusSource, chunk_bytes: int) -> Iterator[tuple[str, bytes]]:
    """Yield ``(decoded text, raw bytes)`` per chunk of every file, validating as it goes."""
    for path in source.files:
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        offset = 0
        try:  # non-blocking: a file that would block forever (a FIFO with a silent writer) is refused
            fh = os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb", buffering=0)
        except OSError as exc:
            raise UserError(f"cannot read corpus file {str(path)!r}: {exc.strerror}; check the path and permissions") from None
        with fh:
            while True:
                try:
                    raw = fh.read(chunk_bytes)
                except BlockingIOError:
                    raw = None
                except OSError as exc:
                    raise UserError(f"cannot read corpus file {str(path)!r}: {exc.strerror}") from None
                if raw is None:
                    raise UserError(f"corpus file {str(path)!r} blocks when read (a pipe or device with nothing "
                                    "to read); give a regular text file")
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
