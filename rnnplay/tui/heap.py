"""Garbage collection paced by the app: short collections at times it picks, not in a key press.

Measured here (2 cores, training while keys were pressed): with torch imported a full collection
walks ~370k objects and took 200-350 ms, every few seconds, holding the GIL, so the screen froze
and a key press waited. ``gc.freeze()`` takes what is loaded (torch, the model, Textual's
classes) out of those walks. What is left still came as automatic collections of 20-60 ms in the
middle of a redraw (Textual makes many short-lived objects per frame). So once the training stack
has loaded, automatic collection is off and the app collects on its own clock: the young
generation every 0.25 s (a few ms), the middle one every 2 s, everything every minute. Training
threads allocate freely in between; nothing grows for long.
"""

from __future__ import annotations

import gc

PERIOD_S = 0.25  # young generation
MIDDLE_EVERY = 8  # periods: generation 1 every 2 s
FULL_EVERY = 240  # periods: a full collection every minute


class HeapPacer:
    """Owns the process's GC settings while the app runs (see the module docstring)."""

    def __init__(self) -> None:
        self.active = False
        self.ticks = 0
        self._was_enabled = gc.isenabled()

    def settle(self) -> None:
        """Collect, freeze what is alive now, and take over collection (UI thread).

        Called when the training stack has loaded and when a run is built. What an earlier call
        froze is scanned once more, so a finished run's cycles are collected.
        """
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        if not self.active:
            self._was_enabled = gc.isenabled()
            gc.disable()
            self.active = True

    def tick(self) -> int | None:
        """The app's timer calls this every PERIOD_S; returns the generation collected."""
        if not self.active:
            return None
        self.ticks += 1
        generation = 2 if self.ticks % FULL_EVERY == 0 else 1 if self.ticks % MIDDLE_EVERY == 0 else 0
        gc.collect(generation)
        return generation

    def release(self) -> None:
        """Give collection back to Python as it was (the app is closing)."""
        gc.unfreeze()
        if self.active and self._was_enabled:
            gc.enable()
        self.active = False
