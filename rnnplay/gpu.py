"""What the app shows about the GPU a run trains on: memory in use (torch) and utilization (NVML).

Memory comes from torch's caching allocator for this process (``torch.cuda.memory_allocated`` /
``memory_reserved``) and the device's total; utilization from NVIDIA's management library through
``pynvml`` (the optional extra ``pip install 'rnnplay[gpu]'``, i.e. ``nvidia-ml-py``). Without it
the line says how to get it. On the CPU (or MPS) there is nothing to show: :func:`gpu_line` is "".

No Textual here: the Train tab calls :func:`gpu_line` at most once a second.
"""

from __future__ import annotations

INSTALL_HINT = "util: pip install nvidia-ml-py"


def format_gpu(allocated: int, reserved: int, total: int | None, util: int | None, hint: str = "") -> str:
    """``mem 1.2 GB (reserved 2.0) of 80.0 GB · util 85%`` from byte counts and a percentage."""
    gb = 1024 ** 3
    text = f"mem {allocated / gb:.1f} GB (reserved {reserved / gb:.1f})"
    if total:
        text += f" of {total / gb:.1f} GB"
    if util is not None:
        text += f" · util {util}%"
    elif hint:
        text += f" · {hint}"
    return text


_NVML: dict = {}


def _nvml_util(index: int) -> int | None | str:
    """The GPU's utilization in percent, None when NVML cannot say, or the install hint."""
    if "mod" not in _NVML:
        try:
            import pynvml  # nvidia-ml-py

            pynvml.nvmlInit()
            _NVML["mod"] = pynvml
        except ImportError:
            _NVML["mod"] = None
        except Exception:  # no driver, no permission: no utilization, memory still shown
            _NVML["mod"] = False
    mod = _NVML["mod"]
    if mod is None:
        return INSTALL_HINT
    if mod is False:
        return None
    try:
        handle = mod.nvmlDeviceGetHandleByIndex(index)
        return int(mod.nvmlDeviceGetUtilizationRates(handle).gpu)
    except Exception:
        return None


def gpu_line(device: str) -> str:
    """One line about the CUDA device a run uses ("cuda", "cuda:1"), or "" for any other device."""
    if not str(device).startswith("cuda"):
        return ""
    import torch

    if not torch.cuda.is_available():
        return ""
    dev = torch.device(device)
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    allocated = torch.cuda.memory_allocated(index)
    reserved = torch.cuda.memory_reserved(index)
    total = torch.cuda.get_device_properties(index).total_memory
    util = _nvml_util(index)  # NVML's index is the physical one; with CUDA_VISIBLE_DEVICES it may differ
    hint = util if isinstance(util, str) else ""
    return format_gpu(allocated, reserved, total, None if isinstance(util, str) else util, hint)
