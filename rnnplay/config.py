"""Training settings, each declared once: field, default, flag, help, bounds, and its role.

A setting is one :func:`setting` line on :class:`TrainConfig`. Everything else derives from it:

* ``rnnplay train`` flags (:func:`add_setting_arguments`: ``--seq-len``, help with the default,
  a parser that rejects out-of-range values with a one-line message),
* the validation of a config built in code (``TrainConfig.__post_init__``),
* the fields fixed on resume (``fixed_on_resume=True``: they define the model or the data order),
* the app's Train form (``form=True``, in declaration order, with :meth:`Spec.parse`),
* sweeps (``rnnplay sweep --grid lr=1e-3,3e-3`` parses values with :func:`parse_assignment`),
* the run store, which records ``TrainConfig.to_dict()``.

This module imports neither torch nor Textual: ``rnnplay --help`` and the app's first frame read it.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Iterator

from rnnplay.errors import UserError
from rnnplay.model.kinds import ALIASES as CELL_ALIASES
from rnnplay.model.kinds import CELL_NAMES

DEFAULT_CORPUS = "play"
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")  # and cuda:N, one GPU of several (DEVICE_PATTERN)
STEPS_MAX = 10**9  # --steps' bound; a time budget alone (--minutes, no --steps) trains up to it
LR_SCHEDULES = ("constant", "cosine")
DEVICE_PATTERN = r"auto|cpu|mps|cuda(:\d+)?"
DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps"
PRECISIONS = ("fp32", "bf16", "fp16")
SEED_MAX = 2**63 - 1  # torch.manual_seed and NumPy's generators take any seed up to here


@dataclass(frozen=True)
class Spec:
    """How one setting is shown, parsed and checked. ``name``/``kind`` are filled from the field."""

    help: str
    metavar: str = ""
    minimum: float | None = None  # inclusive
    maximum: float | None = None  # inclusive
    above: float | None = None  # exclusive lower bound (lr > 0)
    below: float | None = None  # exclusive upper bound (dropout < 1)
    choices: tuple[str, ...] | list[str] = ()  # a list may grow (the cell kinds: kinds.register)
    aliases: dict[str, str] | None = None  # other names for a choice, e.g. rnn for the tanh cell
    pattern: str = ""  # a str value must match this regular expression (whole), e.g. the device names
    optional: bool = False  # None is allowed (and means "derived", e.g. embed = hidden)
    fixed_on_resume: bool = False
    form: str = ""  # the app's form label; "" keeps the setting out of the form
    flag: bool = True  # False: set in code only (e.g. Adam's betas)
    name: str = ""
    kind: type = str

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, text: str) -> Any:
        """``text`` as this setting's value; ValueError with a short reason when it is not one."""
        text = text.strip()
        if self.optional and self.kind is not str and text.lower() in ("", "none", "auto"):  # --out "" stays "" (refused)
            return None
        if self.kind is int:
            try:
                value: Any = int(text)
            except ValueError:
                raise ValueError(f"{text!r} is not an integer") from None
        elif self.kind is float:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{text!r} is not a number") from None
        else:
            value = self.aliases.get(text, text) if self.aliases else text
        problem = self.problem(value)
        if problem:
            raise ValueError(problem)
        return value

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed, or None."""
        if value is None:
            return None if self.optional else "a value is required"
        if self.choices:
            return None if value in self.choices else f"choose one of {', '.join(self.choices)}, got {value!r}"
        if self.pattern and isinstance(value, str):
            import re

            return None if re.fullmatch(self.pattern, value) else f"choose one of {self.help_choices()}, got {value!r}"
        if self.kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"must be a number, got {value!r}"
            if self.kind is int and int(value) != value:
                return f"must be an integer, got {value}"
            if not math.isfinite(value):
                return f"must be a finite number, got {value}"
            if self.above is not None and not value > self.above:
                return f"must be above {self.above:g}, got {value:g}"
            if self.below is not None and not value < self.below:
                return f"must be below {self.below:g}, got {value:g}"
            if self.minimum is not None and value < self.minimum:
                return f"must be at least {self.minimum:g}, got {value:g}"
            if self.maximum is not None and value > self.maximum:
                return f"must be at most {self.maximum:g}, got {value:g}"
        return None

    def help_choices(self) -> str:
        return DEVICE_HELP if self.pattern == DEVICE_PATTERN else self.pattern

    def show(self, value: Any) -> str:
        if value is None:
            return "auto"
        return f"{value:g}" if isinstance(value, float) else str(value)


def setting(default: Any, help: str, **spec: Any) -> Any:
    """Declare a TrainConfig field and its setting (see :class:`Spec`)."""
    return dataclasses.field(default=default, metadata={"rnnplay": Spec(help, **spec)})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. ``steps`` is the run's total, also when resuming.

    Defaults show a model learning within a minute on two CPU cores: the bundled ``play`` corpus,
    the seed's 3-layer CharRNN with 256 hidden units and 64-wide embeddings, 32 streams of 64
    characters per step, Adam at lr 2e-3, clipping at global norm 5.
    """

    corpus: str = setting(DEFAULT_CORPUS, "a UTF-8 text file, a folder of them, or a bundled corpus name "
                          "(see 'rnnplay corpora'); on --resume, the checkpoint's", metavar="C")
    steps: int = setting(2000, "total optimizer steps of the run, also when resuming", metavar="N",
                         minimum=1, maximum=STEPS_MAX, form="steps")
    minutes: float | None = setting(None, "stop after M minutes of training, wall time (a resumed run counts its "
                                    "earlier time); the cosine schedule then follows the fraction of the time "
                                    "used; without --steps the steps are not capped", metavar="M", above=0.0,
                                    maximum=10**6, optional=True)
    hidden: int = setting(256, "hidden units per layer", metavar="H", minimum=1, maximum=65536,
                          fixed_on_resume=True, form="hidden")
    layers: int = setting(3, "stacked RNN layers", metavar="L", minimum=1, maximum=64,
                          fixed_on_resume=True, form="layers")
    cell: str = setting("tanh", "the recurrent cell: tanh (the seed's vanilla RNN, also called rnn), gru or lstm",
                        choices=CELL_NAMES, aliases=CELL_ALIASES, fixed_on_resume=True, form="cell")
    embed: int | None = setting(64, "character embedding width (auto: as wide as --hidden)", metavar="E",
                                minimum=1, maximum=65536, optional=True, fixed_on_resume=True)
    seq_len: int = setting(64, "characters per stream per step, the BPTT length", metavar="T",
                           minimum=1, maximum=10**6, fixed_on_resume=True, form="seq len")
    batch_size: int = setting(32, "parallel text streams per step", metavar="B", minimum=1, maximum=10**6,
                              fixed_on_resume=True, form="batch")
    lr: float = setting(2e-3, "Adam learning rate", metavar="X", above=0.0, form="lr")
    betas: tuple[float, float] = setting((0.9, 0.99), "Adam's betas", flag=False)
    dropout: float = setting(0.0, "dropout between layers, in [0, 1)", metavar="P", minimum=0.0, below=1.0,
                             form="dropout")
    clip: float = setting(5.0, "clip gradients to this global norm; 0 turns it off", metavar="G", minimum=0.0)
    lr_schedule: str = setting("constant", "constant, or cosine: linear warm-up, then down to 10%% at --steps",
                               choices=LR_SCHEDULES, fixed_on_resume=True)
    eval_every: int = setting(100, "validation loss every K steps", metavar="K", minimum=1, maximum=10**9)
    eval_chars: int = setting(32768, "characters each periodic validation estimate reads, spread evenly over "
                              "the whole validation split (the exact loss over all of it is measured at the end)",
                              metavar="N", minimum=1, maximum=10**10)
    sample_every: int = setting(250, "print a short sample every K steps; 0: never", metavar="K", minimum=0)
    sample_len: int = setting(200, "characters in each periodic sample", metavar="N", minimum=1, maximum=10**6)
    checkpoint_every: int = setting(500, "save the checkpoint every K steps; 0: only the best, on stop and "
                                    "at the end", metavar="K", minimum=0)
    device: str = setting("auto", "auto (cuda, else mps, else cpu), cpu, cuda, cuda:N (the Nth GPU) or mps",
                          metavar="DEVICE", pattern=DEVICE_PATTERN, form="device")
    precision: str = setting("fp32", "fp32, or mixed precision for the forward and the loss: bf16 (CUDA with "
                             "bfloat16 support, or the CPU) or fp16 (CUDA, with a gradient scaler); the weights "
                             "and checkpoints stay float32", choices=PRECISIONS)
    seed: int = setting(0, "seed for the weights and the batch order", metavar="S", minimum=0, maximum=SEED_MAX,
                        fixed_on_resume=True, form="seed")
    out: str | None = setting(None, "checkpoint file to write (default: a new file in ./checkpoints/; on "
                              "--resume, the resumed file); the best so far goes to PATH with .best.pt",
                              metavar="PATH", optional=True)

    def __post_init__(self) -> None:
        for spec in specs():
            if spec.aliases and getattr(self, spec.name) in spec.aliases:  # cell="rnn" is stored as "tanh"
                object.__setattr__(self, spec.name, spec.aliases[getattr(self, spec.name)])
        for spec in specs():
            if spec.flag:
                problem = spec.problem(getattr(self, spec.name))
                if problem:
                    raise UserError(f"{spec.option} {problem}")
        if self.out is not None and not str(self.out).strip():
            raise UserError("--out is empty; give a checkpoint file path such as checkpoints/run.pt")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """A config from ``to_dict()`` output; unknown keys (from newer versions) are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if "betas" in kw:
            kw["betas"] = tuple(kw["betas"])
        return cls(**kw)

    def differs(self, other: TrainConfig) -> dict[str, tuple[Any, Any]]:
        """``{name: (mine, theirs)}`` for the settings whose values differ."""
        return {s.name: (getattr(self, s.name), getattr(other, s.name)) for s in specs()
                if getattr(self, s.name) != getattr(other, s.name)}


def specs() -> Iterator[Spec]:
    """Every declared setting of :class:`TrainConfig`, in declaration order, with name and kind."""
    return iter(_SPECS)


def spec(name: str) -> Spec:
    for s in _SPECS:
        if s.name == name:
            return s
    raise UserError(f"unknown setting {name!r}; known: {', '.join(s.name for s in _SPECS if s.flag)}")


def _collect() -> tuple[Spec, ...]:
    hints = {"int": int, "float": float, "str": str, "int | None": int, "str | None": str,
             "float | None": float, "tuple[float, float]": tuple}
    out = []
    for f in dataclasses.fields(TrainConfig):
        s = f.metadata.get("rnnplay")
        if s is not None:
            out.append(dataclasses.replace(s, name=f.name, kind=hints.get(str(f.type), str)))
    return tuple(out)


_SPECS = _collect()
FIXED_ON_RESUME = tuple(s.name for s in _SPECS if s.fixed_on_resume)
FORM_SETTINGS = tuple(s for s in _SPECS if s.form)


# ---- derived interfaces ---------------------------------------------------------------------------

def _argparse_type(s: Spec):
    def parse(text: str) -> Any:
        try:
            return s.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = s.name  # argparse names it in "invalid <name> value"
    return parse


def add_setting_arguments(parser: argparse.ArgumentParser | Any, names: tuple[str, ...] | None = None,
                          help_suffix: str = "") -> None:
    """Add ``--flag`` for each declared setting (or those in ``names``); every default is None
    (the value was not given), and the help shows the declared default."""
    defaults = TrainConfig()
    for s in _SPECS:
        if not s.flag or (names is not None and s.name not in names):
            continue
        default = getattr(defaults, s.name)
        shown = "" if default is None else f" (default {s.show(default)})"
        kwargs: dict[str, Any] = {"default": None, "dest": s.name, "help": s.help + shown + help_suffix}
        if s.choices:
            kwargs["choices"] = s.choices
            if s.aliases:  # the alias is mapped before argparse checks the choice
                kwargs["type"] = lambda text, s=s: s.aliases.get(text, text)
                kwargs["metavar"] = "{" + ",".join(list(s.choices) + list(s.aliases)) + "}"
        else:
            kwargs["type"] = _argparse_type(s)
            kwargs["metavar"] = s.metavar or s.name.upper()
        parser.add_argument(s.option, **kwargs)


def given_settings(args: argparse.Namespace, names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The declared settings present on ``args`` with a value (the flags the user gave)."""
    return {s.name: getattr(args, s.name) for s in _SPECS
            if s.flag and (names is None or s.name in names) and getattr(args, s.name, None) is not None}


