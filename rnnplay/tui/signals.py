"""Resume only from our own suspend: a stray SIGCONT must not restart Textual's terminal driver.

Textual's Linux driver treats every SIGCONT as the end of a ctrl+z suspend and starts
"application mode" again: another input thread and another output thread, with the old ones still
running. A SIGSTOP / SIGCONT pair that did not come through SIGTSTP (``kill -STOP``, a job
scheduler suspending and resuming a job, a benchmark taking turns) left the app with two readers
of the terminal, and quitting then hung joining one of them (seen here in tmux, 1 run in 4).
:func:`guard_sigcont` passes SIGCONT on only after a SIGTSTP; a stray one just asks for a redraw.
"""

from __future__ import annotations

import signal
from typing import Callable


def guard_sigcont(on_stray: Callable[[], None]) -> bool:
    """Wrap the SIGTSTP / SIGCONT handlers the driver installed (main thread only).

    Returns False (and changes nothing) when there are no such handlers, e.g. under the headless
    test driver or on a platform without these signals.
    """
    if not (hasattr(signal, "SIGTSTP") and hasattr(signal, "SIGCONT")):
        return False
    on_tstp, on_cont = signal.getsignal(signal.SIGTSTP), signal.getsignal(signal.SIGCONT)
    if not (callable(on_tstp) and callable(on_cont)):
        return False
    suspended = False

    def tstp(signum, frame) -> None:
        nonlocal suspended
        suspended = True
        on_tstp(signum, frame)  # type: ignore[operator]  # Textual's: leave app mode, then SIGSTOP

    def cont(signum, frame) -> None:
        nonlocal suspended
        if suspended:
            suspended = False
            on_cont(signum, frame)  # type: ignore[operator]  # back from our own suspend
        else:
            on_stray()

    signal.signal(signal.SIGTSTP, tstp)
    signal.signal(signal.SIGCONT, cont)
    return True
