"""The benchmarks' torch peers stay usable by the code they are compared with (a peer that the
trainer can no longer drive fails the benchmark only when the lead runs it, too late)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_bench_quality_peer_trains_in_step_with_ours(tmp_path):
    """The same weights, batches and optimizer: the torch.nn.RNN peer's first losses equal ours."""
    bench = load("bench_quality")
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat on the mat. the dog ate the log.\n" * 300, encoding="utf-8")
    cfg = bench.TrainConfig(corpus=str(corpus), hidden=16, layers=2, embed=8, seq_len=16, batch_size=4, steps=3,
                            sample_every=0, out=None, device="cpu")
    ours, peer = bench.build_pair(cfg)
    for _ in range(3):
        (loss_a, norm_a), (loss_b, norm_b) = ours.train_step(), peer.train_step()  # (loss, grad norm)
        torch.testing.assert_close(torch.tensor([loss_a, norm_a]), torch.tensor([loss_b, norm_b]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell, gates", [("tanh", 1), ("gru", 3), ("lstm", 4)])
def test_bench_rnn_gemm_floor_counts_the_gate_blocks(cell, gates):
    bench = load("bench_rnn")
    w = {**bench.WORKLOADS["W2"], "cell": cell}
    H = w["H"]
    recurrent = [(m, k, n) for m, k, n, c, rec in bench.gemm_plan(w, train=False) if rec]
    assert recurrent and all(n == gates * H for _, _, n in recurrent)  # (B, H) @ (H, G*H) per step
