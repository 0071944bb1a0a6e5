"""The seed's synthetic tasks, drawn from a seeded ``torch.Generator`` (never the global RNG).

Classification (the seed's Part 3 task): Gaussian sequences x ~ N(0, 1) of shape (T=20, I=10);
the label is 1 when the mean of all T * I values of the sequence is positive, else 0. 5,000
training and 1,000 test sequences.

Tagging (a task where the future matters): the same kind of Gaussian input, and one tag per step:
``tag[t] = 1 if x[t, f] > x[t + 1, f] else 0`` for a chosen feature f, i.e. "does feature f go
down at the next step?". The last step has no successor; we compare it with 0, the mean of the
input distribution (as if the sequence were padded with one all-zero step), so the last tag is
``x[T - 1, f] > 0``. A left-to-right model sees x[t] but not x[t + 1] when it must tag step t,
so its best possible per-step accuracy is about 0.76 (0.75 on the first T - 1 steps, where the
Bayes rule guesses from x[t, f] alone, and 1.0 on the last); a bidirectional model can approach 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SEQ_LEN = 20
INPUT_SIZE = 10
N_TRAIN = 5000
N_TEST = 1000


@dataclass(frozen=True)
class Split:
    """One split: inputs x (N, T, I) float32 and labels y, (N,) long for classify, (N, T) for tagging."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return self.x.shape[0]


@dataclass(frozen=True)
class Dataset:
    task: str  # "classify" or "tagging"
    train: Split
    test: Split
    num_classes: int  # 2 for both tasks


def classify_labels(x: torch.Tensor) -> torch.Tensor:
    """x (N, T, I) -> (N,) long: 1 where the mean over the whole sequence (all steps, all features) > 0."""
    return (x.mean(dim=(1, 2)) > 0).long()  # (N,)


def tagging_labels(x: torch.Tensor, feature: int = 0) -> torch.Tensor:
    """x (N, T, I) -> (N, T) long: tag[t] = x[t, f] > x[t+1, f]; the last step compares with 0."""
    f = x[:, :, feature]  # (N, T)
    nxt = torch.cat([f[:, 1:], torch.zeros_like(f[:, :1])], dim=1)  # (N, T): successor, 0 after the end
    return (f > nxt).long()  # (N, T)


def make_dataset(
    task: str = "classify",
    seed: int = 0,
    n_train: int = N_TRAIN,
    n_test: int = N_TEST,
    seq_len: int = SEQ_LEN,
    input_size: int = INPUT_SIZE,
    tag_feature: int = 0,
) -> Dataset:
    """Draw both splits from seeded ``torch.Generator`` objects (one per split).

    The same arguments give the same tensors on every call; torch's global RNG is never used.
    Each split has its own generator, seeded from (seed, split), so the test split does not
    depend on ``n_train``: shrinking the training set for a quick run keeps the same test set.
    """
    if task not in ("classify", "tagging"):
        raise ValueError(f"task must be 'classify' or 'tagging', got {task!r}")
    if n_train < 1 or n_test < 1 or seq_len < 1 or input_size < 1:
        raise ValueError("n_train, n_test, seq_len and input_size must all be at least 1")
    if task == "tagging" and not 0 <= tag_feature < input_size:
        raise ValueError(f"tag_feature must be in [0, {input_size}), got {tag_feature}")

    def draw(n: int, stream: int) -> Split:
        g = torch.Generator().manual_seed(_derive(seed, stream))
        x = torch.randn(n, seq_len, input_size, generator=g)  # (N, T, I)
        y = classify_labels(x) if task == "classify" else tagging_labels(x, tag_feature)
        return Split(x, y)

    return Dataset(task, draw(n_train, 0), draw(n_test, 1), num_classes=2)


def _derive(seed: int, stream: int) -> int:
    """A 63-bit seed for stream ``stream`` of experiment seed ``seed`` (distinct streams never collide)."""
    return (int(seed) * 1_000_003 + 7919 * (stream + 1)) % (2**63 - 1)
