"""The optimizer the trainers use: torch's Adam, fused where torch supports it.

``torch.optim.Adam`` on CPU defaults to its for-loop implementation (one Python-driven kernel
chain per parameter tensor). ``fused=True`` runs one kernel over all parameters; on the W1
classifier (10 parameter tensors) its step measured about half the default's time, which is a
few percent of a whole training step (benchmarks/bench_rnn.py prints the comparison). The
update is the same Adam to float rounding.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def fused_supported(params: list[torch.Tensor]) -> bool:
    """True when torch's fused Adam runs on these parameters (floating point, a supported device)."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

        devices = set(_get_fused_kernels_supported_devices())
    except ImportError:  # older torch: fused Adam is CUDA-only
        devices = {"cuda"}
    return bool(params) and all(p.is_floating_point() and p.device.type in devices for p in params)


def make_adam(
    params: Iterable[torch.Tensor] | Iterable[dict],
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    fused: bool | None = None,
) -> torch.optim.Adam:
    """torch.optim.Adam with ``fused=True`` when supported (``fused=None``, the default), else torch's default.

    Pass ``fused=False`` to force the unfused version (for example to compare). The state dict has
    the same layout either way, so checkpoints move between fused and unfused optimizers.
    """
    params = list(params)
    flat = [p for g in params for p in (g["params"] if isinstance(g, dict) else [g])]
    use_fused = fused_supported(flat) if fused is None else fused
    kwargs = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    if use_fused:
        return torch.optim.Adam(params, fused=True, **kwargs)
    return torch.optim.Adam(params, **kwargs)
