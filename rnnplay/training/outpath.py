"""Who may write a checkpoint path: a run writes only files it made, and never shares one with another run.

    with claim_out(config.out, corpus=config.corpus, resume=resume, force=force) as claim:
        config = dataclasses.replace(config, out=claim.path)  # claim.path: the default name, if out was None
        run = build_run(config, resume=resume)
        claim.adopt(run)                                      # another run's file? refused; best loss adopted
        ...train; every save goes to claim.path and best_path(claim.path)...

Before anything is built, :func:`claim_out` refuses a ``--out`` that is empty, a folder, a best-so-far
file, the corpus or a path inside the corpus folder, in a folder it cannot write, or an existing file
(``NAME.pt`` or ``NAME.best.pt``) that is not an rnnplay checkpoint: rnnplay never writes over a file
it did not make. A checkpoint of another run at the path is refused unless ``--force``; resuming is
the way to reuse a run's own path. Without ``--out`` a new name is claimed exclusively
(``O_CREAT | O_EXCL``: an empty placeholder), so two runs started in the same second get different
files. While the run trains it holds an ``flock`` on ``NAME.pt.lock``, which records its pid, host
and start time: a second run on the same path is refused with a line naming the holder. The lock
file is removed when the run ends; a ``kill -9`` leaves it unlocked (the kernel drops the lock), so
the next run takes it over.

A run's identity is the ``run_uid`` stored in its checkpoints (a fresh one per new run, carried on
resume). :meth:`Claim.adopt` compares it with the files at the path and, for this run's own
``NAME.best.pt``, adopts that file's validation loss, so the best file is replaced only by a better
model (a resume from an older periodic checkpoint no longer overwrites it with a worse one).
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from rnnplay.errors import UserError
from rnnplay.training.checkpoint import FORMAT, best_path, is_best_path, resume_out

try:
    import fcntl
except ImportError:  # Windows: no flock; the exclusive name claim still holds
    fcntl = None  # type: ignore[assignment]

DEFAULT_FOLDER = "checkpoints"


# ---- names -------------------------------------------------------------------------------------


def run_stem(corpus: str) -> str:
    """A file-name stem for a run on ``corpus``: ``data/my texts.txt`` -> ``my-texts``."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", os.path.basename(os.path.normpath(corpus or "")) or "corpus")
    stem = re.sub(r"\.txt$", "", stem).strip("-.")[:40]
    return stem or "corpus"


def claim_new_name(folder: str | os.PathLike, corpus: str) -> str:
    """Create ``<folder>/<corpus>-<date>-<time>[-N].pt`` exclusively (an empty placeholder); its path.

    ``O_EXCL`` makes the claim atomic: of two runs started in the same second, one gets ``-2``.
    """
    folder = str(folder)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create checkpoint folder {folder!r} ({exc.strerror}); "
                        "pass --out PATH in a folder you can write") from None
    base = os.path.join(folder, f"{run_stem(corpus)}-{time.strftime('%Y%m%d-%H%M%S')}")
    for n in range(1, 10_000):
        path = base + (".pt" if n == 1 else f"-{n}.pt")
        if os.path.lexists(best_path(path)) or os.path.lexists(lock_path(path)):
            continue
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        except OSError as exc:
            raise UserError(f"cannot create a checkpoint in {folder!r} ({exc.strerror}); "
                            "pass --out PATH in a folder you can write") from None
        os.close(fd)
        return path
    raise UserError(f"no free checkpoint name left for {base}.pt; pass --out PATH")


def lock_path(out: str | os.PathLike) -> str:
    return str(out) + ".lock"


# ---- what is at a path -------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """What an existing file at a checkpoint path is. ``checkpoint`` False: not an rnnplay checkpoint."""

    path: str
    checkpoint: bool
    run_uid: str | None = None
    step: int | None = None
    best_val_loss: float | None = None
    saved_at: str | None = None


