"""The app's only doorway into the training stack (thin adapters; torch is imported lazily here).

Everything that imports torch, the pipeline, checkpoints or the classifier is called from a
worker thread, never while the first frame is drawn. Tests replace the two factories
(``trainer_factory`` and ``classifier_runner``) with fast fakes through :func:`make_app`.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from rnnplay.config import DEFAULT_CORPUS, FIXED_ON_RESUME, TrainConfig
from rnnplay.errors import UserError

# The hidden-state strips are copied from a training step's forward: ~0.7 ms per event on the
# default model on 2 CPU cores (~0.15% of training time at 2 Hz), which still looks live.
HIDDEN_STATS_HZ = 2.0
LIVE_SAMPLE_EVERY_S = 5.0  # the Train tab's sample from the live weights (also every sample_every steps)


@dataclass(frozen=True)
class TrainSettings:
    """What the Train tab's form asked for.

    ``values`` holds the declared settings (rnnplay.config) the form set, by setting name; a
    setting left out takes its declared default (or, on resume, the checkpoint's).
    """

    corpus: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    resume: str | None = None
    checkpoint_dir: str = "checkpoints"


class TrainerLike(Protocol):
    """What the app needs from a trainer (rnnplay.training.trainer.Trainer satisfies it)."""

    step: int
    lock: Any

    def fit(self, emit: Callable[[Any], None], stop: threading.Event) -> Any: ...
    def save(self, path: str | None = None, reason: str = "manual") -> str: ...
    def sampler(self) -> Any: ...


TrainerFactory = Callable[[TrainSettings], "tuple[TrainerLike, str, str]"]
"""settings -> (trainer, a one-line description of the run, the checkpoint path it saves to)."""

ClassifierRunner = Callable[[dict, Callable[[Any], None], threading.Event], "tuple[Any, Any]"]
"""(options, emit, stop) -> (result, inspection or None)."""


# ---- corpora and checkpoints (cheap; no torch) ----------------------------------------------

def check_corpus_path(text: str) -> str | None:
    """An inline error for a typed corpus path, or None when it looks usable (cheap checks only)."""
    text = text.strip()
    if not text:
        return None
    p = Path(text).expanduser()
    if not p.exists():
        return f"no such file or folder: {text}"
    if p.is_file():
        if p.stat().st_size == 0:
            return "the file is empty"
        with open(p, "rb") as fh:
            head = fh.read(4096)
        if b"\x00" in head:
            return "this looks like a binary file, not text"
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # a character cut at the 4 KB boundary is fine
                return f"not UTF-8 text (bad byte at offset {exc.start})"
    elif p.is_dir() and not any(p.iterdir()):
        return "the folder is empty"
    return None


def list_checkpoints(folder: str | os.PathLike) -> list[tuple[str, str]]:
    """(path, label) of the ``.pt`` files in ``folder``, newest first."""
    root = Path(folder)
    if not root.is_dir():
        return []
    rows = []
    for p in root.glob("*.pt"):
        try:
            st = p.stat()
        except OSError:
            continue
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(st.st_mtime))
        rows.append((st.st_mtime, str(p), f"{p.name}  ·  {st.st_size / 1e6:.1f} MB  ·  {when}"))
    return [(path, label) for _, path, label in sorted(rows, reverse=True)]


def checkpoint_path(folder: str, corpus: str) -> str:
    """A new file name for a run: ``<folder>/<corpus>-<date>-<time>.pt``."""
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(corpus).stem or "run")[:40]
    base = Path(folder) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.pt"
    n, path = 1, base
    while path.exists():
        n += 1
        path = base.with_name(f"{base.stem}-{n}.pt")
    return str(path)


# ---- the real stack (imports torch; call from a worker thread) -----------------------------

def corpus_choices() -> tuple[list[tuple[str, str]], str]:
    """(label, name) options for the corpus picker and the default name (no torch import)."""
    try:
        from rnnplay import corpora

        names = corpora.names()
    except (ImportError, AttributeError):
        names = []
    default = DEFAULT_CORPUS if DEFAULT_CORPUS in names or not names else names[0]
    return [(name, name) for name in names] or [(default, default)], default


def corpus_description(name: str) -> str:
    try:
        from rnnplay import corpora

        return corpora.description(name)
    except Exception:  # an unknown name or a missing module: no description
        return ""


def load_backend() -> dict:
    """Import the training stack in the background; return the form's defaults (TrainConfig)."""
    from rnnplay import pipeline  # noqa: F401  (the import is the point: torch loads here)

    cfg = TrainConfig()
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def make_train_config(settings: TrainSettings, out: str) -> TrainConfig:
    """The TrainConfig from the form: the declared defaults, the form's values, ``out``."""
    return TrainConfig(**{**settings.values, "corpus": settings.corpus or DEFAULT_CORPUS,
                          "device": settings.device, "out": out})


def default_trainer_factory(settings: TrainSettings) -> tuple[TrainerLike, str, str]:
    """Build the run the way ``rnnplay train`` does (rnnplay.pipeline.build_run) and wrap it.

    With ``settings.resume`` the checkpoint (read once) gives the config; the form's settings
    that define the model or the data order are ignored, as ``rnnplay train --resume`` would
    refuse them; a finished run continues for as many steps again unless the form sets ``steps``.
    """
    from rnnplay import pipeline
    from rnnplay.training.checkpoint import resume_out
    from rnnplay.training.trainer import Trainer

    resume = None
    if settings.resume:
        resume = pipeline.Resume.open(settings.resume)
        changes = {k: v for k, v in settings.values.items() if k not in FIXED_ON_RESUME and k != "steps"}
        config = resume.config_with(**changes, device=settings.device, out=resume_out(settings.resume))
        step = resume.step
        steps = settings.values.get("steps") or (config.steps if config.steps > step else step + config.steps)
        config = dataclasses.replace(config, steps=steps)
        out, corpus = config.out, config.corpus
    else:
        corpus = settings.corpus or DEFAULT_CORPUS
        out = checkpoint_path(settings.checkpoint_dir, corpus)
        config = make_train_config(dataclasses.replace(settings, corpus=corpus), out)
    run = pipeline.build_run(config, resume=resume)
    trainer = Trainer(run, hidden_stats_hz=HIDDEN_STATS_HZ, sample_every_s=LIVE_SAMPLE_EVERY_S)
    return trainer, describe_run(run, Path(corpus).name or corpus), out


def describe_run(run: Any, corpus: str) -> str:
    model = getattr(run, "model", None)
    parts = [corpus]
    if model is not None:
        parts.append(f"{getattr(model, 'num_layers', '?')}×{getattr(model, 'hidden_size', '?')}")
        try:
            parts.append(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params")
        except Exception:  # a fake or foreign model
            pass
    return " · ".join(parts)


def model_snapshot(source: Any) -> Any:
    """A model whose weights stay put, from what Generate and Write sample from: an opened
    checkpoint's own model, or a copy of the live run's taken between two training steps (under the
    trainer's lock); None when the source offers neither (only a Sampler)."""
    import copy

    snapshot = getattr(source, "model_snapshot", None)
    if snapshot is not None:
        return snapshot()
    if isinstance(source, CheckpointSource):
        return source.model
    run = getattr(source, "run", None)
    if run is None or getattr(run, "model", None) is None:
        return None
    with source.lock:
        model = copy.deepcopy(run.model)
    model.eval().requires_grad_(False)
    return model


class CheckpointSource:
    """A checkpoint opened for generation: the same ``sampler()`` / ``vocab`` face as a trainer."""

    def __init__(self, path: str) -> None:
        from rnnplay.training.checkpoint import load_checkpoint, model_from_checkpoint

        payload = load_checkpoint(path)
        self.model, self.vocab = model_from_checkpoint(payload)
        self.step = int(payload.get("step", 0))
        self.path = path
        self.lock = threading.Lock()
        self._sampler = None

    def sampler(self) -> Any:
        if self._sampler is None:
            from rnnplay.model import Sampler

            self._sampler = Sampler(self.model)
        return self._sampler


def default_classifier_runner(options: dict, emit: Callable[[Any], None],
                              stop: threading.Event) -> tuple[Any, Any]:
    """Run the seed's experiment (rnnplay.classify) and inspect its hidden states."""
    from rnnplay.classify.experiment import ClassifyConfig, run_experiment
    from rnnplay.classify.inspect import inspect_hidden

    from rnnplay.device import resolve_device

    options = {**options, "device": str(resolve_device(options.get("device") or "auto"))}
    names = {f.name for f in dataclasses.fields(ClassifyConfig)}
    config = ClassifyConfig(**{k: v for k, v in options.items() if k in names and v is not None})
    try:
        config.validate()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    result = run_experiment(config, emit, stop)
    if not result.variants or result.reason == "failed":
        return result, None
    test = result.data.test
    n = int(options.get("n_sequences", 8))
    return result, inspect_hidden(result.model, test.x, test.y, n_sequences=n)
