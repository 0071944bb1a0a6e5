"""Where the app writes what went wrong: a log folder in the user's cache, never the terminal.

An unexpected error in the app (a bug) must not leave a long traceback over the user's shell: the
traceback goes to ``crash-<time>-<pid>.log`` in :func:`log_dir`, the run is stopped and saved, and
the command prints one line naming the error and that file, then exits with 1. Errors the app
survives (a training thread that failed, a save that failed) are logged to ``app.log`` in the same
folder, which is only created when something is written.

The folder: ``$RNNPLAY_LOG_DIR``, else ``$XDG_CACHE_HOME/rnnplay``, else ``~/.cache/rnnplay``; when it
cannot be written, the system's temporary folder. This module never imports textual or torch.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

LOGGER = "rnnplay.tui"


def log_dir() -> Path:
    """The folder for the app's logs (see the module docstring); not created here."""
    explicit = os.environ.get("RNNPLAY_LOG_DIR")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "rnnplay"


def _writable_dir() -> Path:
    for folder in (log_dir(), Path(tempfile.gettempdir()) / f"rnnplay-{os.getuid() if hasattr(os, 'getuid') else 0}"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder
        except OSError:
            continue
    return Path(tempfile.gettempdir())


@dataclass(frozen=True)
class Crash:
    """An unexpected error: ``summary`` is one line ("IndexError: ..."), ``log`` the file with the
    traceback (None when even that could not be written)."""

    summary: str
    log: Path | None


def record_crash(error: BaseException) -> Crash:
    """Write ``error``'s traceback to a new file in the log folder; return what to tell the user."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    message = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
    summary = type(error).__name__ + (f": {message}" if message else "")
    path: Path | None = _writable_dir() / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    try:
        with open(path, "x", encoding="utf-8") as fh:  # type: ignore[arg-type]
            fh.write(f"rnnplay app crash at {time.strftime('%Y-%m-%d %H:%M:%S')} (pid {os.getpid()})\n\n{text}")
    except OSError:
        path = None
    return Crash(summary, path)


def attach_file_log() -> Path:
    """Send the app's logged errors (``logging.getLogger("rnnplay.tui")``) to ``app.log`` in the log
    folder, created on the first record; while the app owns the terminal nothing may be printed."""
    logger = logging.getLogger(LOGGER)
    for handler in logger.handlers:
        if getattr(handler, "_rnnplay", False):
            return Path(handler.baseFilename)  # type: ignore[attr-defined]
    path = _writable_dir() / "app.log"
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._rnnplay = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False
    return path
