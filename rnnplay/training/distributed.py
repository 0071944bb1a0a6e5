"""One model trained on several processes: torchrun + DistributedDataParallel.

    torchrun --nproc-per-node 2 -m rnnplay train --corpus my_texts/ --steps 5000

torchrun (or any launcher that sets torch.distributed's environment: ``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) starts one ``rnnplay train`` per process.
:meth:`Dist.from_env` sees them; with ``WORLD_SIZE`` above 1 the command joins the process group
(NCCL when the run is on CUDA, each rank on ``cuda:LOCAL_RANK``; gloo on the CPU) and trains
through :class:`DistributedTrainer`:

* **Data**: every rank builds the same batch stream (same corpus, same seed) and keeps its own
  rows of every batch, a contiguous, disjoint share of the ``--batch-size`` parallel text streams
  (:class:`ShardedBatches`). A stream stays on one rank, so the hidden state each rank carries
  from step to step is the state of its own streams. ``--batch-size`` is the global batch; it
  must split evenly over the ranks.
* **Gradients**: DistributedDataParallel averages them over the ranks. Each rank's loss is the
  mean over its equal share, so the average is the gradient of the global mean loss: the update is
  the one a single process makes on the whole batch (to float rounding). The loss reported is the
  global mean (one all-reduce per step); clipping sees the averaged gradients, the same on every
  rank, so every rank takes the same decisions (divergence, clipping).
* **Rank 0 alone** evaluates (the validation loss is then broadcast, so every rank keeps the same
  history and the same "best"), samples, prints, records the run and writes checkpoints. For a
  save, the carried states of all streams are gathered to rank 0, so a checkpoint holds the whole
  batch's state, exactly as a single process would have written it: it resumes on one process or
  on any number of ranks that divides the batch.
* **Stopping**: a stop request (Ctrl-C, SIGTERM from torchrun) on any rank, and the time budget as
  counted by rank 0, are agreed on at the top of every step, so all ranks stop after the same step
  and save together.
* **A lost rank**: every collective has the process group's timeout (``RNNPLAY_DIST_TIMEOUT``
  seconds, default 600; gloo also notices a closed connection at once). A rank whose peer died or
  hung raises :class:`PeerLost`, and ``rnnplay train`` prints one line and exits 1. torchrun
  itself also stops the remaining workers when one fails.
"""

from __future__ import annotations

import datetime
import os
import threading
from dataclasses import dataclass

import torch
import torch.distributed as dist

from rnnplay.errors import UserError
from rnnplay.pipeline import Run
from rnnplay.training.trainer import Trainer

ENV_TIMEOUT = "RNNPLAY_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 600.0


class PeerLost(Exception):
    """Another process of the run died, hung past the timeout, or could not be reached."""


@dataclass(frozen=True)
class Dist:
    """This process's place in a distributed run (from torch.distributed's environment variables)."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def main(self) -> bool:
        return self.rank == 0

    def __str__(self) -> str:
        return f"rank {self.rank} of {self.world_size}"

    @classmethod
    def from_env(cls, environ: dict | None = None) -> Dist | None:
        """The run's place from ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``, or None for a single process."""
        env = os.environ if environ is None else environ
        if "WORLD_SIZE" not in env:
            return None
        try:
            world = int(env["WORLD_SIZE"])
            rank = int(env.get("RANK", "0"))
            local = int(env.get("LOCAL_RANK", str(rank)))
        except ValueError:
            raise UserError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (they are set by torchrun); "
                            "start a distributed run with torchrun --nproc-per-node N -m rnnplay train ...") from None
        if world <= 1:
            return None  # torchrun --nproc-per-node 1: an ordinary run
        if not 0 <= rank < world or local < 0:
            raise UserError(f"RANK {rank} / LOCAL_RANK {local} do not fit WORLD_SIZE {world}; start the run "
                            "with torchrun, which sets them")
        return cls(rank, world, local)


def timeout_s() -> float:
    text = os.environ.get(ENV_TIMEOUT)
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UserError(f"{ENV_TIMEOUT}={text!r}: give the seconds a rank waits for the others, e.g. 600")
    return value


def check_config(config, d: Dist) -> None:
    """The settings a distributed run needs: the global batch splits evenly over the ranks."""
    if config.batch_size % d.world_size:
        raise UserError(f"--batch-size {config.batch_size} does not split evenly over {d.world_size} processes "
                        f"(each rank trains its own share of the streams); use a multiple of {d.world_size}")


