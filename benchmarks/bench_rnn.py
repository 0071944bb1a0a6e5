"""rnnplay's RNN against torch.nn.RNN: training steps, inference and sampling, timed interleaved.

    python benchmarks/bench_rnn.py                      # W1, W2, W3 and sampling (several minutes)
    python benchmarks/bench_rnn.py --quick              # smoke run: W1, W2, few rounds (~1 min)
    python benchmarks/bench_rnn.py --workloads W1,W2 --json
    python benchmarks/bench_rnn.py --device cuda --workloads W2,W3 --cells all   # every path and cell vs cuDNN

Workloads (the issue's): W1 = SequenceClassifier, batch 32, seq 20, input 10, hidden 64, 2 layers,
dropout 0.2 (its default), Linear(64, 2) head. W2 = CharRNN, batch 64, seq 100, embedding 256,
hidden 256, 3 layers, vocab 65. W3 = CharRNN, batch 128, seq 128, embedding 512, hidden 512,
3 layers, vocab 65. The char-LMs use CharRNN's default dropout (0).

One *train step* = zero_grad, forward, cross-entropy, backward, Adam step (the same Adam variant
for both, ``--adam``); *inference* = the whole model's forward in eval mode under no_grad. The
peer is the same model built on torch.nn.RNN with the same weights (RNN.to_torch()). Every
candidate is warmed up, then timed round-robin. *ratio* = median(ours) / median(nn.RNN);
*paired* = median over rounds of the same round's ratio. Below 1 means faster than nn.RNN.
*GEMM-only* rows run exactly the matrix products of our step (the same shapes, on preallocated
tensors) and nothing else: *one call per shape* does each layer's recurrent products as one big
product (no time loop), *per-step calls* one ``mm`` per time step (what any Python time loop pays at
least). *% of floor* = the faster GEMM-only time / the candidate's time. CharRNN reads layer 1's
input from the (V, H) table E @ Wxh^T (V < T*B), so its step has no (T*B, E) x (E, H) products;
nn.RNN's step has them (``--no-fold`` turns the fold off for comparison).

Cells and execution paths: ``--cells tanh,gru,lstm`` (or ``all``; default tanh) times each cell
kind against its torch module (nn.RNN / nn.GRU / nn.LSTM, cuDNN on CUDA); workloads of the gated
cells are named ``W2-gru`` and so on (their GEMM-only rows are left out: the plan is the tanh
cell's). *ours* is the model as users get it (``impl="auto"``: fused on CUDA, fast on the CPU);
``--impls fast,fused`` adds a row per forced execution path (the default on CUDA). On CUDA the
target is the default path at most 1.0x the torch module's training step.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rnnplay.model.fast as fast  # noqa: E402
from rnnplay.malloc import keep_freed_memory  # noqa: E402
from rnnplay import CharRNN, SequenceClassifier  # noqa: E402
from rnnplay.model.kinds import CELL_NAMES, cell_kind  # noqa: E402
from _rnn_report import markdown, summary  # noqa: E402
from _timing import (  # noqa: E402
    eprint, interleave, load_info, machine_info, paired_ratio, ratio_of_medians, summarize,
)

WORKLOADS = {
    "W1": dict(kind="classifier", B=32, T=20, I=10, H=64, L=2, C=2, dropout=0.2),
    "W2": dict(kind="lm", B=64, T=100, I=256, H=256, L=3, C=65, dropout=0.0),
    "W3": dict(kind="lm", B=128, T=128, I=512, H=512, L=3, C=65, dropout=0.0),
}
ROUNDS = {"W1": (60, 5), "W2": (20, 3), "W3": (8, 2)}  # (rounds, warm-up calls)
QUICK_ROUNDS = {"W1": (10, 2), "W2": (3, 1), "W3": (2, 1)}  # --quick: a smoke run, indicative only


# ---- the models ---------------------------------------------------------------------------------

def build(w: dict, impl: str = "auto", device: str = "cpu", cell: str = "tanh"):
    """(ours, peer, data): our model, the same model on torch.nn.RNN with the same weights, inputs."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    if w["kind"] == "classifier":
        ours = SequenceClassifier(w["I"], w["H"], w["C"], num_layers=w["L"], dropout=w["dropout"], impl=impl,
                                  cell=cell)
        peer = _PeerClassifier(ours)
        x = torch.randn(w["B"], w["T"], w["I"], generator=g)  # (B, T, I)
        y = torch.randint(0, w["C"], (w["B"],), generator=g)  # (B,)
    else:
        ours = CharRNN(w["C"], w["H"], w["L"], embed_size=w["I"], dropout=w["dropout"], impl=impl, cell=cell)
        peer = _PeerLM(ours)
        x = torch.randint(0, w["C"], (w["B"], w["T"]), generator=g)  # (B, T)
        y = torch.randint(0, w["C"], (w["B"], w["T"]), generator=g)  # (B, T)
    return ours.to(device), peer.to(device), (x.to(device), y.to(device))


