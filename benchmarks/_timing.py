"""Timing helpers shared by the benchmarks: warm-up, interleaved round-robin timing, medians,
paired ratios, and a description of the machine and its load.

The machines these run on are shared and noisy. Two rules follow:

* time the candidates *interleaved* (round-robin, the order reversed every other round) so that a
  slow spell hits all of them alike, and
* compare them by *paired* ratios: per round, candidate time / baseline time, then the median of
  those ratios. A drift in machine speed cancels out of each round's ratio.

Usage::

    from _timing import interleave, summarize, paired_ratio, machine_info
    times = interleave({"ours": f, "peer": g}, rounds=30, warmup=3)   # name -> list of seconds
    s = summarize(times["ours"])                                      # median, p25, p75, n
    r = paired_ratio(times["ours"], times["peer"])                    # median of per-round ratios

No torch import at module level, so the helpers also serve benchmarks of non-torch code.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence


def _sync_for(device: str | None) -> Callable[[], None]:
    """A function that waits for queued device work (CUDA), or does nothing (CPU)."""
    if device and str(device).startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return lambda: None


def time_call(fn: Callable[[], object], sync: Callable[[], None] = lambda: None) -> float:
    """Seconds one call of fn takes, device work included."""
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def warmup(fns: dict[str, Callable[[], object]], n: int = 3, sync: Callable[[], None] = lambda: None) -> None:
    """Call every candidate n times, interleaved, to fill caches, allocators and lazy inits."""
    for _ in range(n):
        for fn in fns.values():
            fn()
    sync()


def interleave(
    fns: dict[str, Callable[[], object]],
    rounds: int,
    warmup_calls: int = 3,
    device: str | None = None,
    max_seconds: float | None = None,
    min_rounds: int = 3,
) -> dict[str, list[float]]:
    """Round-robin timing: each round times every candidate once, order reversed on odd rounds.

    Returns name -> per-round seconds (same length for all, so rounds pair up). Stops early
    after ``max_seconds`` of timing, but never before ``min_rounds`` rounds.
    """
    sync = _sync_for(device)
    warmup(fns, warmup_calls, sync)
    names = list(fns)
    times: dict[str, list[float]] = {k: [] for k in names}
    start = time.perf_counter()
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for k in order:
            times[k].append(time_call(fns[k], sync))
        if max_seconds is not None and r + 1 >= min_rounds and time.perf_counter() - start > max_seconds:
            break
    return times


def quantile(xs: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile, q in [0, 1]."""
    s = sorted(xs)
    if not s:
        return float("nan")
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summarize(xs: Sequence[float]) -> dict[str, float]:
    """median, p25, p75, min and n of a list of timings (seconds)."""
    return {
        "median": statistics.median(xs) if xs else float("nan"),
        "p25": quantile(xs, 0.25),
        "p75": quantile(xs, 0.75),
        "min": min(xs) if xs else float("nan"),
        "n": len(xs),
    }


def ratio_of_medians(a: Sequence[float], b: Sequence[float]) -> float:
    """median(a) / median(b): the plain ratio."""
    return statistics.median(a) / statistics.median(b)


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median over rounds of a[i] / b[i]: the paired ratio, robust to the machine's drift."""
    return statistics.median([x / y for x, y in zip(a, b)])


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_info() -> dict[str, object]:
    """Load average and CPU pressure (PSI 'some' avg10/avg60, % of time a task waited for a CPU)."""
    info: dict[str, object] = {}
    try:
        info["loadavg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    try:
        with open("/proc/pressure/cpu") as f:
            for line in f:
                if line.startswith("some"):
                    fields = dict(kv.split("=") for kv in line.split()[1:])
                    info["cpu_pressure_avg10"] = float(fields["avg10"])
                    info["cpu_pressure_avg60"] = float(fields["avg60"])
    except (OSError, ValueError, KeyError):
        pass
    return info


def describe_load(info: dict[str, object]) -> str:
    parts = []
    if "loadavg_1m" in info:
        parts.append(f"loadavg {info['loadavg_1m']}")
    if "cpu_pressure_avg10" in info:
        parts.append(f"CPU pressure {info['cpu_pressure_avg10']}% (avg10)")
    return ", ".join(parts) or "unknown"


def machine_info(device: str | None = None) -> dict[str, object]:
    """CPU model, logical CPUs, torch version and threads, GPU name when on CUDA, load now."""
    import torch

    info: dict[str, object] = {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")(),
        "mkl": torch.backends.mkl.is_available(),
        "platform": platform.platform(),
    }
    if device and str(device).startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
    info["load_at_start"] = load_info()
    return info


def fmt_ms(seconds: float) -> str:
    """Milliseconds with three significant digits: 0.672, 4.49, 220, 1898."""
    ms = seconds * 1e3
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def eprint(*args: object) -> None:
    """Progress to stderr, so --json output on stdout stays one clean object."""
    print(*args, file=sys.stderr, flush=True)
