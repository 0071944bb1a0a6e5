"""Messages that cross from worker threads to the UI (``post_message`` is thread-safe).

Only state changes travel as messages; per-step numbers go through the metrics buffer.
Messages that carry only the latest state define ``can_replace`` so queued copies collapse.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message


class SessionChanged(Message):
    """An event of the training session (rnnplay.tui.controller: a phase change, the run built or
    stopped, a checkpoint written or not); the session itself knows nothing of Textual."""

    def __init__(self, event: Any) -> None:
        super().__init__()
        self.event = event


class CheckpointLoaded(Message):
    """A checkpoint was opened for generation (``source`` has ``sampler()`` and ``vocab``)."""

    def __init__(self, path: str, source: Any, error: str | None = None) -> None:
        super().__init__()
        self.path = path
        self.source = source
        self.error = error


class GenerateProgress(Message):
    """The text generated so far (latest state: a newer one replaces a queued one)."""

    def __init__(self, run_id: int, text: str, activations: list[float] | None, done: bool,
                 error: str | None = None, chars_per_s: float | None = None) -> None:
        super().__init__()
        self.run_id = run_id
        self.text = text
        self.activations = activations
        self.done = done
        self.error = error
        self.chars_per_s = chars_per_s

    def can_replace(self, message: Message) -> bool:
        # Textual drops *this* (older) message when the next queued one may supersede it
        return isinstance(message, GenerateProgress) and message.run_id == self.run_id and not self.done


class ClassifyProgress(Message):
    """Latest classifier epochs (the full list so far, so a replaced copy loses nothing)."""

    def __init__(self, epochs: tuple) -> None:
        super().__init__()
        self.epochs = epochs

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ClassifyProgress)


class ClassifyFinished(Message):
    def __init__(self, result: Any, inspection: Any, error: str | None = None, stopped: bool = False) -> None:
        super().__init__()
        self.result = result
        self.inspection = inspection
        self.error = error
        self.stopped = stopped


class BackendLoaded(Message):
    """The training stack (torch, the pipeline) finished importing in the background."""

    def __init__(self, defaults: dict, error: str | None = None, devices: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.defaults = defaults
        self.devices = devices  # what --device can name here (auto, cpu, each cuda:N, mps)
        self.error = error
