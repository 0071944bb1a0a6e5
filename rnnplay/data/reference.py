"""Reference cross-entropies that tell a user what a loss means (nats per character).

* ``uniform``: ln V, a model that knows only the vocabulary;
* ``unigram``: character frequencies of the training text, add-one smoothed, scored on validation;
* ``bigram``: P(next | previous) counted on the training text, add-one smoothed
  ((c(a,b) + 1) / (c(a) + V)), scored on the validation text's pairs.

A char-RNN that learns anything beats the bigram line. Counts are taken on at most the first
``max_train`` training characters and scored on at most ``max_val`` validation characters, so a
huge corpus costs a bounded time (well under a second).
"""

from __future__ import annotations

import math

import torch

from rnnplay.data.facts import References

_CHUNK = 1 << 22
_DENSE_MAX = 1 << 22  # V*V bins up to this use a dense bincount (V <= 2048)


def reference_losses(
    train: torch.Tensor, val: torch.Tensor, vocab_size: int, max_train: int = 20_000_000, max_val: int = 2_000_000
) -> References:
    V = vocab_size
    train = train[:max_train]
    val = val[:max_val]
    uni = torch.bincount(train, minlength=V).double() + 1.0  # (V,)
    logp_uni = uni.log() - uni.sum().log()
    val_counts = torch.bincount(val, minlength=V).double()  # (V,)
    unigram = float(-(val_counts * logp_uni).sum() / max(1, val.numel()))
    bigram = _bigram(train, val, V)
    return References(math.log(V), unigram, bigram)


def _pairs(data: torch.Tensor, V: int, start: int, stop: int) -> torch.Tensor:
    a = data[start:stop].long()  # (n,)
    b = data[start + 1 : stop + 1].long()
    n = min(a.numel(), b.numel())
    return a[:n] * V + b[:n]  # (n,) pair ids


def _bigram(train: torch.Tensor, val: torch.Tensor, V: int) -> float:
    if val.numel() < 2 or train.numel() < 2:
        return float("nan")
    n_train = train.numel() - 1
    val_ids = _pairs(val, V, 0, val.numel() - 1)  # (m,)
    if V * V <= _DENSE_MAX:
        counts = torch.zeros(V * V, dtype=torch.float64)
        for s in range(0, n_train, _CHUNK):
            counts += torch.bincount(_pairs(train, V, s, min(s + _CHUNK, n_train)), minlength=V * V).double()
        table = counts.view(V, V)
        logp = ((table + 1.0) / (table.sum(1, keepdim=True) + V)).log().flatten()  # (V*V,)
        return float(-logp[val_ids].mean())
    ids = _pairs(train, V, 0, min(n_train, 5_000_000))
    uniq, cnt = torch.unique(ids, return_counts=True)  # sorted pair ids
    row = torch.zeros(V, dtype=torch.float64).index_add_(0, uniq // V, cnt.double())  # c(a)
    pos = torch.searchsorted(uniq, val_ids).clamp(max=uniq.numel() - 1)
    c_ab = torch.where(uniq[pos] == val_ids, cnt[pos].double(), torch.zeros((), dtype=torch.float64))
    logp = ((c_ab + 1.0) / (row[val_ids // V] + V)).log()
    return float(-logp.mean())
