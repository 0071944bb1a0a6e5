"""Picking the torch device from ``--device auto|cpu|cuda|cuda:N|mps``."""

from __future__ import annotations

import torch

from rnnplay.errors import UserError

from rnnplay.config import DEVICE_HELP


def available_devices() -> tuple[str, ...]:
    """The --device names that work here, for a chooser: auto, cpu, each cuda:N, mps."""
    mps = getattr(torch.backends, "mps", None)
    cuda = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return ("auto", "cpu", *cuda, *(["mps"] if mps is not None and mps.is_available() else []))


def resolve_device(name: str = "auto") -> torch.device:
    """auto -> cuda if available, else mps if available, else cpu. An unavailable choice is a UserError."""
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps is not None and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_ok else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: no CUDA GPU is visible to torch here; use --device cpu or auto")
        device = torch.device(name)
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise UserError(f"--device {name}: this machine shows {count} GPU(s), cuda:0 to cuda:{count - 1}")
        return device
    if name == "mps":
        if not mps_ok:
            raise UserError("--device mps: Apple's MPS backend is not available here; use --device cpu or auto")
        return torch.device("mps")
    raise UserError(f"--device {name!r}: choose one of {DEVICE_HELP}")