class _PeerClassifier(nn.Module):
    """SequenceClassifier on torch.nn.RNN: last layer's final state -> dropout -> Linear."""

    def __init__(self, ours) -> None:
        import copy

        super().__init__()
        self.rnn = ours.rnn.to_torch()
        self.dropout = copy.deepcopy(ours.dropout)
        self.fc = copy.deepcopy(ours.fc)

    def forward(self, x):
        _, h_n = self.rnn(x)  # (L, B, H), or the LSTM's (h, c)
        h = h_n[0] if isinstance(h_n, tuple) else h_n
        return self.fc(self.dropout(h[-1]))  # (B, C)


class _PeerLM(nn.Module):
    """CharRNN on torch.nn.RNN (batch_first): Embedding -> nn.RNN -> Linear."""

    def __init__(self, ours) -> None:
        import copy

        super().__init__()
        self.embedding = copy.deepcopy(ours.embedding)
        self.rnn = ours.rnn.to_torch()
        self.fc = copy.deepcopy(ours.fc)

    def forward(self, idx, h0=None):
        out, h_n = self.rnn(self.embedding(idx), h0)  # (B, T, H)
        return self.fc(out), h_n  # (B, T, V)


def logits_of(model, x):
    out = model(x)
    return out[0] if isinstance(out, tuple) else out


def loss_of(logits, y):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def make_optimizer(params, kind: str):
    if kind == "fused":
        return torch.optim.Adam(params, lr=1e-3, fused=True)
    if kind == "foreach":
        return torch.optim.Adam(params, lr=1e-3, foreach=True)
    return torch.optim.Adam(params, lr=1e-3)  # torch's default: the for-loop version on CPU


def train_step_fn(model, data, adam: str):
    x, y = data
    model.train()
    opt = make_optimizer(model.parameters(), adam)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_of(logits_of(model, x), y).backward()
        opt.step()

    return step


def infer_fn(model, data):
    x, _ = data
    model.eval()

    def infer() -> None:
        with torch.no_grad():
            logits_of(model, x)

    return infer


# ---- the GEMM-only floor --------------------------------------------------------------------

def gemm_plan(w: dict, train: bool) -> list[tuple[int, int, int, int, bool]]:
    """(M, K, N, count, recurrent) for every matrix product of the step (as our fast path does it)."""
    B, T, I, H, L, C = (w[k] for k in ("B", "T", "I", "H", "L", "C"))
    G = cell_kind(w.get("cell", "tanh")).gates  # gate blocks: Wxh is (G*H, I), Whh (G*H, H)
    lm = w["kind"] == "lm"
    fold = lm and fast.FOLD_EMBEDDING and C < T * B  # CharRNN: layer 1 reads rows of E @ Wxh^T
    plan = []
    for layer in range(L):
        i_l = I if layer == 0 else H
        if layer == 0 and fold:
            plan.append((C, I, G * H, 1, False))  # the (V, G*H) table E @ Wxh^T
            if train:
                plan += [(C, G * H, I, 1, False), (G * H, C, I, 1, False)]  # dE, dWxh from the table gradient
        else:
            plan.append((T * B, i_l, G * H, 1, False))  # input projection
        plan.append((B, H, G * H, T - 1, True))  # recurrence (h0 = 0: step 0 needs no product)
        if train:
            plan.append((B, G * H, H, T - 1, True))  # backward through time
            plan.append((G * H, (T - 1) * B, H, 1, False))  # dWhh
            if not (layer == 0 and fold):
                plan.append((G * H, T * B, i_l, 1, False))  # dWxh
            if layer > 0 or (lm and not fold):
                plan.append((T * B, G * H, i_l, 1, False))  # gradient of the layer's input
    rows = T * B if lm else B
    plan.append((rows, H, C, 1, False))  # head
    if train:
        plan.append((rows, C, H, 1, False))  # head: gradient of the hidden states
        plan.append((C, rows, H, 1, False))  # head: weight gradient
    return plan


