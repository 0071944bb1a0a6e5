"""Quality and speed of rnnplay's default CharRNN against the same model built on torch.nn.RNN.

    python benchmarks/bench_quality.py --corpus ../shared/corpora/tinyshakespeare.txt --steps 2000
    python benchmarks/bench_quality.py --quick          # a short smoke run on the bundled play corpus

Both models are built by ``rnnplay.pipeline.build_run`` from the same TrainConfig (rnnplay train's
defaults unless flags say otherwise): same corpus split, same batch stream (same seed, so the same
data order), same initial weights (the peer's nn.RNN comes from ``RNN.to_torch()``, its
embedding and output layer are copies), the same Adam, clipping and schedule, and the same
``Trainer.train_step``. Training alternates blocks of ``--block`` steps between the two (the order
flips every block) so that machine noise hits both alike. At the end both are scored on the whole
validation split with the hidden state carried.

Targets (issue "CharRNN on real corpora"): validation losses within 0.02 nats/char, ours faster in
wall time. It prints both losses, the training wall times, their ratio and chars/s of training.
Final figures must be measured alone on the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import describe_load, eprint, load_info, machine_info  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

from rnnplay.pipeline import TrainConfig, build_run, make_optimizer  # noqa: E402
from rnnplay.config import add_setting_arguments, given_settings  # noqa: E402
from rnnplay.training.trainer import Trainer  # noqa: E402


class TorchCharRNN(nn.Module):
    """Embedding -> torch.nn.RNN -> Linear, initialised from one of our CharRNNs (same weights)."""

    def __init__(self, ours) -> None:
        super().__init__()
        self.vocab_size, self.hidden_size = ours.vocab_size, ours.hidden_size
        self.num_layers, self.embed_size = ours.num_layers, ours.embed_size
        self.embedding = nn.Embedding(ours.vocab_size, ours.embed_size)
        self.embedding.load_state_dict(ours.embedding.state_dict())
        self.rnn = ours.rnn.to_torch()  # nn.RNN(tanh), batch_first like ours, identical weights
        self.fc = nn.Linear(ours.hidden_size, ours.vocab_size)
        self.fc.load_state_dict(ours.fc.state_dict())

    def init_state(self, batch: int, device=None, dtype=None) -> torch.Tensor:
        """Zeros (L, B, H): the state the trainer starts a stream from (as CharRNN.init_state)."""
        w = self.fc.weight
        return torch.zeros(self.num_layers, batch, self.hidden_size, device=device or w.device, dtype=dtype or w.dtype)

    def forward(self, idx: torch.Tensor, h0: torch.Tensor | None = None):
        out, h_n = self.rnn(self.embedding(idx), h0)  # (B, T, H), (L, B, H)
        return self.fc(out), h_n  # (B, T, V)


def build_pair(config: TrainConfig):
    ours = build_run(config)
    peer_run = build_run(config)  # same seed: same batches, same initial weights
    peer_model = TorchCharRNN(peer_run.model).to(peer_run.device)
    peer_run = dataclasses.replace(peer_run, model=peer_model, optimizer=make_optimizer(peer_model, config))
    return Trainer(ours, hidden_stats_hz=0), Trainer(peer_run, hidden_stats_hz=0)


@torch.no_grad()
def _start_only(trainer: Trainer) -> float:
    """The validation loss over the split's first ``eval_chars`` characters (the old estimate)."""
    from rnnplay.data.batches import val_chunks

    cfg, model = trainer.run.config, trainer.run.model
    head = trainer.run.val_data[: cfg.eval_chars + 1]
    model.eval()
    total, count, h = 0.0, 0, None
    for x, y in val_chunks(head, cfg.batch_size, cfg.seq_len, None):
        logits, h = model(x.to(trainer.run.device), h)  # (b, t, V)
        total += float(nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.to(logits.device).reshape(-1),
                                                   reduction="sum"))
        count += y.numel()
    return total / max(1, count)