def start(d: Dist, device_name: str) -> torch.device:
    """Join the process group; returns this rank's device (``cuda:LOCAL_RANK`` on CUDA, else the CPU)."""
    from rnnplay.device import resolve_device

    device = resolve_device(device_name)
    kwargs = {}
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if d.local_rank >= count:
            raise UserError(f"{d}: LOCAL_RANK {d.local_rank} has no GPU (this machine shows {count}); start at "
                            f"most {count} processes per node (torchrun --nproc-per-node {count})")
        device = torch.device("cuda", d.local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
        kwargs["device_id"] = device
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise UserError(f"--device {device_name}: distributed training runs on CUDA (NCCL) or the CPU (gloo), "
                        f"not on {device.type}; pass --device cpu or cuda")
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s()), **kwargs)
    except (RuntimeError, ValueError) as exc:
        raise PeerLost(f"{d}: could not join the other processes ({_first_line(exc)}); start every rank with "
                       "the same torchrun command") from None
    return device


def stop(d: Dist) -> None:
    """Leave the process group (if joined)."""
    if dist.is_available() and dist.is_initialized():
        try:
            dist.destroy_process_group()
        except RuntimeError:
            pass


def _first_line(exc: BaseException) -> str:
    """The gist of a backend error: its first sentence, without the source location."""
    import re

    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    text = re.sub(r"^\[[^\]]*\]\s*", "", lines[0])  # "[.../gloo/transport/tcp/pair.cc:553] "
    text = text.split(". This is typically")[0]
    return text[:160]


def is_peer_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a collective that failed (a dead, hung or unreachable peer)."""
    if isinstance(exc, PeerLost) or isinstance(exc, getattr(dist, "DistError", ())):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        s in text for s in ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "Timed out",
                            "timed out", "NCCL", "Gloo", "gloo", "ProcessGroup", "Socket"))


def lost(d: Dist, exc: BaseException) -> PeerLost:
    if isinstance(exc, PeerLost):
        return exc
    return PeerLost(f"{d}: another process of this distributed run stopped or stopped answering "
                    f"({_first_line(exc)}); this rank stops too")


def _collective(d: Dist, fn):
    try:
        return fn()
    except RuntimeError as exc:
        raise lost(d, exc) from None


def share_path(d: Dist, path: str | None) -> str | None:
    """Rank 0's checkpoint path (or None: it refused the run) on every rank."""
    box = [path if d.main else None]
    _collective(d, lambda: dist.broadcast_object_list(box, src=0))
    return box[0]


def agree(d: Dist, ok: bool) -> bool:
    """Whether every rank is ``ok`` (a rank that failed to set up says why; the others leave quietly)."""
    flag = torch.tensor([0.0 if ok else 1.0])
    if dist.get_backend() == "nccl":
        flag = flag.cuda()
    _collective(d, lambda: dist.all_reduce(flag, op=dist.ReduceOp.MAX))
    return float(flag) == 0.0


class ShardedBatches:
    """This rank's rows of the full batch stream: streams [rank * B/W, (rank + 1) * B/W).

    Position, generator and ``chars_per_step`` are the full stream's (the same on every rank), so a
    checkpoint stores the global position.
    """

    def __init__(self, full, rows: slice) -> None:
        self.full = full
        self.rows = rows

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        x, y, reset = next(self.full)  # (B, T) each
        return x[self.rows], y[self.rows], reset  # (B/W, T) each

    def __iter__(self):
        return self

    def state_dict(self) -> dict:
        return self.full.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.full.load_state_dict(state)

    def __getattr__(self, name: str):
        return getattr(self.full, name)