def gemm_flops(plan) -> float:
    return sum(2.0 * m * k * n * c for m, k, n, c, _ in plan)


def gemm_fns(plan, device: str = "cpu"):
    """(one call per shape, per-step calls) on preallocated tensors."""
    g = torch.Generator().manual_seed(1)
    ops_batched, ops_steps = [], []
    for m, k, n, c, rec in plan:
        a, b = torch.randn(m * c, k, generator=g).to(device), torch.randn(k, n, generator=g).to(device)
        out = torch.empty(m * c, n, device=device)
        ops_batched.append((a, b, out))
        if rec:
            a1, o1 = a[:m], out[:m]
            ops_steps += [(a1, b, o1)] * c
        else:
            ops_steps.append((a, b, out))
    mm = torch.mm

    def run(ops):
        def f() -> None:
            for a, b, out in ops:
                mm(a, b, out=out)
        return f

    return run(ops_batched), run(ops_steps)


# ---- correctness ----------------------------------------------------------------------------

def _peer_name(name: str) -> str:
    """Our parameter name -> the peer's: rnn.cells.1.Whh.bias -> rnn.bias_hh_l1."""
    parts = name.split(".")
    if "cells" not in parts:
        return name
    k, lin, kind = parts[-3], parts[-2], parts[-1]
    return f"rnn.{kind}_{'ih' if lin == 'Wxh' else 'hh'}_l{k}"


def correctness(ours, peer, data) -> dict[str, float]:
    """Eval mode, grad enabled, float32: max |diff| of logits, loss, every parameter gradient; no_grad logits.

    On CUDA torch's module cannot backpropagate through cuDNN in eval mode, so its gradients there
    come from ATen's own CUDA kernel (cuDNN off); ours run on cuDNN, with TF32 off for this check
    (the timings keep torch's default, TF32 on, for both)."""
    x, y = data
    ours.eval(), peer.eval()
    res, grads = {}, []
    for m in (ours, peer):
        m.zero_grad(set_to_none=True)
        with torch.backends.cudnn.flags(enabled=m is ours or not x.is_cuda, allow_tf32=False):
            logits = logits_of(m, x)
        loss = loss_of(logits, y)
        loss.backward()
        grads.append({n: p.grad for n, p in m.named_parameters()})
        res.setdefault("logits", []).append(logits.detach())
        res.setdefault("loss", []).append(loss.detach())
        with torch.no_grad():
            res.setdefault("infer", []).append(logits_of(m, x))
    out = {k: float((a - b).abs().max()) for k, (a, b) in res.items()}
    out["grads"] = max(float((g - grads[1][_peer_name(n)]).abs().max()) for n, g in grads[0].items())
    out["max_abs_grad"] = max(float(g.abs().max()) for g in grads[1].values())
    return out


# ---- one workload -------------------------------------------------------------------------

