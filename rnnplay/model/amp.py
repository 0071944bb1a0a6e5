"""Autocast (mixed precision) for the hand-written autograd Functions and the fused kernels.

Under ``torch.autocast`` torch casts each eligible op to the lower precision on its own. Our
recurrences are not single ops: the fast path is one autograd Function (``StackedRNN``) whose
forward writes in place into preallocated buffers, and whose backward must see the dtypes its
forward saw. So, as torch documents for custom Functions, the Function is declared for autocast
with ``torch.amp.custom_fwd(device_type=..., cast_inputs=dtype)`` and
``torch.amp.custom_bwd(device_type=...)``: inside an autocast region its floating-point inputs
(input, state, weights) are cast once to the region's dtype and the forward runs with autocast
off, entirely in that dtype; the backward runs in the same autocast state. Gradients come back
to the float32 parameters as float32 (autograd casts a gradient to its input's dtype).

``cast_inputs`` is fixed when the decorator is applied, and autocast has a device type, so
:func:`variant` makes (once, cached) a subclass of the Function per (device type, dtype).
:func:`active_dtype` says whether an autocast region is open for a device type.
"""

from __future__ import annotations

from functools import lru_cache

import torch


def active_dtype(device_type: str) -> torch.dtype | None:
    """The autocast dtype in force for ``device_type`` ("cuda", "cpu"), or None outside autocast."""
    try:
        if not torch.is_autocast_enabled(device_type):
            return None
        return torch.get_autocast_dtype(device_type)
    except (RuntimeError, TypeError):  # a device type autocast does not know
        return None


@lru_cache(maxsize=None)
def variant(fn: type, device_type: str, dtype: torch.dtype) -> type:
    """``fn`` (a torch.autograd.Function) declared for autocast on ``device_type``, computing in ``dtype``."""
    fwd = torch.amp.custom_fwd(fn.forward, device_type=device_type, cast_inputs=dtype)
    bwd = torch.amp.custom_bwd(fn.backward, device_type=device_type)
    name = f"{fn.__name__}_{device_type}_{str(dtype).replace('torch.', '')}"
    return type(name, (fn,), {"forward": staticmethod(fwd), "backward": staticmethod(bwd),
                              "__doc__": f"{fn.__name__} under autocast ({device_type}, {dtype})."})


def cast(t: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A floating-point tensor in ``dtype`` (indices and None unchanged): autocast's input cast."""
    if t is None or not t.is_floating_point() or t.dtype == torch.float64:
        return t
    return t.to(dtype)
