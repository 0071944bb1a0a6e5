"""A checkpoint checked against itself before anything is built from it.

:func:`check_payload` is called by :func:`rnnplay.training.checkpoint.load_checkpoint`. Every
check is cheap next to reading the file and allocates nothing the file does not already hold: the
model's expected shapes come from a CharRNN built on the ``meta`` device (no memory), so a 350 KB
file describing a 3x100000 model is refused at once instead of allocating gigabytes first.

Refused, each with one line: a step that is not a whole number >= 0; a config the settings refuse;
a model description that disagrees with the config, the vocabulary or the weights' names and
shapes; weights or optimizer moments that hold NaN or infinity (a diverged run's, which would sample
garbage or be "kept" as last good weights); optimizer moments shaped unlike their weights; a carried
hidden state not shaped (layers, batch, hidden) (for a cell with a state of several parts, such as
the LSTM's (h, c), a tuple of them); an unknown cell kind; RNG states that are not torch's byte states.
"""

from __future__ import annotations

import math

import torch

from rnnplay.errors import UserError


def _damaged(name: str, what: str) -> UserError:
    return UserError(f"checkpoint {name!r} {what}; it is damaged, use another checkpoint")


def _int(value, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def check_payload(payload: dict, name: str) -> None:
    """UserError (one line) if the payload is inconsistent; see the module docstring."""
    from rnnplay.config import TrainConfig

    step = payload.get("step")
    if not _int(step, 0):
        raise _damaged(name, f"has step {step!r} (a step count is a whole number, 0 or more)")
    m = payload.get("model")
    keys = ("vocab_size", "hidden_size", "num_layers", "embed_size")
    if not isinstance(m, dict) or not all(_int(m.get(k), 1) for k in keys):
        raise _damaged(name, "has no usable model description")
    vocab = payload.get("vocab")
    if not isinstance(vocab, str) or len(vocab) != m["vocab_size"]:
        raise _damaged(name, "has a vocabulary that disagrees with its model")
    try:
        config = TrainConfig.from_dict(payload["config"])
    except (UserError, TypeError, ValueError, KeyError, AttributeError) as exc:
        raise _damaged(name, f"has an invalid config ({str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__})") from None
    embed = config.embed if config.embed is not None else config.hidden
    if (config.hidden, config.layers, embed) != (m["hidden_size"], m["num_layers"], m["embed_size"]):
        raise _damaged(name, "has a config that disagrees with its model description")
    kind = _cell_kind(m, name)
    if kind.name != config.cell:
        raise _damaged(name, f"has a config with cell {config.cell!r} but a {kind.name} model")
    expected = _expected_shapes(m, kind.name)
    _check_weights(payload.get("weights"), expected, name)
    _check_optimizer(payload.get("optimizer"), list(expected.values()), name)
    _check_hidden(payload.get("data"), (m["num_layers"], config.batch_size, m["hidden_size"]), kind, name)
    _check_rng(payload.get("rng"), name)
    best = payload.get("best_val_loss")
    if best is not None and not (isinstance(best, (int, float)) and math.isfinite(best)):
        raise _damaged(name, f"has a best validation loss of {best!r}")


def _cell_kind(m: dict, name: str):
    """The described model's cell kind (absent: tanh, as checkpoints before cells were chosen)."""
    from rnnplay.model.kinds import CELL_NAMES, cell_kind
    from rnnplay.training.checkpoint import model_cell

    cell = model_cell(m)
    try:
        return cell_kind(cell)
    except ValueError:
        raise UserError(f"checkpoint {name!r} describes a model with cell {cell!r}, which this rnnplay does not "
                        f"know ({', '.join(CELL_NAMES)}); upgrade rnnplay (pip install -U rnnplay) or use another "
                        "checkpoint") from None


def _expected_shapes(m: dict, cell: str) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape of the described CharRNN, in parameter order (no memory: meta device)."""
    from rnnplay.model import CharRNN

    with torch.device("meta"):
        model = CharRNN(m["vocab_size"], m["hidden_size"], m["num_layers"], embed_size=m["embed_size"], cell=cell)
    return {k: tuple(p.shape) for k, p in model.named_parameters()}


def _check_weights(weights, expected: dict[str, tuple[int, ...]], name: str) -> None:
    if not isinstance(weights, dict) or not all(isinstance(t, torch.Tensor) for t in weights.values()):
        raise _damaged(name, "has no weights")
    missing = [k for k in expected if k not in weights]
    extra = [k for k in weights if k not in expected]
    if missing or extra:
        which = f"lacks {missing[0]}" if missing else f"has an unknown weight {extra[0]}"
        raise _damaged(name, f"does not match its model description ({which})")
    for key, shape in expected.items():
        t = weights[key]
        if tuple(t.shape) != shape:
            raise _damaged(name, f"has {key} of shape {tuple(t.shape)} where its model description says {shape}")
        if not t.is_floating_point():
            raise _damaged(name, f"has {key} of type {t.dtype}")
        if not bool(torch.isfinite(t).all()):
            raise UserError(f"checkpoint {name!r} has NaN or infinite weights ({key}), as a diverged run leaves "
                            "them; use an earlier checkpoint (or the run's NAME.best.pt)")


def _check_optimizer(opt, shapes: list[tuple[int, ...]], name: str) -> None:
    if opt is None:
        return
    state = opt.get("state") if isinstance(opt, dict) else None
    if not isinstance(state, dict):
        raise _damaged(name, "has an unreadable optimizer state")
    for index, st in state.items():
        if not (_int(index, 0) and index < len(shapes) and isinstance(st, dict)):
            raise _damaged(name, f"has optimizer state for a parameter {index!r} its model lacks")
        for key in ("exp_avg", "exp_avg_sq"):
            t = st.get(key)
            if t is None:
                continue
            if not isinstance(t, torch.Tensor) or tuple(t.shape) != shapes[index]:
                raise _damaged(name, f"has an optimizer {key} shaped unlike its weight ({index})")
            if not bool(torch.isfinite(t).all()):
                raise _damaged(name, f"has NaN or infinite optimizer state ({key} of parameter {index})")


def _check_hidden(data, shape: tuple[int, int, int], kind, name: str) -> None:
    if data is None:
        return
    hidden = data.get("hidden") if isinstance(data, dict) else None
    if hidden is None:
        return
    n = kind.n_state
    parts = (hidden,) if n == 1 else hidden
    if n == 1:
        want = f"(layers, batch, hidden) = {shape}"
    else:
        want = f"a tuple ({', '.join(kind.state_names)}) each (layers, batch, hidden) = {shape}"
    ok = isinstance(parts, (tuple, list)) and len(parts) == n and all(
        isinstance(t, torch.Tensor) and tuple(t.shape) == shape and t.is_floating_point() for t in parts)
    if not ok:
        if isinstance(hidden, torch.Tensor):
            got = f"of shape {tuple(hidden.shape)}"
        elif isinstance(hidden, (tuple, list)):
            got = "(" + ", ".join(str(tuple(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__
                                  for t in hidden) + ")"
        else:
            got = f"of type {type(hidden).__name__}"
        raise _damaged(name, f"carries a {kind.name} hidden state {got}, not {want}")
    if not all(bool(torch.isfinite(t).all()) for t in parts):
        raise _damaged(name, "carries a hidden state with NaN or infinite values")


_CPU_RNG_BYTES = int(torch.get_rng_state().numel())  # torch's Mersenne Twister state (5056 bytes)


def _check_rng(rng, name: str) -> None:
    if rng is None:
        return
    if not isinstance(rng, dict):
        raise _damaged(name, "has an unreadable RNG state")
    cpu = rng.get("torch")
    if cpu is not None and not (isinstance(cpu, torch.Tensor) and cpu.dtype == torch.uint8
                                and tuple(cpu.shape) == (_CPU_RNG_BYTES,)):
        got = tuple(cpu.shape) if isinstance(cpu, torch.Tensor) else type(cpu).__name__
        raise _damaged(name, f"has a CPU RNG state of shape {got}, not ({_CPU_RNG_BYTES},) bytes")
    cuda = rng.get("cuda")
    if cuda is not None and not (isinstance(cuda, (list, tuple)) and all(
            isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and t.dim() == 1 for t in cuda)):
        raise _damaged(name, "has an unreadable CUDA RNG state")
