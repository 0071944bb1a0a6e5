"""Vocabulary, batches and reference losses."""

import math

import pytest
import torch

from rnnplay.data.batches import StreamBatches, val_streams
from rnnplay.data.reference import reference_losses
from rnnplay.data.vocab import Vocab, smallest_dtype
from rnnplay.errors import UserError


def test_vocab_round_trip_non_ascii():
    text = "héllo wörld 日本"
    v = Vocab(text)
    enc = v.encode(text)
    assert enc.dtype == torch.uint8
    assert v.decode(enc) == text
    assert v.chars == sorted(set(text))  # sorted by code point: same text, same indices
    assert Vocab.from_string(v.to_string()) == v
    assert v.unknown("hé? 本x") == ["?", "x"]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        v.encode("xyz")


def test_smallest_dtype_boundaries():
    assert smallest_dtype(256) == torch.uint8
    assert smallest_dtype(257) == torch.int16
    assert smallest_dtype(32768) == torch.int16
    assert smallest_dtype(32769) == torch.int32
    wide = Vocab(chr(0x3000 + i) for i in range(40000))
    assert wide.dtype == torch.int32
    s = "".join(wide.chars[::997])
    assert wide.decode(wide.encode(s)) == s


def _data(n=5000, vocab=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (n,), generator=g, dtype=torch.uint8)


def test_batches_shapes_targets_and_streams():
    data = _data()
    b = StreamBatches(data, batch_size=4, seq_len=10, seed=0)
    x, y, reset = next(b)
    assert reset and x.shape == y.shape == (4, 10) and x.dtype == torch.long
    x2, y2, reset2 = next(b)
    assert not reset2
    assert torch.equal(x2[:, 0], y[:, -1])  # each row continues its stream: state can be carried
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_batches_deterministic_from_seed_and_epochs_shift():
    data = _data()
    a = [next(StreamBatches(data, 4, 10, seed=1)) for _ in range(1)]
    b = [next(StreamBatches(data, 4, 10, seed=1)) for _ in range(1)]
    assert torch.equal(a[0][0], b[0][0])
    s1, s2 = StreamBatches(data, 4, 10, seed=1), StreamBatches(data, 4, 10, seed=2)
    xs1 = torch.cat([next(s1)[0] for _ in range(300)])
    xs2 = torch.cat([next(s2)[0] for _ in range(300)])
    assert not torch.equal(xs1, xs2)
    offsets = set()
    for _ in range(2000):
        next(s1)
        offsets.add(s1.offset)
    assert s1.epoch >= 10 and len(offsets) > 3  # window borders move from epoch to epoch


def test_batches_state_dict_resumes_the_same_sequence():
    data = _data()
    a = StreamBatches(data, 4, 10, seed=3)
    for _ in range(170):  # past an epoch boundary
        next(a)
    state = a.state_dict()
    expected = [next(a) for _ in range(200)]
    b = StreamBatches(data, 4, 10, seed=3)
    b.load_state_dict(state)
    for (x1, y1, r1), (x2, y2, r2) in zip(expected, [next(b) for _ in range(200)]):
        assert torch.equal(x1, x2) and torch.equal(y1, y2) and r1 == r2


def test_batches_refuse_a_too_short_text():
    with pytest.raises(UserError, match="too short for --batch-size 64"):
        StreamBatches(_data(500), 64, 100, seed=0)


def test_val_streams_cover_the_start_of_validation():
    data = _data(1000)
    chunks = val_streams(data, batch_size=4, seq_len=8, max_chars=200)
    n = sum(x.numel() for x, _ in chunks)
    assert 190 <= n <= 200
    x0, y0 = chunks[0]
    assert torch.equal(y0[0, :-1], x0[0, 1:])


def _brute(train, val, V):
    tr, va = train.tolist(), val.tolist()
    uni = [tr.count(c) + 1 for c in range(V)]
    unigram = -sum(math.log(uni[c] / sum(uni)) for c in va) / len(va)
    pair = {}
    for a, b in zip(tr, tr[1:]):
        pair[(a, b)] = pair.get((a, b), 0) + 1
    row = [sum(pair.get((a, b), 0) for b in range(V)) for a in range(V)]
    bigram = -sum(math.log((pair.get((a, b), 0) + 1) / (row[a] + V)) for a, b in zip(va, va[1:])) / (len(va) - 1)
    return unigram, bigram


@pytest.mark.parametrize("dense", [True, False])
def test_reference_losses_match_a_brute_force_count(dense, monkeypatch):
    import rnnplay.data.reference as ref

    if not dense:
        monkeypatch.setattr(ref, "_DENSE_MAX", 1)
    g = torch.Generator().manual_seed(0)
    train = torch.randint(0, 7, (400,), generator=g, dtype=torch.uint8) // 2 * 2  # skewed
    val = torch.randint(0, 7, (60,), generator=g, dtype=torch.uint8)
    r = reference_losses(train, val, 7)
    uni, bi = _brute(train, val, 7)
    assert r.uniform == pytest.approx(math.log(7))
    assert r.unigram == pytest.approx(uni, rel=1e-9)
    assert r.bigram == pytest.approx(bi, rel=1e-9)
