"""The ``python`` corpus: this Python's standard library sources, assembled at run time.

Every machine that runs rnnplay has it, so it is a real multi-megabyte text we never ship. The
``.py`` files under ``sysconfig.get_paths()["stdlib"]`` are taken in sorted order of their
relative paths, skipping test suites (``test``, ``tests``, ``idle_test``), third-party folders
(``site-packages``, ``dist-packages``), codec tables (``encodings``), generated docs
(``pydoc_data``), caches and files that are not clean UTF-8, until
:data:`CAP_BYTES` (4 MB) is reached. Files are concatenated as they are. The exact text depends on
the Python version, so a checkpoint trained on it resumes only under the same Python.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

CAP_BYTES = 4_000_000
SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__", "test", "tests", "idle_test", "encodings", "pydoc_data"}
DESCRIPTION = f"this Python's standard library sources (.py, sorted, first {CAP_BYTES // 1_000_000} MB; assembled at run time)"


def stdlib_dir() -> str:
    return sysconfig.get_paths()["stdlib"]


def stdlib_files(cap_bytes: int = CAP_BYTES) -> list[Path]:
    """The files of the ``python`` corpus, in order (see the module docstring)."""
    from rnnplay.errors import UserError

    root = Path(stdlib_dir())
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
        found.extend(Path(dirpath) / f for f in filenames if f.endswith(".py"))
    found.sort(key=lambda p: p.relative_to(root).as_posix())
    chosen, total = [], 0
    for path in found:
        if total >= cap_bytes:
            break
        try:
            raw = path.read_bytes()
            raw.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if b"\x00" in raw or not raw:
            continue
        chosen.append(path)
        total += len(raw)
    if not chosen:
        raise UserError(f"the python corpus needs the standard library's .py sources, and none were found "
                        f"under {root}; install them (e.g. the python3-dev/libpython3-stdlib package) or use another corpus")
    return chosen
