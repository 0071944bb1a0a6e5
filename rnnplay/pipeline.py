"""The one wiring point for a char-RNN run: the CLI, the TUI, the benchmarks and the tests use it.

    config = TrainConfig(corpus="play", steps=2000)        # settings: rnnplay.config
    run = build_run(config)
    resume = Resume.open(path)                               # a checkpoint, read once
    run = build_run(resume.config_with(steps=4000), resume=resume)
    trainer = Trainer(run)                                   # rnnplay.training.trainer
    trainer.fit(emit=print, stop=threading.Event())

``build_run`` goes corpus -> vocabulary -> encoded data -> train/validation split -> batch stream
-> model -> optimizer -> LR schedule, or restores all of them from a checkpoint (weights,
optimizer, schedule, step, RNG states, batch position, carried hidden state, metric history).

Settings and their defaults are declared once in :mod:`rnnplay.config` (re-exported here). On
resume, the settings declared ``fixed_on_resume`` must match the checkpoint (they define the model
and the data order); the others (steps, lr, clip, device, ...) may change.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rnnplay.config import DEFAULT_CORPUS, FIXED_ON_RESUME, LR_SCHEDULES, TrainConfig, check_resume_overrides
from rnnplay.data.facts import CorpusInfo, References
from rnnplay.errors import UserError

__all__ = ["DEFAULT_CORPUS", "FIXED_ON_RESUME", "LR_SCHEDULES", "LRSchedule", "Resume", "Run", "RunState",
           "TrainConfig", "build_run", "make_optimizer", "resume_config"]

if TYPE_CHECKING:  # torch is imported inside the functions: `rnnplay --help` reads TrainConfig
    import torch



class LRSchedule:
    """lr(step): constant, or cosine with a linear warm-up (min(100, steps/20) steps) to 10% at ``steps``.

    With a time budget (``config.minutes``) the cosine follows the fraction of the budget used
    instead of the steps: ``lr(step, trained_s)``; the warm-up then lasts the first 5% of the time,
    at most 100 steps.
    """

    TIME_WARMUP = 0.05

    def __init__(self, config: TrainConfig) -> None:
        self.kind = config.lr_schedule
        self.base = config.lr
        self.total = config.steps
        self.budget_s = config.minutes * 60.0 if config.minutes else None
        self.warmup = min(100, config.steps // 20) if self.kind == "cosine" else 0

    def __call__(self, step: int, trained_s: float = 0.0) -> float:
        """The learning rate for the update that takes ``step`` steps to ``step + 1``, after
        ``trained_s`` seconds of training (used with a time budget only)."""
        if self.kind == "constant":
            return self.base
        if self.budget_s is not None:
            used = min(1.0, trained_s / self.budget_s)
            ramp = max((step + 1) / 100, used / self.TIME_WARMUP)
            if ramp < 1.0:
                return self.base * ramp
            progress = max(0.0, (used - self.TIME_WARMUP) / (1.0 - self.TIME_WARMUP))
        else:
            if step < self.warmup:
                return self.base * (step + 1) / self.warmup
            span = max(1, self.total - self.warmup)
            progress = min(1.0, (step - self.warmup) / span)
        return self.base * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))

    def state_dict(self) -> dict:
        return {"kind": self.kind, "base_lr": self.base, "total": self.total, "warmup": self.warmup,
                "budget_s": self.budget_s}


@dataclass(frozen=True)
class Resume:
    """A checkpoint opened once for resuming: its path, its payload and its saved config."""

    path: str
    payload: dict
    config: TrainConfig

    @classmethod
    def open(cls, path: str) -> Resume:
        from rnnplay.training.checkpoint import load_checkpoint

        payload = load_checkpoint(path)
        return cls(str(path), payload, TrainConfig.from_dict(payload["config"]))

    @property
    def step(self) -> int:
        return int(self.payload.get("step", 0))

    def config_with(self, **overrides) -> TrainConfig:
        """The saved config with ``overrides`` applied (None values ignored); fixed settings checked."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        check_resume_overrides(self.config, overrides)
        return dataclasses.replace(self.config, **overrides)


@dataclass
class RunState:
    """What changes as a run trains (and what a checkpoint restores)."""

    step: int = 0
    hidden: torch.Tensor | None = None  # (L, B, H) carried between batches, on the run's device
    train_loss: list[float] = field(default_factory=list)  # one per step
    val_step: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_val_loss: float | None = None
    trained_s: float = 0.0  # wall time spent training this run, over all its sessions (--minutes)
    rng_cpu: torch.Tensor | None = None  # torch's CPU RNG (dropout) to restore when fit() starts
    rng_cuda: list[torch.Tensor] | None = None


