"""Checkpoint files: one ``.pt`` file, written atomically, loaded without running code.

Layout (format ``rnnplay-checkpoint``, version :data:`FORMAT_VERSION`), plain types only
(tensors, dicts, lists, tuples, str, int, float, bool, None), so it loads with
``torch.load(..., weights_only=True)``::

    format, version, rnnplay_version, kind="charrnn", reason, saved_at
    config      the TrainConfig as a dict            model   CharRNN constructor arguments (CharRNN.describe();
                                                             "cell" absent in older files: tanh)
    vocab       the characters as one str            corpus  name, kind, location, fingerprint, chars
    weights     model state_dict                     optimizer  Adam state_dict
    scheduler   the LR schedule's state              step    optimizer steps done
    rng         {"torch": CPU RNG state, "cuda": [per-device states]}
    data        {"batches": the batch stream's position and generator state, "hidden": carried state,
                 (L, B, H) or for the LSTM a tuple (h, c) of them}
    history     {"train_loss": (step,) float32, "val_step": long, "val_loss": float32}
    best_val_loss, references

Writing: a temporary file in the same folder, flushed and fsync'ed, then ``os.replace`` (atomic on
POSIX and Windows) and an fsync of the folder: a crash or kill during a save leaves the previous
file intact. Loading maps every tensor to the CPU (``map_location="cpu"``), so a checkpoint saved on
a GPU opens on any machine; the caller moves what it needs to its device. A truncated, foreign,
unsafe or newer-format file is refused with a one-line :class:`~rnnplay.errors.UserError`.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import torch

from rnnplay.errors import UserError
from rnnplay.model.cell import map_state

FORMAT = "rnnplay-checkpoint"
FORMAT_VERSION = 2  # 2: gated cells (model "cell", an LSTM's (h, c) carried state); 1: the tanh cell only


def best_path(out: str | os.PathLike) -> str:
    """Where the best-so-far checkpoint of ``out`` lives: ``run.pt`` -> ``run.best.pt``.

    A best file is its own best file (``run.best.pt`` -> ``run.best.pt``, never ``run.best.best.pt``).
    """
    if is_best_path(out):
        return str(out)
    p = Path(out)
    return str(p.with_suffix(".best.pt") if p.suffix == ".pt" else p.with_name(p.name + ".best.pt"))


def is_best_path(path: str | os.PathLike) -> bool:
    return str(path).endswith(".best.pt")


def resume_out(resume: str) -> str:
    """Where a resumed run writes: the resumed file, or ``NAME.pt`` when resuming ``NAME.best.pt``.

    (Writing back into the best file would let periodic saves replace the best model with a worse one.)
    """
    return resume[: -len(".best.pt")] + ".pt" if is_best_path(resume) else resume


def _read_umask() -> int:
    mask = os.umask(0o022)  # the only way to read it; done once, at import
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def save_checkpoint(payload: dict, path: str | os.PathLike) -> str:
    """Write ``payload`` to ``path`` atomically; returns the path. Folders are created as needed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create checkpoint folder {str(path.parent)!r}: {exc.strerror}") from None
    # a tanh-cell file is still version 1, so an rnnplay from before the gated cells reads it; one of a
    # gated cell is 2, so that rnnplay says to upgrade instead of failing on the gate-sized weights
    gated = isinstance(payload.get("model"), dict) and model_cell(payload["model"]) != "tanh"
    payload = {"format": FORMAT, "version": FORMAT_VERSION if gated else 1, **payload}
    remove_stale_temporaries(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{_tmp_prefix(path)}{os.getpid()}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UserError(f"cannot write checkpoint {str(path)!r}: {_why(exc)}; "
                        "check the disk space and the folder's permissions") from None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual rw-r--r--
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise UserError(f"cannot write checkpoint {str(path)!r}: {_why(exc)}; "
                            "check the disk space and the folder's permissions") from None
        raise
    _fsync_dir(path.parent)
    return str(path)


def _why(exc: OSError) -> str:
    """``No space left on device`` -> ``no space left on device``."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}."


def remove_stale_temporaries(path: str | os.PathLike) -> list[str]:
    """Remove temporary files an interrupted save to ``path`` left behind; the names removed.

    A temporary is ``.NAME.<pid>.<random>.tmp``: it is stale when that process is gone (or is this
    one: its own saves clean up after themselves). Older names without a pid go after an hour.
    """
    path = Path(path)
    prefix = _tmp_prefix(path)
    try:
        names = [n for n in os.listdir(path.parent) if n.startswith(prefix) and n.endswith(".tmp")]
    except OSError:
        return []
    removed = []
    for name in names:
        full = path.parent / name
        pid_text = name[len(prefix):].split(".", 1)[0]
        if pid_text.isdigit():
            stale = int(pid_text) == os.getpid() or not _alive(int(pid_text))
        else:
            try:
                stale = time.time() - full.stat().st_mtime > 3600
            except OSError:
                continue
        if stale:
            try:
                full.unlink()
                removed.append(str(full))
            except OSError:
                pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or we cannot tell: leave its file alone
    return True


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows: folders cannot be opened; os.replace is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read and validate a checkpoint; every tensor lands on the CPU. One-line UserError if unusable."""
    name = str(path)
    p = Path(path)
    if not p.exists():
        raise UserError(f"checkpoint {name!r} does not exist; give the path of a .pt file written by rnnplay train")
    if p.is_dir():
        raise UserError(f"checkpoint {name!r} is a folder; give the path of a .pt file inside it")
    if p.stat().st_size == 0:
        raise UserError(f"checkpoint {name!r} is empty (an interrupted copy?); use another checkpoint")
    try:
        with warnings.catch_warnings():  # a foreign file's pickle protocol: we refuse it in our own words
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            payload = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc) or "unsupported GLOBAL" in str(exc):  # a class or function
            raise UserError(f"checkpoint {name!r} holds Python objects that could run code, so it was not "
                            "loaded; only rnnplay's own checkpoints can be opened") from None
        raise UserError(f"checkpoint {name!r} is corrupt or not an rnnplay checkpoint; use another one") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, IndexError, KeyError) as exc:
        hint = "truncated" if "central directory" in str(exc) or isinstance(exc, EOFError) else "corrupt or not a checkpoint"
        raise UserError(f"checkpoint {name!r} is unreadable ({hint}); use another checkpoint or train again") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{name!r} is not an rnnplay checkpoint (a foreign .pt file); give one written by rnnplay train")
    version = payload.get("version")
    if not isinstance(version, int):
        raise UserError(f"checkpoint {name!r} has no format version; it is damaged")
    if version > FORMAT_VERSION:
        raise UserError(f"checkpoint {name!r} uses format {version}, newer than this rnnplay reads "
                        f"({FORMAT_VERSION}); upgrade rnnplay (pip install -U rnnplay)")
    missing = [k for k in ("config", "model", "vocab", "weights", "step") if k not in payload]
    if missing:
        raise UserError(f"checkpoint {name!r} lacks {', '.join(missing)}; it is damaged or from another tool")
    from rnnplay.training.validate import check_payload

    check_payload(payload, name)  # shapes, NaN, step, RNG: before anything is built from it
    return payload