def run_workload(name: str, args, cell: str = "tanh") -> dict:
    w = WORKLOADS[name]
    ours, peer, data = build(w, device=args.device, cell=cell)
    res: dict = {"config": {**w, "cell": cell}, "load_before": load_info(),
                 "correctness": correctness(ours, peer, data)}
    rounds, warm = (QUICK_ROUNDS if args.quick else ROUNDS)[name]
    rounds = args.rounds or rounds
    for mode in ("train", "infer"):
        plan = gemm_plan({**w, "cell": cell}, mode == "train")  # the gated cells: G*H-wide products
        fn_of = (lambda m: train_step_fn(m, data, args.adam)) if mode == "train" else (lambda m: infer_fn(m, data))
        fns = {"ours": fn_of(ours), "nn.RNN": fn_of(peer)}
        for impl in args.impls:  # the same weights (same seed), one execution path forced
            fns[f"ours[{impl}]"] = fn_of(build(w, impl=impl, device=args.device, cell=cell)[0])
        if args.reference:
            ref, _, _ = build(w, impl="reference", device=args.device, cell=cell)
            fns["reference"] = train_step_fn(ref, data, args.adam) if mode == "train" else infer_fn(ref, data)
        fns["gemm_batched"], fns["gemm_steps"] = gemm_fns(plan, args.device)  # gated: G*H-wide products
        eprint(f"{name} {cell} {mode}: {rounds} rounds of {', '.join(fns)}")
        times = interleave(fns, rounds, warm, device=args.device)
        floor = min(summarize(times["gemm_batched"])["median"], summarize(times["gemm_steps"])["median"])
        flops = gemm_flops(plan)
        rows = {}
        for k, ts in times.items():
            s = summarize(ts)
            s["ratio"] = ratio_of_medians(ts, times["nn.RNN"])
            s["ratio_paired"] = paired_ratio(ts, times["nn.RNN"])
            s["floor_fraction"] = floor / s["median"]
            s["gflops"] = flops / s["median"] / 1e9
            rows[k] = s
        res[mode] = {"rows": rows, "gemm_gflop": flops / 1e9}
    res["load_after"] = load_info()
    return res


# ---- sampling -------------------------------------------------------------------------------

def sampling(args) -> dict:
    """chars/s of CharRNN.generate (W2 size) against the torch module stepped in a loop with carried
    state: batch 1 and 8 for the tanh cell (keys batch1, batch8), batch 1 for each gated cell in --cells
    (cells[cell]["batch1"])."""
    V, H, L, E = 65, 256, 3, 256
    dev = args.device
    length = 200 if args.quick else 1000
    rounds = 3 if args.quick else 7
    res: dict = {"config": dict(vocab=V, embed=E, hidden=H, layers=L, length=length, prime=10), "cells": {}}
    for cell in dict.fromkeys(["tanh", *args.cell_list]):
        torch.manual_seed(0)
        ours = CharRNN(V, H, L, embed_size=E, cell=cell).eval().to(dev)
        peer = _PeerLM(ours).eval().to(dev)
        for batch in ((1, 8) if cell == "tanh" else (1,)):
            prime = torch.randint(0, V, (batch, 10), generator=torch.Generator().manual_seed(2)).to(dev)
            temps = torch.linspace(0.5, 1.5, batch, device=dev) if batch > 1 else 1.0

            def ours_fn() -> None:
                ours.generate(prime, length, temperature=temps, generator=torch.Generator(dev).manual_seed(3))

            def peer_fn() -> None:
                _peer_generate(peer, prime, length, temps, torch.Generator(dev).manual_seed(3))

            eprint(f"sampling {cell} batch {batch}: {rounds} rounds")
            times = interleave({"ours": ours_fn, "nn.RNN": peer_fn}, rounds, 1, device=dev)
            row = {k: {"chars_per_s": batch * length / summarize(ts)["median"], **summarize(ts)}
                   for k, ts in times.items()}
            row["speedup_paired"] = 1.0 / paired_ratio(times["ours"], times["nn.RNN"])
            res["cells"].setdefault(cell, {})[f"batch{batch}"] = row
            if cell == "tanh":
                res[f"batch{batch}"] = row
    return res


@torch.no_grad()
def _peer_generate(peer, prime, length, temperature, generator):
    """The usual loop with the torch module: carry its state, one step per character, softmax + multinomial."""
    B = prime.shape[0]
    out, h = peer(prime)  # (B, T, V), (L, B, H) or the LSTM's (h, c)
    logits = out[:, -1]  # (B, V)
    temp = temperature.view(-1, 1) if isinstance(temperature, torch.Tensor) else temperature
    result = torch.empty(B, length, dtype=torch.long, device=prime.device)
    for i in range(length):
        probs = torch.softmax(logits / temp, dim=-1)
        nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
        result[:, i] = nxt[:, 0]
        out, h = peer(nxt, h)
        logits = out[:, -1]
    return result


# ---- Adam variants ----------------------------------------------------------------------------

