"""glibc's allocator policy for the two kinds of long command: training and scoring.

Both allocate and free the same large buffers over and over (a training step's activations and
gradients, tens of MB each; a scoring chunk's), and glibc's defaults serve them badly in opposite
ways, so each command sets its policy once at its start. Both are process-wide, cannot be undone,
and are no-ops off glibc (musl, macOS, Windows); a library user may call them too.

* :func:`keep_freed_memory` (training: ``rnnplay train``, so also each run of ``sweep``, ``classify``
  and the app). glibc
  serves a buffer over its mmap threshold with a fresh mapping and unmaps it on free, so the next
  step's buffer faults its pages in again, one 4 KB fault per page. On this project's 2-core VM
  such a first touch costs ~10 us a page: writing a fresh (64, 768) row of a gate buffer took
  650-835 us against 26 us for a reused one. Here buffers of up to 32 MB (glibc's largest
  threshold) come from the heap, and freed memory stays there for the next step: the default
  model's GRU step had ~10,000 minor faults per step before and ~0 after (tanh 97 -> 85 ms, GRU
  279 -> 259 ms, LSTM 381 -> 360 ms per W2 training step, in process). The price is that the peak
  of a step's memory stays with the process, which training reaches again every step anyway.
* :func:`fixed_mmap_threshold` (``rnnplay score``): the opposite, for a command whose memory must
  not grow with its input. Every buffer of 1 MiB or more gets its own mapping, returned on free;
  glibc's moving threshold otherwise sent later ones to the heap, which fragmented, and the peak
  RSS crept up with the length of the file. The scorer reuses its big buffers itself
  (:class:`rnnplay.model.fast.Workspace`), so it pays few faults for that.
"""

from __future__ import annotations

import sys

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc's largest mmap threshold on 64-bit (HEAP_MAX_SIZE / 2)
_KEEP_BYTES = 1 << 30  # freed memory kept before the heap is trimmed


def _mallopt():
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return None


def keep_freed_memory() -> bool:
    """Serve buffers up to 32 MB from the heap and keep up to 1 GB of freed memory for reuse.
    Returns whether it was set (glibc only)."""
    mallopt = _mallopt()
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES))


def fixed_mmap_threshold(nbytes: int = 1 << 20) -> bool:
    """Serve every allocation of ``nbytes`` or more with its own mmap, returned to the system on
    free (a fixed threshold also stops glibc from raising it). Returns whether it was set."""
    mallopt = _mallopt()
    return False if mallopt is None else bool(mallopt(_M_MMAP_THRESHOLD, nbytes))
