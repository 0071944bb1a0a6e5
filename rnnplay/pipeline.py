"""The one wiring point for a char-RNN run: the CLI, the TUI, the benchmarks and the tests use it.

    config = TrainConfig(corpus="play", steps=2000)        # or resume_config(path, steps=4000)
    run = build_run(config)                                  # or build_run(config, resume=path)
    trainer = Trainer(run)                                   # rnnplay.training.trainer
    trainer.fit(emit=print, stop=threading.Event())

``build_run`` goes corpus -> vocabulary -> encoded data -> train/validation split -> batch stream
-> model -> optimizer -> LR schedule, or restores all of them from a checkpoint (weights,
optimizer, schedule, step, RNG states, batch position, carried hidden state, metric history).

Defaults (:class:`TrainConfig`) are chosen to show a model learning within a minute on two CPU
cores: the bundled ``play`` corpus (:data:`DEFAULT_CORPUS`), the seed's 3-layer CharRNN with 256 hidden
units and 64-wide embeddings, 32 streams of 64 characters per step, Adam at lr 2e-3, clipping
at global norm 5. On resume, the fields in :data:`FIXED_ON_RESUME` must match the checkpoint
(they define the model and the data order); the others (steps, lr, clip, device, ...) may change.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rnnplay.errors import UserError

if TYPE_CHECKING:  # torch is imported inside the functions: `rnnplay --help` reads TrainConfig
    import torch

DEFAULT_CORPUS = "play"
LR_SCHEDULES = ("constant", "cosine")
FIXED_ON_RESUME = ("hidden", "layers", "embed", "seq_len", "batch_size", "seed", "lr_schedule")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. ``steps`` is the run's total, also when resuming."""

    corpus: str = DEFAULT_CORPUS
    steps: int = 2000
    hidden: int = 256
    layers: int = 3  # the seed's CharRNN
    embed: int | None = 64  # None: as wide as hidden
    seq_len: int = 64
    batch_size: int = 32
    lr: float = 2e-3
    betas: tuple[float, float] = (0.9, 0.99)
    dropout: float = 0.0
    clip: float = 5.0  # gradient clipping by global norm; 0 turns it off
    lr_schedule: str = "constant"  # "constant" or "cosine" (linear warm-up, then down to 10% at `steps`)
    eval_every: int = 100
    eval_batches: int = 16  # validation reads up to eval_batches * batch_size * seq_len characters
    sample_every: int = 250  # 0: never
    sample_len: int = 200
    checkpoint_every: int = 500  # 0: only best, on stop and at the end
    device: str = "auto"
    seed: int = 0
    out: str | None = None  # checkpoint path; None: the trainer writes nothing by itself

    def __post_init__(self) -> None:
        for name in ("steps", "hidden", "layers", "seq_len", "batch_size", "eval_every", "eval_batches", "sample_len"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.embed is not None and self.embed < 1:
            raise UserError(f"embed must be at least 1, got {self.embed}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UserError(f"lr must be a finite number above 0, got {self.lr}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"dropout must be in [0, 1), got {self.dropout}")
        if not (self.clip >= 0 and math.isfinite(self.clip)):
            raise UserError(f"clip must be 0 (off) or a positive number, got {self.clip}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise UserError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if "betas" in kw:
            kw["betas"] = tuple(kw["betas"])
        return cls(**kw)


class LRSchedule:
    """lr(step): constant, or cosine with a linear warm-up (min(100, steps/20) steps) to 10% at ``steps``."""

    def __init__(self, config: TrainConfig) -> None:
        self.kind = config.lr_schedule
        self.base = config.lr
        self.total = config.steps
        self.warmup = min(100, config.steps // 20) if self.kind == "cosine" else 0

    def __call__(self, step: int) -> float:
        """The learning rate for the update that takes ``step`` steps to ``step + 1``."""
        if self.kind == "constant":
            return self.base
        if step < self.warmup:
            return self.base * (step + 1) / self.warmup
        span = max(1, self.total - self.warmup)
        progress = min(1.0, (step - self.warmup) / span)
        return self.base * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))

    def state_dict(self) -> dict:
        return {"kind": self.kind, "base_lr": self.base, "total": self.total, "warmup": self.warmup}


@dataclass
class RunState:
    """What changes as a run trains (and what a checkpoint restores)."""

    step: int = 0
    hidden: torch.Tensor | None = None  # (L, B, H) carried between batches, on the run's device
    train_loss: list[float] = field(default_factory=list)  # one per step
    val_step: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_val_loss: float | None = None
    rng_cpu: torch.Tensor | None = None  # torch's CPU RNG (dropout) to restore when fit() starts
    rng_cuda: list[torch.Tensor] | None = None


@dataclass
class Run:
    """A built run: everything the trainer needs. ``corpus_info`` and ``references`` are plain dicts."""

    config: TrainConfig
    corpus_info: dict
    vocab: object  # rnnplay.data.vocab.Vocab
    train_data: torch.Tensor  # (N_train,) compact dtype, CPU
    val_data: torch.Tensor  # (N_val,)
    batches: object  # rnnplay.data.batches.StreamBatches
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    device: torch.device
    references: dict
    state: RunState
    resumed_from: str | None = None


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam(lr, betas); the fused kernel where this torch has it for the device (same maths)."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    try:
        return torch.optim.Adam(params, lr=config.lr, betas=config.betas, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=config.lr, betas=config.betas)


def resume_config(path: str, **overrides) -> TrainConfig:
    """The checkpoint's config with ``overrides`` applied (None values ignored); fixed fields checked."""
    from rnnplay.training.checkpoint import load_checkpoint

    saved = TrainConfig.from_dict(load_checkpoint(path)["config"])
    overrides = {k: v for k, v in overrides.items() if v is not None}
    for name in FIXED_ON_RESUME:
        if name in overrides and overrides[name] != getattr(saved, name):
            raise UserError(f"--{name.replace('_', '-')} {overrides[name]} differs from the checkpoint's "
                            f"{getattr(saved, name)}; leave it out when resuming (it defines the model or data order)")
    return dataclasses.replace(saved, **overrides)


def build_run(config: TrainConfig, resume: str | None = None) -> Run:
    """Build a fresh run from ``config``, or restore one from the checkpoint ``resume``."""
    from rnnplay.data.batches import StreamBatches
    from rnnplay.data.corpus import corpus_summary, load_corpus
    from rnnplay.data.reference import reference_losses
    from rnnplay.device import resolve_device
    from rnnplay.model import CharRNN

    import torch

    payload = None
    if resume is not None:
        from rnnplay.training.checkpoint import load_checkpoint

        payload = load_checkpoint(resume)
        saved = TrainConfig.from_dict(payload["config"])
        for name in FIXED_ON_RESUME:
            if getattr(saved, name) != getattr(config, name):
                raise UserError(f"{name}={getattr(config, name)} differs from the checkpoint's "
                                f"{getattr(saved, name)}; use resume_config() / leave it out when resuming")
    device = resolve_device(config.device)
    corpus = load_corpus(config.corpus)
    if payload is not None:
        want = payload.get("corpus", {}).get("fingerprint")
        if want is not None and want != corpus.fingerprint:
            raise UserError(f"corpus {config.corpus!r} is not the text checkpoint {resume!r} was trained on "
                            "(its contents differ); resume with the same corpus (--corpus PATH)")
        if payload["vocab"] != corpus.vocab.to_string():
            raise UserError(f"corpus {config.corpus!r} has a different vocabulary from checkpoint {resume!r}; "
                            "resume with the same corpus")
    train, val = corpus.split()
    info = corpus_summary(corpus)
    batches = StreamBatches(train, config.batch_size, config.seq_len, config.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = CharRNN(len(corpus.vocab), config.hidden, config.layers,
                        embed_size=config.embed if config.embed is not None else config.hidden,
                        dropout=config.dropout)
        rng_cpu = torch.get_rng_state()  # dropout's stream continues from here
    model.to(device)
    optimizer = make_optimizer(model, config)
    state = RunState(rng_cpu=rng_cpu)
    if payload is not None:
        from rnnplay.training.checkpoint import restore_state

        restore_state(payload, model, optimizer, batches, state, device)
    refs = reference_losses(train, val, len(corpus.vocab))
    return Run(config, info, corpus.vocab, train, val, batches, model, optimizer, LRSchedule(config),
               device, refs, state, resumed_from=resume)