def model_cell(m: dict) -> str:
    """The cell kind of a checkpoint's model description; one written before cells were chosen is tanh."""
    return m.get("cell", "tanh")


def model_from_checkpoint(payload: dict):
    """(CharRNN with the checkpoint's weights on the CPU, in eval mode, Vocab)."""
    from rnnplay.data.vocab import Vocab
    from rnnplay.model import CharRNN

    try:
        vocab = Vocab.from_string(payload["vocab"])
        m = payload["model"]
        model = CharRNN(int(m["vocab_size"]), int(m["hidden_size"]), int(m["num_layers"]),
                        embed_size=int(m["embed_size"]), dropout=float(m.get("dropout", 0.0)),
                        cell=model_cell(m))
        model.load_state_dict(payload["weights"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise UserError(f"checkpoint's model does not fit its own description ({type(exc).__name__}); "
                        "it is damaged") from None
    if len(vocab) != model.vocab_size:
        raise UserError("checkpoint's vocabulary and model disagree; it is damaged")
    return model.eval(), vocab


# ---- a run's state <-> a payload (used for files and for the in-memory divergence snapshot) -------


def payload(run, reason: str) -> dict:
    """The checkpoint payload of a :class:`rnnplay.pipeline.Run` (tensors moved to the CPU)."""
    import time

    from rnnplay import __version__

    cpu = _to_cpu
    state, model = run.state, run.model
    return {
        "rnnplay_version": __version__,
        "kind": "charrnn",
        "reason": reason,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "run_uid": getattr(run, "run_uid", None),
        "parent": getattr(run, "parent", None),  # the checkpoint a fine-tuned run started from, or None
        "config": _portable_config(run),
        "model": {**model.describe(), "dropout": float(run.config.dropout)},
        "vocab": run.vocab.to_string(),
        "corpus": {"corpus": run.corpus_info.name, "corpus_kind": run.corpus_info.kind,
                   "corpus_location": run.corpus_info.location, "fingerprint": run.corpus_info.fingerprint,
                   "chars": run.corpus_info.chars},
        "weights": cpu(model.state_dict()),
        "optimizer": cpu(run.optimizer.state_dict()),
        "scheduler": run.schedule.state_dict(),
        "step": int(state.step),
        "rng": {"torch": state.rng_cpu, "cuda": state.rng_cuda},
        "data": {"batches": run.batches.state_dict(),
                 "hidden": map_state(lambda t: t.detach().cpu(), state.hidden)},  # a tensor or (h, c)
        "history": {"train_loss": torch.tensor(state.train_loss, dtype=torch.float32),
                    "val_step": torch.tensor(state.val_step, dtype=torch.long),
                    "val_loss": torch.tensor(state.val_loss, dtype=torch.float32)},
        "best_val_loss": state.best_val_loss,
        "trained_s": float(state.trained_s),
        "references": run.references.to_dict(),
    }


def _portable_config(run) -> dict:
    """The config, with a relative corpus path made absolute: a resume from another folder finds it."""
    config = run.config.to_dict()
    info = run.corpus_info
    if info.kind in ("file", "folder") and info.location:
        if not os.path.isabs(os.path.expanduser(str(config.get("corpus", "")))):
            config["corpus"] = info.location
    return config


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def restore_state(payload: dict, model, optimizer, batches, state, device) -> None:
    """Load weights, optimizer, batch position, carried state, history and RNG into a built run."""
    try:
        model.load_state_dict(payload["weights"])
        optimizer.load_state_dict(payload["optimizer"])
        batches.load_state_dict(payload["data"]["batches"])
        state.hidden = map_state(lambda t: t.to(device), payload["data"].get("hidden"))
        state.step = int(payload["step"])
        state.trained_s = float(payload.get("trained_s") or 0.0)  # absent before --minutes
        hist = payload.get("history", {})
        state.train_loss = [float(x) for x in hist.get("train_loss", torch.empty(0)).tolist()]
        state.val_step = [int(x) for x in hist.get("val_step", torch.empty(0)).tolist()]
        state.val_loss = [float(x) for x in hist.get("val_loss", torch.empty(0)).tolist()]
        best = payload.get("best_val_loss")
        state.best_val_loss = None if best is None else float(best)
        rng = payload.get("rng", {})
        if rng.get("torch") is not None:
            state.rng_cpu = rng["torch"].clone()
        state.rng_cuda = [t.clone() for t in rng["cuda"]] if rng.get("cuda") else None
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise UserError(f"checkpoint does not match the model it describes ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:120] if str(exc) else ''}); it is damaged") from None


def snapshot(run) -> dict:
    """An in-memory copy of the run's state (what divergence falls back to)."""
    capture_rng(run.state)
    return payload(run, "snapshot")


def load_snapshot(run, snap: dict) -> None:
    restore_state(snap, run.model, run.optimizer, run.batches, run.state, run.device)


def capture_rng(state) -> None:
    """Record torch's CPU (and CUDA) RNG state in the run state (dropout draws from them)."""
    state.rng_cpu = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state.rng_cuda = torch.cuda.get_rng_state_all()


def restore_rng(state) -> None:
    if state.rng_cpu is not None:
        torch.set_rng_state(state.rng_cpu)
    if state.rng_cuda and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(state.rng_cuda)
        except (RuntimeError, IndexError):
            pass  # fewer GPUs than when saved: dropout noise differs, nothing else
