"""The seed's classifier experiment, ours vs torch.nn.RNN with the same recipe, timed interleaved.

Both models train on the same data in the same batch order (seeded generators) with the seed's
recipe (Adam 1e-3, StepLR halving every 20 epochs, batch 32). Epochs alternate between the two
models (the order flips every epoch), so a slow spell on a shared machine hits both alike; the
time ratio is the median of the per-epoch ratios ours / nn.RNN. Test accuracy is reported after
the last epoch for each seed.

The peer is ``nn.RNN(10, 64, 2, batch_first=True, dropout=0.2)`` -> last layer's final state ->
Dropout(0.2) -> Linear(64, 2), with torch's own initialisation (``--same-init`` copies our
initial weights into it instead, so the two runs differ only by float rounding and dropout draws).

    python benchmarks/bench_classify.py                 # 60 epochs, seeds 0 1 2 (minutes)
    python benchmarks/bench_classify.py --quick         # smoke run: 3 epochs, 1,000 sequences
    python benchmarks/bench_classify.py --threads 1 2   # also compare torch intra-op thread counts
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from _timing import describe_load, load_info, machine_info, paired_ratio, summarize  # noqa: E402
from torch import nn  # noqa: E402

from rnnplay.classify.data import _derive, make_dataset  # noqa: E402
from rnnplay.classify.experiment import evaluate, make_optimizer, train_one_epoch  # noqa: E402
from rnnplay.model import SequenceClassifier  # noqa: E402


class TorchClassifier(nn.Module):
    """The seed's SequenceClassifier on torch.nn.RNN: (B, T, I) -> (B, C)."""

    def __init__(self, input_size: int = 10, hidden_size: int = 64, num_classes: int = 2,
                 num_layers: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        self.rnn = nn.RNN(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h_n = self.rnn(x)  # (L, B, H)
        return self.fc(self.dropout(h_n[-1]))  # (B, C)


def run_seed(seed: int, epochs: int, n_train: int, threads: list[int], same_init: bool, device: str) -> dict:
    data = make_dataset("classify", seed, n_train=n_train)
    train = type(data.train)(data.train.x.to(device), data.train.y.to(device))
    test = type(data.test)(data.test.x.to(device), data.test.y.to(device))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ours = SequenceClassifier(10, 64, 2, num_layers=2, dropout=0.2)
        torch.manual_seed(seed)
        peer = TorchClassifier()
    if same_init:
        peer.rnn = ours.rnn.to_torch()
        peer.fc.load_state_dict(ours.fc.state_dict())
    runs = {"ours": ours.to(device), "nn.RNN": peer.to(device)}
    state = {}
    for name, model in runs.items():
        opt = make_optimizer(model, 1e-3)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.5)
        state[name] = (model, opt, sched, torch.Generator().manual_seed(_derive(seed, 2)))
    times: dict[str, list[float]] = {f"{k}@{t}": [] for k in runs for t in threads}
    names = list(runs)
    for epoch in range(epochs):
        t_threads = threads[epoch % len(threads)]
        torch.set_num_threads(t_threads)
        for name in (names if epoch % 2 == 0 else names[::-1]):
            model, opt, sched, gen = state[name]
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            train_one_epoch(model, opt, train, 32, gen)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[f"{name}@{t_threads}"].append(time.perf_counter() - t0)
            sched.step()
    acc = {name: evaluate(state[name][0], test) for name in names}
    out = {"seed": seed, "epochs": epochs, "test_accuracy": acc, "epoch_s": {}, "ratio": {}}
    for t in threads:
        a, b = times[f"ours@{t}"], times[f"nn.RNN@{t}"]
        out["epoch_s"][t] = {"ours": summarize(a)["median"], "nn.RNN": summarize(b)["median"]}
        out["ratio"][t] = paired_ratio(a, b)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3 epochs on 1,000 training sequences, seed 0")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n-train", type=int, default=5000)
    p.add_argument("--threads", type=int, nargs="+", default=None,
                   help="torch intra-op threads, cycled per epoch (default: torch's own setting)")
    p.add_argument("--same-init", action="store_true", help="start nn.RNN from our initial weights")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if a.quick:
        a.epochs, a.seeds, a.n_train = 3, [0], 1000
    threads = a.threads or [torch.get_num_threads()]
    before = load_info()
    results = [run_seed(s, a.epochs, a.n_train, threads, a.same_init, a.device) for s in a.seeds]
    report = {"machine": machine_info(a.device), "load_before": before, "load_after": load_info(),
              "epochs": a.epochs, "n_train": a.n_train, "same_init": a.same_init, "results": results}
    if a.json:
        print(json.dumps(report))
        return
    print(f"classifier experiment, {a.epochs} epochs x {a.n_train} sequences, batch 32, device {a.device}; "
          f"load: {describe_load(before)} -> {describe_load(report['load_after'])}")
    print(f"{'seed':>4} {'threads':>7} {'ours s/epoch':>12} {'nn.RNN s/epoch':>14} {'ratio':>6} "
          f"{'ours test acc':>13} {'nn.RNN test acc':>15}")
    for r in results:
        for t in threads:
            e = r["epoch_s"][t]
            print(f"{r['seed']:>4} {t:>7} {e['ours']:>12.3f} {e['nn.RNN']:>14.3f} {r['ratio'][t]:>6.2f} "
                  f"{r['test_accuracy']['ours']:>13.3f} {r['test_accuracy']['nn.RNN']:>15.3f}")
    print("ratio: median over epochs of (ours / nn.RNN) epoch time, paired; lower is better.")


if __name__ == "__main__":
    main()