@dataclass
class Run:
    """A built run: everything the trainer needs."""

    config: TrainConfig
    corpus_info: CorpusInfo
    vocab: object  # rnnplay.data.vocab.Vocab
    train_data: torch.Tensor  # (N_train,) compact dtype, CPU
    val_data: torch.Tensor  # (N_val,)
    batches: object  # rnnplay.data.batches.StreamBatches
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    device: torch.device
    references: References
    state: RunState
    resumed_from: str | None = None
    parent: str | None = None  # the checkpoint a fine-tuned run's weights started from (--init-from)
    run_uid: str = ""  # kept in its checkpoints: tells this run's files from another run's (training/outpath.py)


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam(lr, betas) over the trainable parameters (rnnplay.training.optim picks the fused kernel)."""
    from rnnplay.training.optim import make_adam

    return make_adam([p for p in model.parameters() if p.requires_grad], lr=config.lr, betas=config.betas)


def resume_config(path: str | Resume, **overrides) -> TrainConfig:
    """The checkpoint's config with ``overrides`` applied (None values ignored); fixed fields checked."""
    resume = path if isinstance(path, Resume) else Resume.open(path)
    return resume.config_with(**overrides)


def build_run(config: TrainConfig, resume: str | Resume | None = None,
              device: torch.device | None = None, init_from: Resume | None = None) -> Run:
    """Build a fresh run from ``config``, or restore one from the checkpoint ``resume``.

    Pass a :class:`Resume` (``Resume.open(path)``) to read the checkpoint once for both the
    config and the restore; a path is opened here. ``device`` overrides ``config.device``
    (a distributed rank trains on ``cuda:LOCAL_RANK`` while the config keeps ``auto``).
    ``init_from`` (a checkpoint opened with ``Resume.open``) starts a new run from its weights on
    ``config.corpus``, the vocabulary extended by the corpus' new characters
    (rnnplay.training.finetune).
    """
    from rnnplay.data.batches import StreamBatches
    from rnnplay.data.corpus import corpus_summary, load_corpus
    from rnnplay.data.reference import reference_losses
    from rnnplay.device import resolve_device
    from rnnplay.model import CharRNN

    import torch

    if isinstance(resume, str):
        resume = Resume.open(resume)
    if resume is not None and init_from is not None:
        raise UserError("resume a run or start one from another's weights, not both (--resume or --init-from)")
    payload = None
    if resume is not None:
        payload = resume.payload
        for name in FIXED_ON_RESUME:
            if getattr(resume.config, name) != getattr(config, name):
                raise UserError(f"{name}={getattr(config, name)} differs from the checkpoint's "
                                f"{getattr(resume.config, name)}; use resume_config() / leave it out when resuming")
    device = resolve_device(config.device) if device is None else torch.device(device)
    from rnnplay.training.precision import check_precision

    check_precision(config.precision, device)  # one line before anything is built
    corpus = load_corpus(config.corpus)
    if payload is not None:
        want = payload.get("corpus", {}).get("fingerprint")
        if want is not None and want != corpus.fingerprint:
            raise UserError(f"corpus {config.corpus!r} is not the text checkpoint {resume.path!r} was trained on "
                            "(its contents differ); resume with the same corpus (--corpus PATH)")
    vocab = corpus.vocab
    if payload is not None and payload["vocab"] != corpus.vocab.to_string():
        from rnnplay.data.vocab import Vocab

        vocab = Vocab.from_string(payload["vocab"])  # a fine-tuned run's: the corpus' and its parent's
        if vocab.unknown(corpus.vocab.to_string()):
            raise UserError(f"corpus {config.corpus!r} has a different vocabulary from checkpoint {resume.path!r}; "
                            "resume with the same corpus")
    if init_from is not None:
        from rnnplay.data.vocab import Vocab
        from rnnplay.training.finetune import merged_vocab

        vocab = merged_vocab(Vocab.from_string(init_from.payload["vocab"]), corpus.vocab)
    train, val = corpus.split()
    if vocab != corpus.vocab:
        from rnnplay.training.finetune import reencode

        train, val = reencode(train, corpus.vocab, vocab), reencode(val, corpus.vocab, vocab)
    info = corpus_summary(corpus)
    batches = StreamBatches(train, config.batch_size, config.seq_len, config.seed)
    from rnnplay.training.memory import check_charrnn_fits

    check_charrnn_fits(config, len(vocab), device)  # before allocating: one line, not an OOM
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = CharRNN(len(vocab), config.hidden, config.layers,
                        embed_size=config.embed if config.embed is not None else config.hidden,
                        dropout=config.dropout, cell=config.cell)
        rng_cpu = torch.get_rng_state()  # dropout's stream continues from here
    if init_from is not None:
        from rnnplay.training.finetune import load_parent_weights

        load_parent_weights(model, init_from.payload, vocab, init_from.path)
    model.to(device)
    optimizer = make_optimizer(model, config)
    state = RunState(rng_cpu=rng_cpu)
    if payload is not None:
        from rnnplay.training.checkpoint import restore_state

        restore_state(payload, model, optimizer, batches, state, device)
    refs = reference_losses(train, val, len(vocab))
    parent = init_from.path if init_from is not None else (payload or {}).get("parent")
    return Run(config, info, vocab, train, val, batches, model, optimizer, LRSchedule(config),
               device, refs, state, resumed_from=None if resume is None else resume.path, parent=parent,
               run_uid=(payload or {}).get("run_uid") or uuid.uuid4().hex)