def parse_assignment(text: str) -> tuple[str, list[Any]]:
    """``"lr=1e-3,3e-3"`` -> ``("lr", [0.001, 0.003])``, parsed and checked by the setting's spec."""
    name, sep, values = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not values.strip():
        raise UserError(f"--grid {text!r}: write NAME=V1,V2,... (for example lr=1e-3,3e-3)")
    s = spec(name)
    if not s.flag or name == "out":
        raise UserError(f"--grid {text!r}: {name} cannot be swept")
    parsed = []
    for v in values.split(","):
        try:
            parsed.append(s.parse(v))
        except ValueError as exc:
            raise UserError(f"--grid {name}: {exc}") from None
    return name, parsed


def check_resume_overrides(saved: TrainConfig, overrides: dict[str, Any]) -> None:
    """A fixed-on-resume setting that differs from the checkpoint's is a UserError."""
    for name in FIXED_ON_RESUME:
        if name in overrides and overrides[name] is not None and overrides[name] != getattr(saved, name):
            s = spec(name)
            raise UserError(f"{s.option} {s.show(overrides[name])} differs from the checkpoint's "
                            f"{s.show(getattr(saved, name))}; leave it out when resuming "
                            "(it defines the model or the data order)")


def parse_device(text: str) -> str:
    """An argparse ``type=`` for the --device of the other commands: the same names as the setting."""
    problem = spec("device").problem(text.strip())
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text.strip()
