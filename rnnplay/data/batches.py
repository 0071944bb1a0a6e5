"""Training batches: truncated-BPTT streams with a seeded random phase per epoch.

The training text is cut into ``B`` contiguous streams, one per batch row, and each step takes the
next ``T`` characters of every stream (plus one for the targets). The trainer carries the hidden
state from one step to the next, so the RNN sees context far beyond ``T`` characters: every
prediction has history, none is wasted on a cold zero state (random windows would reset the state
each batch and spend the first characters of every window warming up). This is char-rnn's scheme.

Each epoch starts at a random offset in ``[0, T)`` drawn from a seeded ``torch.Generator``, so
window boundaries move from epoch to epoch and a small corpus does not repeat the same windows;
the carried hidden state is reset at each epoch start.

The whole position is ``(epoch, offset, index)`` plus the generator's state: :meth:`state_dict`
returns it as plain ints and a uint8 tensor, and a checkpoint stores it, so a resumed run sees
exactly the batches the uninterrupted run would have seen.

Validation (:func:`val_chunks`) is fixed and uses no randomness: up to ``B`` streams that start
evenly spread over the validation text, read ``T`` at a time with the state carried; the periodic
estimate reads ``max_chars`` of them, the end-of-run exact loss all of the text.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from rnnplay.errors import UserError


class StreamBatches:
    """``next()`` -> (x (B, T) long, y (B, T) long, reset: bool); reset means "zero the carried state"."""

    def __init__(self, data: torch.Tensor, batch_size: int, seq_len: int, seed: int) -> None:
        n = int(data.numel())
        if (n - 1) // batch_size < seq_len + 1:
            raise UserError(
                f"the training text ({n} characters) is too short for --batch-size {batch_size} × "
                f"--seq-len {seq_len}; lower them (each of the {batch_size} streams needs at least "
                f"{seq_len + 2} characters) or use a longer corpus"
            )
        self.data = data  # (N,) compact dtype, stays on the CPU
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = -1
        self.offset = 0
        self.index = 0
        self.steps_in_epoch = 0
        self._streams: torch.Tensor | None = None  # (B, L + 1) view of data
        self._start_epoch()

    def _start_epoch(self) -> None:
        self.epoch += 1
        T = self.seq_len
        self.offset = int(torch.randint(0, T, (1,), generator=self.generator))
        self.index = 0
        self._layout()

    def _layout(self) -> None:
        T, B = self.seq_len, self.batch_size
        n = int(self.data.numel()) - self.offset
        stream_len = (n - 1) // B  # characters per stream, targets need one more
        if stream_len < T + 1:  # offset ate too much of a tiny corpus
            self.offset, stream_len = 0, (int(self.data.numel()) - 1) // B
        self.steps_in_epoch = stream_len // T
        # stream b is flat[b*L : (b+1)*L]; its last target is the next stream's first character
        self._flat = self.data[self.offset :]  # a view: offset + B*L + 1 <= N by construction
        self._stream_len = stream_len

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        if self.index >= self.steps_in_epoch:
            self._start_epoch()
        reset = self.index == 0
        T, B, L = self.seq_len, self.batch_size, self._stream_len
        starts = torch.arange(B) * L + self.index * T  # (B,)
        cols = starts.unsqueeze(1) + torch.arange(T + 1)  # (B, T + 1)
        window = self._flat[cols].long()  # (B, T + 1)
        self.index += 1
        return window[:, :-1], window[:, 1:], reset

    def __iter__(self):
        return self

    @property
    def chars_per_step(self) -> int:
        return self.batch_size * self.seq_len

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "offset": self.offset,
            "index": self.index,
            "seed": self.seed,
            "generator": self.generator.get_state(),  # uint8 tensor
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.epoch = int(state["epoch"])
        self.offset = int(state["offset"])
        self.index = int(state["index"])
        self._layout()


def val_chunks(data: torch.Tensor, batch_size: int, seq_len: int,
               max_chars: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed validation chunks (x (b, t), y (b, t)) long, read in order with the state carried.

    The split is cut into ``b`` equal regions and stream i reads the start of region i, so an
    estimate of ``max_chars`` characters is spread over the whole split (not just its start);
    with ``max_chars=None`` (or at least the split's length) the streams cover every character
    once: the exact validation loss. Chunks are converted one at a time (constant memory).
    """
    total = int(data.numel()) - 1  # predictable positions
    n = total if max_chars is None else min(total, max(1, int(max_chars)))
    streams = max(1, min(batch_size, n // max(1, seq_len)))
    region = total // streams
    stream_len = min(region, n // streams)
    starts = torch.arange(streams) * region  # (b,)
    for s in range(0, stream_len, seq_len):
        t = min(seq_len, stream_len - s)
        idx = (starts + s).unsqueeze(1) + torch.arange(t)  # (b, t) positions
        yield data[idx].long(), data[idx + 1].long()


def val_streams(data: torch.Tensor, batch_size: int, seq_len: int, max_chars: int | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """:func:`val_chunks` as a list."""
    return list(val_chunks(data, batch_size, seq_len, max_chars))
