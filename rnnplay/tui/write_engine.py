"""The Write tab's engine: the model's side of co-writing, on a worker thread of its own.

It owns a :class:`~rnnplay.tui.trail.Trail` (the state kept per position, so a key is one sampler
step and an undo costs nothing), runs the commands the pane's keys queue, in order, and posts the
latest view (:class:`WriteChanged`, only the newest matters) and memory views (:class:`MemoryReady`)
back. It takes a Sampler snapshot of the live weights (between two training steps) or of an opened
checkpoint when a ``source`` or ``reload`` command comes.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual.message import Message

POST_EVERY_S = 0.05


@dataclass(frozen=True)
class WriteView:
    """What the engine made of the text: a snapshot the UI draws (immutable; the engine goes on)."""

    text: str
    surprisal: tuple[float, ...]  # nats, per character
    top: tuple[tuple[Any, ...], ...]  # per position 0..len(text): Proposals, likeliest first
    source: str  # where the weights came from
    busy: str = ""  # what the engine is doing, if it takes a while
    note: str = ""  # something the user should know (characters dropped, the limit reached)


class WriteChanged(Message):
    """The engine's latest view (a newer one replaces a queued one)."""

    def __init__(self, view: WriteView, error: str | None = None) -> None:
        super().__init__()
        self.view = view
        self.error = error

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, WriteChanged) and self.error is None


class MemoryReady(Message):
    """The memory view for the character at ``pos`` of a text of ``length`` characters."""

    def __init__(self, pos: int, length: int, start: int, norms: list[float], error: str | None = None) -> None:
        super().__init__()
        self.pos, self.length, self.start, self.norms, self.error = pos, length, start, norms, error



class WriteEngine:
    """The engine's state and commands (runs on the engine thread only).

    post: hands a message to the UI (thread-safe); stop: set when the pane goes; commands: the
    queue of what the keys asked for (a command waiting there stops a long write); memory_wanted:
    () -> the (position, text length) whose memory view the UI shows, or None.
    """

    def __init__(self, post: Callable[[Message], Any], stop: threading.Event, commands: queue.Queue,
                 memory_wanted: Callable[[], tuple[int, int] | None]) -> None:
        self._post_message, self._stop, self._commands, self._memory_wanted = post, stop, commands, memory_wanted
        self.source: Any = None
        self.label = ""
        self.trail = None
        self.model = None
        self._memory_done: tuple[int, int] | None = None
        self.generator = None
        self.pending = ""  # the text, while no model is there to read it
        self.note = ""
        self._posted = 0.0

    def view(self, busy: str = "") -> WriteView:
        trail, note = self.trail, self.note
        self.note = ""
        if trail is None:
            return WriteView(self.pending, (float("nan"),) * len(self.pending), (), self.label, busy, note)
        return WriteView(trail.text, tuple(trail.surprisal), tuple(trail.top), self.label, busy, note)

    def post(self, busy: str = "", force: bool = True) -> None:
        now = time.perf_counter()
        if force or now - self._posted >= POST_EVERY_S:
            self._posted = now
            self._post_message(WriteChanged(self.view(busy)))

    def stopped(self) -> bool:
        return self._stop.is_set()

    def run(self, command: tuple, more) -> None:
        name, *args = command
        if name in ("source", "reload"):
            if name == "source":
                self.source, self.label = args
            if self.source is None:
                return
            text = self.trail.text if self.trail is not None else self.pending
            self.load(text)
        elif self.trail is None:  # no model yet: keep what is typed
            if name == "type":
                self.pending += args[0]
            elif name == "undo":
                self.pending = self.pending[:-args[0]] if args[0] else self.pending
            elif name == "clear":
                self.pending = ""
        elif name == "type":
            self.type(args[0])
        elif name == "pick":
            if self.trail.pick(args[0]) is None:
                self.note = f"no proposal {args[0]}"
        elif name == "undo":
            self.trail.undo(args[0])
        elif name == "run":
            self.write(*args)
        elif name == "clear":
            self.trail.undo(len(self.trail))
        elif name == "memory":
            self.memory()
            return
        if not more():
            self.post()
        else:
            self.post(force=False)

    def memory(self) -> None:
        wanted = self._memory_wanted()
        if wanted is None or wanted == self._memory_done or wanted[1] != len(self.trail):
            return
        self._memory_done = wanted
        pos, length = wanted
        if self.model is None:
            self._post_message(MemoryReady(pos, length, pos, [], error="this source has no model to ask"))
            return
        start, norms, _ = self.trail.memory(self.model, pos)
        self._post_message(MemoryReady(pos, length, start, norms))

    def load(self, text: str) -> None:
        import torch

        from rnnplay.model import Sampler
        from rnnplay.tui.backend import model_snapshot
        from rnnplay.tui.trail import Trail

        self.post(busy="taking the model's weights…")
        self.model = model_snapshot(self.source)  # the memory view differentiates through it
        self._memory_done = None
        sampler = Sampler(self.model) if self.model is not None else self.source.sampler()
        step = getattr(self.source, "step", None)
        if not hasattr(self.source, "path") and step is not None:
            self.label = f"weights of step {step:,}"
        self.trail = Trail(sampler, self.source.vocab)
        if self.generator is None:
            self.generator = torch.Generator(device=sampler.device).manual_seed(0)
        self.type(text)

    def type(self, text: str) -> None:
        vocab = self.trail.vocab
        unknown = vocab.unknown(text)
        if unknown:
            self.note = f"dropped characters the model never saw: {''.join(unknown)!r}"
            text = "".join(c for c in text if c in vocab)
        total = len(text)
        done = 0
        for start in range(0, total, 256):  # a long paste: progress every ~50 ms
            done += self.trail.extend(text[start:start + 256], stop=self.stopped)
            if self.stopped() or done < min(total, start + 256):
                break
            if total > 256:
                self.post(busy=f"reading {done:,}/{total:,} characters…", force=False)
        if done < total and not self.stopped():
            self.note = f"the text is at its limit of {len(self.trail):,} characters"

    def write(self, n: int, temperature: float) -> None:
        for i in range(n):
            if self.stopped() or not self._commands.empty():  # a key in between: stop writing
                break
            if self.trail.full:
                self.note = f"the text is at its limit of {len(self.trail):,} characters"
                break
            self.trail.sample(temperature, self.generator)
            self.post(busy=f"writing {i + 1}/{n}…", force=False)