def adam_section(names: list[str], quick: bool, device: str = "cpu") -> dict:
    """Adam's step alone on each workload's parameters: torch's default (a for-loop on CPU), foreach, fused."""
    res = {}
    for name in names:
        ours, _, _ = build(WORKLOADS[name], device=device)
        params = list(ours.parameters())
        for p in params:
            p.grad = torch.randn_like(p) * 1e-3
        fns = {}
        for kind in ("default", "foreach", "fused"):
            opt = make_optimizer(params, kind)
            fns[kind] = opt.step
        times = interleave(fns, 5 if quick else 40, 2, device=device)
        res[name] = {k: {**summarize(ts), "vs_default_paired": paired_ratio(ts, times["default"])}
                     for k, ts in times.items()}
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: W1 and W2 (unless --workloads), few rounds")
    ap.add_argument("--workloads", default=None, help="comma-separated subset of W1,W2,W3 ('' for none)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the markdown report")
    ap.add_argument("--adam", choices=("fused", "foreach", "default"), default="fused",
                    help="Adam variant, the same for ours and nn.RNN (default: fused)")
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds per workload (overrides the defaults)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads before timing")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]: nn.RNN then runs cuDNN")
    ap.add_argument("--cells", default="tanh", help="comma-separated cell kinds to time, or 'all' (default tanh)")
    ap.add_argument("--impls", default=None, help="execution paths timed beside the default, e.g. fast,fused "
                    "(default: fast,fused on CUDA, none on the CPU)")
    ap.add_argument("--reference", action="store_true", help="also time the seed's loop (impl='reference')")
    ap.add_argument("--no-sampling", action="store_true", help="skip the sampling section")
    ap.add_argument("--no-adam", action="store_true", help="skip the Adam-variants section")
    ap.add_argument("--no-fold", action="store_true",
                    help="CharRNN: multiply the embeddings by Wxh instead of reading rows of the folded table")
    ap.add_argument("--default-malloc", action="store_true",
                    help="leave glibc's allocator as it is (default: keep freed memory for reuse, as rnnplay "
                         "train does; it applies to ours and the torch module alike, see rnnplay/malloc.py)")
    args = ap.parse_args(argv)
    args.keep_freed_memory = False if args.default_malloc else keep_freed_memory()
    if args.no_fold:
        fast.FOLD_EMBEDDING = False
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.workloads is None:
        names = ["W1", "W2"] if args.quick else list(WORKLOADS)
    else:
        names = [n.strip().upper() for n in args.workloads.split(",") if n.strip()]
        bad = [n for n in names if n not in WORKLOADS]
        if bad:
            ap.error(f"unknown workload(s) {', '.join(bad)}; choose from {', '.join(WORKLOADS)}")
    cells = list(CELL_NAMES) if args.cells == "all" else [c.strip() for c in args.cells.split(",") if c.strip()]
    bad = [c for c in cells if c not in CELL_NAMES]
    if bad or not cells:
        ap.error(f"--cells {args.cells!r}: choose from {', '.join(CELL_NAMES)} or all")
    args.cell_list = cells
    if args.impls is None:
        args.impls = "fast,fused" if args.device.startswith("cuda") else ""
    args.impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    bad = [i for i in args.impls if i not in ("fast", "fused", "reference")]
    if bad:
        ap.error(f"--impls: unknown {', '.join(bad)}; choose from fast, fused, reference")
    t0 = time.perf_counter()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA GPU is visible to torch here")
    report: dict = {"machine": machine_info(args.device), "adam": args.adam, "args": vars(args),
                    "command": "python " + " ".join([sys.argv[0].split("/rnnplay/")[-1]] + sys.argv[1:])}
    report["workloads"] = {(name if cell == "tanh" else f"{name}-{cell}"): run_workload(name, args, cell)
                           for cell in cells for name in names}
    report["sampling"] = None if args.no_sampling else sampling(args)
    report["adam_variants"] = None if args.no_adam else adam_section(names, args.quick, args.device)
    report["load_at_end"] = load_info()
    report["wall_s"] = time.perf_counter() - t0
    report["summary"] = summary(report)
    if args.json:
        print(json.dumps(report, default=str))
    else:
        print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