def inspect_file(path: str) -> Found | None:
    """None where nothing (or an empty file) is at ``path``; else what it is, read without its tensor data."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UserError(f"cannot check {path!r} ({exc.strerror}); choose another --out") from None
    if st.st_size == 0:
        return None  # holds nothing (e.g. the placeholder of a run killed before its first save)
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's pickle warnings about a foreign file: we decide here
            payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - whatever it is, it is not a checkpoint we can recognise
        return Found(path, False)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        return Found(path, False)
    best = payload.get("best_val_loss")
    step = payload.get("step")
    return Found(path, True, run_uid=payload.get("run_uid") if isinstance(payload.get("run_uid"), str) else None,
                 step=step if isinstance(step, int) else None,
                 best_val_loss=float(best) if isinstance(best, (int, float)) else None,
                 saved_at=payload.get("saved_at") if isinstance(payload.get("saved_at"), str) else None)


def _describe(found: Found) -> str:
    bits = [f"run {found.run_uid[:8]}" if found.run_uid else "a run without an id (older rnnplay)"]
    if found.step is not None:
        bits.append(f"step {found.step}")
    if found.saved_at:
        bits.append(f"saved {found.saved_at}")
    return ", ".join(bits)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


# ---- checks before anything is built -----------------------------------------------------------


def check_out_path(out: str, corpus: str | None = None) -> None:
    """Refuse an ``--out`` no run may write (see the module docstring); creates its folder."""
    if not out or not out.strip():
        raise UserError("--out is empty; give a checkpoint file path such as runs/my.pt (or leave --out out)")
    if os.path.isdir(out):
        raise UserError(f"--out {out!r} is a folder; give a file path such as {os.path.join(out, 'run.pt')}")
    if is_best_path(out):
        raise UserError(f"--out {out!r} names a best-so-far file; give {resume_out(out)!r} "
                        "(the best model then goes to that name with .best.pt)")
    if corpus is not None:
        _check_not_corpus(out, corpus)
    folder = os.path.dirname(os.path.abspath(out))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out!r}: cannot create folder {folder!r} ({exc.strerror}); choose another path") from None
    try:  # really try: os.access says yes to root on a read-only file system
        fd, probe = tempfile.mkstemp(prefix=".rnnplay-write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"--out {out!r}: cannot write in folder {folder!r} ({_reason(exc)}); choose another path") from None
    for path in (out, best_path(out)):
        if os.path.lexists(path) and not os.path.isfile(path):
            raise UserError(f"{path!r} exists and is not a regular file; choose another --out")


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower() if exc.errno != errno.EACCES else "permission denied"


def _check_not_corpus(out: str, corpus: str) -> None:
    from rnnplay.data.corpus import resolve_corpus

    try:
        source = resolve_corpus(corpus)
    except UserError:
        return  # the corpus itself is refused later, with its own message
    targets = [os.path.realpath(p) for p in (out, best_path(out), lock_path(out))]
    files = {os.path.realpath(f) for f in source.files}
    for target in targets:
        if target in files:
            raise UserError(f"--out {out!r} would overwrite the corpus file {target!r}; choose another path")
    if source.kind in ("folder", "python"):
        root = os.path.realpath(source.location)
        if any(os.path.commonpath([root, t]) == root for t in targets):
            raise UserError(f"--out {out!r} is inside the corpus folder {root!r} (the checkpoint would become "
                            "part of the corpus and the run could not be resumed); choose a path outside it")


def after_abort(out: str | None, saved_here: str | None) -> str:
    """The line for a run aborted by a second Ctrl-C: what is on disk (saves are atomic, so it is whole)."""
    what = "aborted by a second Ctrl-C; the step in flight was not saved"
    if out and os.path.isfile(out) and os.path.getsize(out) > 0:
        return f"{what}; {out} holds the last complete save{'' if saved_here else ' (from before this run)'}"
    return f"{what}, and no checkpoint had been written yet"


# ---- the lock ----------------------------------------------------------------------------------


class OutLock:
    """An ``flock`` on ``NAME.pt.lock`` naming its holder; ``release`` removes the file."""

    def __init__(self, out: str) -> None:
        self.path = lock_path(out)
        self.out = out
        self.fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None:
            return
        for _ in range(100):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise UserError(f"cannot create the lock file {self.path!r} ({_reason(exc)}); choose another --out") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise UserError(f"checkpoint {self.out!r} is in use by another rnnplay run ({holder}); "
                                "wait for it to end, or choose another --out") from None
            except OSError:  # a file system without locks: the exclusive name claim is all there is
                os.close(fd)
                return
            try:  # the holder before us may have removed the file between our open and our lock
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
            os.ftruncate(fd, 0)
            os.write(fd, (json.dumps(info) + "\n").encode())
            self.fd = fd
            return
        raise UserError(f"could not lock {self.path!r}; try again")

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.path)  # while still locked: a waiting run then sees a new file, not this one
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"pid {info['pid']} on host {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "its lock file gives no details"


# ---- the claim ---------------------------------------------------------------------------------


class Claim:
    """The right to write ``path`` (and its best file) for one run; see :func:`claim_out`."""

    def __init__(self, path: str, placeholder: bool, force: bool, resume: str | None) -> None:
        self.path = path
        self.best = best_path(path)
        self.placeholder = placeholder  # we created an empty file at path: remove it if nothing was saved
        self.force = force
        self.resume = resume
        self.lock = OutLock(path)
        self.found = {p: inspect_file(p) for p in (path, self.best)} if not placeholder else {}

    def check_before_build(self) -> None:
        for p, found in self.found.items():
            if found is None:
                continue
            if not found.checkpoint:
                raise UserError(f"{p!r} exists and is not an rnnplay checkpoint; rnnplay writes only over its own "
                                "files: choose another --out (or move that file away)")
            if self.resume is None and not self.force:
                raise UserError(f"{p!r} holds a checkpoint of another run ({_describe(found)}); pass --resume {p} "
                                "to continue it, --force to replace it, or choose another --out")

    def adopt(self, run) -> None:
        """Refuse another run's checkpoint at the path (resuming); make the best file's loss the bar to beat."""
        run_uid = getattr(run, "run_uid", None)
        for p, found in self.found.items():
            if found is None or not found.checkpoint:
                continue
            own = (found.run_uid is not None and found.run_uid == run_uid) or (
                self.resume is not None and (_same_file(p, self.resume) or found.run_uid is None))
            if not own and not self.force:
                raise UserError(f"{p!r} holds a checkpoint of another run ({_describe(found)}), not of the one in "
                                f"{self.resume!r}; pass --force to replace it, or choose another --out")
            if own and p == self.best and found.best_val_loss is not None:
                state = run.state
                if state.best_val_loss is None or found.best_val_loss < state.best_val_loss:
                    state.best_val_loss = found.best_val_loss

    def cleanup_temporaries(self) -> None:
        from rnnplay.training.checkpoint import remove_stale_temporaries

        for p in (self.path, self.best):
            remove_stale_temporaries(Path(p))

    def __enter__(self) -> Claim:
        try:
            self.lock.acquire()
            self.check_before_build()
            self.cleanup_temporaries()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.placeholder:
            try:
                if os.path.getsize(self.path) == 0:
                    os.unlink(self.path)
            except OSError:
                pass
        self.lock.release()


def claim_out(out: str | None, *, corpus: str | None, resume: str | None = None, force: bool = False,
              folder: str = DEFAULT_FOLDER) -> Claim:
    """Check ``out`` (None: claim a new name in ``folder``) and return the :class:`Claim` to enter.

    ``corpus`` is the run's ``--corpus`` value (checked against ``out``); ``resume`` the checkpoint resumed.
    """
    if out is None:
        path = claim_new_name(folder, corpus or "corpus")
        try:
            check_out_path(path, corpus)
        except BaseException:
            os.unlink(path)
            raise
        return Claim(path, placeholder=True, force=force, resume=resume)
    check_out_path(out, corpus)
    return Claim(out, placeholder=False, force=force, resume=resume)