def _map(fn, state):
    """``fn`` over a carried state: a tensor, a tuple of them (the LSTM's (h, c)), or None."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return type(state)(fn(t) for t in state)
    return fn(state)


class _SyncedStop:
    """A stop flag all ranks agree on: any rank's request, and rank 0's training time."""

    def __init__(self, local: threading.Event, trainer: DistributedTrainer) -> None:
        self.local = local
        self.trainer = trainer

    def is_set(self) -> bool:
        t = self.trainer
        state = t.run.state
        mine = torch.tensor([1.0 if self.local.is_set() else 0.0, float(state.trained_s)], dtype=torch.float64,
                            device=t.comm_device)  # (2,)
        every = [torch.empty_like(mine) for _ in range(t.dist.world_size)]
        _collective(t.dist, lambda: dist.all_gather(every, mine))
        state.trained_s = float(every[0][1])  # the budget is rank 0's clock
        return any(float(v[0]) > 0 for v in every)

    def set(self) -> None:
        self.local.set()


class DistributedTrainer(Trainer):
    """The trainer of one rank in a distributed run (see the module docstring).

    Takes a run built for the whole batch (``build_run`` on every rank, the same config) and keeps
    this rank's streams; events are emitted on every rank (only rank 0's go to the reporter and the recorder).
    """

    def __init__(self, run: Run, d: Dist, **kwargs) -> None:
        from torch.nn.parallel import DistributedDataParallel

        super().__init__(run, **kwargs)
        self.exact_on_stop = False  # every rank would have to wait for rank 0's measurement after a stop
        self.dist = d
        share = run.config.batch_size // d.world_size
        self.rows = slice(d.rank * share, (d.rank + 1) * share)
        self.comm_device = run.device if dist.get_backend() == "nccl" else torch.device("cpu")
        run.batches = ShardedBatches(run.batches, self.rows)
        run.state.hidden = _map(lambda h: h[:, self.rows].contiguous(), run.state.hidden)  # (L, B/W, H) of (L, B, H)
        rnn = getattr(run.model, "rnn", None)
        if rnn is not None and run.device.type == "cuda" and rnn.impl in ("auto", "fused"):
            from rnnplay.model.fused import flatten

            flatten(rnn)  # cuDNN's one weight buffer, before DDP takes the parameters
        ids = [run.device.index] if run.device.type == "cuda" else None
        self.forward = _collective(d, lambda: DistributedDataParallel(run.model, device_ids=ids))
        if not d.main:  # dropout: each rank its own noise (rank 0 continues the checkpoint's stream)
            g = torch.Generator().manual_seed(run.config.seed * 1_000_003 + run.state.step * 101 + d.rank)
            run.state.rng_cpu = g.get_state()

    def fit(self, emit, stop: threading.Event) -> None:  # type: ignore[override]
        super().fit(emit, _SyncedStop(stop, self))

    def train_step(self, tap_hidden: bool = False) -> tuple[float, float]:
        try:
            return super().train_step(tap_hidden)
        except RuntimeError as exc:  # DDP's gradient all-reduce runs inside backward()
            if is_peer_error(exc):
                raise lost(self.dist, exc) from None
            raise

    def _loss_value(self, loss: torch.Tensor) -> float:
        total = loss.detach().float().reshape(1).to(self.comm_device)  # (1,)
        _collective(self.dist, lambda: dist.all_reduce(total))
        return float(total) / self.dist.world_size  # equal shares: the mean of means is the global mean

    @torch.no_grad()
    def evaluate(self, max_chars: int | None = -1) -> float:
        value = super().evaluate(max_chars) if self.dist.main else 0.0
        box = torch.tensor([value], dtype=torch.float64, device=self.comm_device)
        _collective(self.dist, lambda: dist.broadcast(box, src=0))
        return float(box)

    def _sample(self, length: int) -> str | None:
        return super()._sample(length) if self.dist.main else None

    def _hidden_stats(self):
        return super()._hidden_stats() if self.dist.main else None

    def _gather_hidden(self):
        """Every stream's carried state, in stream order, on every rank: (L, B, H) from (L, B/W, H)."""
        def gather(h: torch.Tensor) -> torch.Tensor:
            local = h.detach().to(self.comm_device).contiguous()
            parts = [torch.empty_like(local) for _ in range(self.dist.world_size)]
            _collective(self.dist, lambda: dist.all_gather(parts, local))
            return torch.cat(parts, dim=1).to(h.device)

        return _map(gather, self.run.state.hidden)

    def _save(self, path: str | None, reason: str) -> str:
        state = self.run.state
        full = self._gather_hidden()  # every rank takes part; rank 0 writes
        if not self.dist.main:
            target = path or self.run.config.out
            if path is None:
                self.last_checkpoint = target
            return target
        local, state.hidden = state.hidden, full
        try:
            return super()._save(path, reason)
        finally:
            state.hidden = local

