"""Shape checks that name the expected and the received shape."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _fmt(shape: Sequence[int | str | None]) -> str:
    return "(" + ", ".join("*" if d is None else str(d) for d in shape) + ")"


def check_shape(name: str, t: torch.Tensor, expected: Sequence[int | None], what: str = "") -> None:
    """Raise ValueError unless ``t`` has ``len(expected)`` dims matching ``expected`` (None = any)."""
    ok = t.dim() == len(expected) and all(e is None or e == s for e, s in zip(expected, t.shape))
    if not ok:
        hint = f" {what}" if what else ""
        raise ValueError(
            f"{name}: expected shape {_fmt(expected)}{hint}, got {_fmt(tuple(t.shape))}"
        )
