"""``--precision fp32|bf16|fp16``: mixed-precision training steps; the weights stay float32.

* fp32: no autocast (the default; every figure in README is fp32).
* bf16: ``torch.autocast(device, torch.bfloat16)`` around the forward and the loss, on CUDA with
  bf16 support or on the CPU. bfloat16 has float32's range, so no gradient scaler is needed.
* fp16: ``torch.autocast("cuda", torch.float16)`` and a ``torch.amp.GradScaler``: the loss is
  scaled before ``backward()``, the gradients unscaled before clipping, and a step whose scaled
  gradients overflowed is skipped (the scaler lowers its scale) instead of counting as divergence.
  CUDA only: float16 on the CPU is refused.

The parameters, the optimizer's state and so the checkpoints are float32 whatever the precision
(autocast casts copies for the forward); the carried hidden state is kept in float32 between
steps. The recurrences run in the autocast dtype: the fused kernels through autocast itself, the
hand-written fast path declared for it (rnnplay.model.amp). The scaler's state is not saved: a
resumed fp16 run starts again from the default scale (it adapts within a few steps).
"""

from __future__ import annotations

import contextlib

import torch

from rnnplay.errors import UserError

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(name: str, device: torch.device) -> None:
    """UserError (one line) when ``device`` cannot train in ``name``."""
    if name not in DTYPES:
        raise UserError(f"--precision {name!r}: choose one of {', '.join(DTYPES)}")
    if name == "fp32":
        return
    if device.type == "cuda":
        if name == "bf16" and not torch.cuda.is_bf16_supported():
            gpu = torch.cuda.get_device_name(device)
            raise UserError(f"--precision bf16: this GPU ({gpu}) does not support bfloat16 (it needs compute "
                            "capability 8.0 or later); use --precision fp16 or fp32")
        return
    if device.type == "cpu":
        if name == "fp16":
            raise UserError("--precision fp16 needs a CUDA GPU (float16 autocast with a gradient scaler); on the "
                            "CPU use --precision bf16 or fp32")
        return
    raise UserError(f"--precision {name}: mixed precision runs on CUDA or the CPU, not on {device.type}; "
                    "use --precision fp32")


class Precision:
    """The autocast region and the gradient scaler of a run's training step."""

    def __init__(self, name: str, device: torch.device) -> None:
        check_precision(name, device)
        self.name = name
        self.device_type = device.type
        self.dtype = DTYPES[name]
        self.scaler = torch.amp.GradScaler(device.type, enabled=name == "fp16")

    @property
    def scaling(self) -> bool:
        return self.scaler.is_enabled()

    def autocast(self):
        """The region the forward and the loss run in (nothing for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)
