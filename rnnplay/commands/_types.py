"""argparse value types that reject out-of-range values with a clear message."""

from __future__ import annotations

import argparse


def _number(kind, text: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None


def positive_int(text: str) -> int:
    v = _number(int, text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def nonneg_int(text: str) -> int:
    v = _number(int, text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {v}")
    return v


def positive_float(text: str) -> float:
    v = _number(float, text)
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return v


def probability(text: str) -> float:
    """Dropout-style probability in [0, 1)."""
    v = _number(float, text)
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return v


def seed(text: str) -> int:
    """A seed torch's generators take: 0 to 2**63 - 1 (as ``rnnplay train --seed``)."""
    from rnnplay.config import SEED_MAX

    v = _number(int, text)
    if not 0 <= v <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be from 0 to {SEED_MAX} (2**63 - 1), got {v}")
    return v