def main() -> None:
    d = TrainConfig()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # the run's settings are rnnplay train's own flags (declared once in rnnplay.config)
    add_setting_arguments(ap, ("corpus", "steps", "hidden", "layers", "embed", "seq_len", "batch_size", "lr",
                               "clip", "seed", "device"), help_suffix="")
    ap.add_argument("--block", type=int, default=25, help="steps per timed block, alternating (default 25)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 60 steps, blocks of 10")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps or (60 if args.quick else d.steps)
    block = 10 if args.quick and args.block == 25 else args.block
    given = given_settings(args)
    given.setdefault("device", "cpu")
    config = TrainConfig(**{**given, "steps": steps, "sample_every": 0, "out": None})
    ours, peer = build_pair(config)
    sync = torch.cuda.synchronize if ours.run.device.type == "cuda" else (lambda: None)
    times = {"ours": 0.0, "peer": 0.0}
    load_before = load_info()
    for b, start in enumerate(range(0, steps, block)):
        n = min(block, steps - start)
        order = [("ours", ours), ("peer", peer)] if b % 2 == 0 else [("peer", peer), ("ours", ours)]
        for name, trainer in order:
            sync()
            t0 = time.perf_counter()
            for _ in range(n):
                trainer.train_step()
            sync()
            times[name] += time.perf_counter() - t0
        if b % 10 == 0:
            eprint(f"step {start + n}/{steps}: loss ours {ours.run.state.train_loss[-1]:.4f} "
                   f"peer {peer.run.state.train_loss[-1]:.4f}")
    val = {}
    for name, trainer in (("ours", ours), ("peer", peer)):
        val[name] = trainer.evaluate(max_chars=None)  # exact: every validation character
    estimate = ours.evaluate()  # the periodic estimate: --eval-chars spread over the split
    start_only = _start_only(ours)  # what the periodic estimate read before: the split's first chars
    chars = steps * ours.run.batches.chars_per_step
    r = {
        "corpus": ours.run.corpus_info.name, "chars": ours.run.corpus_info.chars,
        "val_chars": ours.run.corpus_info.val_chars, "steps": steps, "config": config.to_dict(),
        "params": sum(p.numel() for p in ours.run.model.parameters()),
        "val_loss_ours": val["ours"], "val_loss_peer": val["peer"], "val_diff": val["ours"] - val["peer"],
        "train_s_ours": times["ours"], "train_s_peer": times["peer"], "time_ratio": times["ours"] / times["peer"],
        "chars_per_s_ours": chars / times["ours"], "chars_per_s_peer": chars / times["peer"],
        "val_estimate_ours": estimate, "val_start_only_ours": start_only,
        "eval_chars": config.eval_chars, "val_chars_total": int(ours.run.val_data.numel()) - 1,
        "references": ours.run.references.to_dict(), "machine": machine_info(str(ours.run.device)),
        "load_before": describe_load(load_before), "load_after": describe_load(load_info()),
    }
    r["targets_met"] = {"val_within_0.02": abs(r["val_diff"]) <= 0.02, "faster": r["time_ratio"] < 1.0}
    if args.json:
        print(json.dumps(r))
        return
    refs = r["references"]
    print(f"corpus {r['corpus']}: {r['chars']:,} chars (validation: last {r['val_chars']:,}); {steps} steps of "
          f"{config.batch_size}x{config.seq_len}; CharRNN {config.layers}x{config.hidden}, embed {config.embed}, "
          f"{r['params']:,} params, Adam lr {config.lr:g}, clip {config.clip:g}, {ours.run.device}")
    print(f"validation loss (nats/char): ours {val['ours']:.4f}   torch.nn.RNN {val['peer']:.4f}   "
          f"diff {r['val_diff']:+.4f} (target |diff| <= 0.02: {'met' if r['targets_met']['val_within_0.02'] else 'MISSED'})")
    print(f"periodic estimate over {config.eval_chars:,} of {r['val_chars_total']:,} validation chars: spread over "
          f"the split {estimate:.4f} (error {estimate - val['ours']:+.4f}); the split's first chars only "
          f"{start_only:.4f} (error {start_only - val['ours']:+.4f})")
    print(f"references: uniform {refs['uniform']:.3f}, unigram {refs['unigram']:.3f}, bigram {refs['bigram']:.3f}")
    print(f"training wall time: ours {times['ours']:.1f} s   torch.nn.RNN {times['peer']:.1f} s   "
          f"ratio {r['time_ratio']:.2f} (target < 1: {'met' if r['targets_met']['faster'] else 'MISSED'})")
    print(f"training chars/s: ours {r['chars_per_s_ours']:,.0f}   torch.nn.RNN {r['chars_per_s_peer']:,.0f}")
    m = r["machine"]
    print(f"machine: {m.get('cpu', '?')}, torch {m.get('torch', '?')}, {m.get('torch_threads', '?')} threads; "
          f"load before {r['load_before']}, after {r['load_after']}")


if __name__ == "__main__":
    main()
