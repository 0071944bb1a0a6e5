"""Will it fit? Memory a run needs, checked against what the device has *before* anything is allocated.

``--hidden 100000`` used to start allocating 240 GB (the machine swapped or the allocator failed
with a long message); ``classify --train-size 1000000000`` drew 400 GB of inputs. Now both get one
line saying how much memory the request needs and how much there is.

Estimates, on purpose a little generous:

* char-RNN training: 16 bytes per parameter (fp32 weights, gradients and Adam's two moments) plus
  the activations kept for backward, ``4 * B * T * (3 * L * H + E + 3 * V)`` bytes;
* a tensor of N float32 values: ``4 * N`` bytes.

Available memory: on CUDA ``torch.cuda.mem_get_info``; on the CPU ``MemAvailable`` from
``/proc/meminfo`` (or the free physical pages); elsewhere (MPS, unknown) nothing is refused.
"""

from __future__ import annotations

import os

from rnnplay.errors import UserError


def fmt_bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 1e3:.0f} kB"


def available_bytes(device) -> int | None:
    """Bytes that can still be allocated on ``device`` (a torch.device or its name), or None if unknown."""
    kind = getattr(device, "type", str(device)).split(":")[0]
    if kind == "cuda":
        import torch

        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError, ValueError):
            return None
    if kind != "cpu":
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(what: str, need: float, device, advice: str) -> None:
    """UserError if ``need`` bytes exceed what ``device`` has free (``what`` says who needs them)."""
    have = available_bytes(device)
    if have is not None and need > have:
        where = "this machine has" if getattr(device, "type", str(device)) == "cpu" else f"{device} has"
        raise UserError(f"{what} needs about {fmt_bytes(need)} of memory; {where} {fmt_bytes(have)} available; {advice}")


def charrnn_parameters(vocab_size: int, hidden: int, layers: int, embed: int, gates: int = 1) -> int:
    """Parameters of a CharRNN (embedding, the stacked RNN's Wxh/Whh with biases, the output layer);
    ``gates`` blocks of H rows per projection (1 tanh, 3 GRU, 4 LSTM)."""
    rnn = (embed * hidden + hidden) + (hidden * hidden + hidden)  # layer 0
    rnn += (layers - 1) * 2 * (hidden * hidden + hidden)  # layers 1..L-1: Wxh is (H, H)
    return vocab_size * embed + gates * rnn + hidden * vocab_size + vocab_size


def check_charrnn_fits(config, vocab_size: int, device) -> None:
    """Refuse a char-RNN training run whose weights, optimizer and activations cannot fit on ``device``."""
    from rnnplay.model.kinds import cell_kind

    gates = cell_kind(config.cell).gates
    embed = config.embed if config.embed is not None else config.hidden
    params = charrnn_parameters(vocab_size, config.hidden, config.layers, embed, gates)
    per_unit = 3 if gates == 1 else 3 + 2 * gates  # floats kept per step and unit of a layer (gates and their gradients)
    acts = 4 * config.batch_size * config.seq_len * (per_unit * config.layers * config.hidden + embed + 3 * vocab_size)
    cell = "" if config.cell == "tanh" else f" {config.cell}"
    check_fits(f"a {config.layers}x{config.hidden}{cell} CharRNN ({params:,} parameters) with "
               f"{config.batch_size}x{config.seq_len} characters a step", 16 * params + acts, device,
               "lower --hidden or --layers (or --batch-size, --seq-len)")
