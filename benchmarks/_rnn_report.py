"""The report of bench_rnn.py: README-ready markdown tables and the targets summary."""

from __future__ import annotations

from _timing import describe_load, fmt_ms

TARGETS = {"W1": 0.50, "W2": 0.70, "W3": 0.80}  # CPU: training-step ratio ours / nn.RNN, paired median
CUDA_TARGET = 1.0  # CUDA: the default path (fused) at most cuDNN's training-step time
SAMPLING_TARGET = 10_000  # chars/s at batch 1, W2 size (tanh cell)
GATED_TARGETS = {"W2-gru": 0.80, "W2-lstm": 0.80}  # CPU: train step ours / nn.GRU, nn.LSTM, paired median
GATED_SAMPLING_SPEEDUP = 3.0  # gated cells: batch-1 sampling at least 3x the torch module stepped in a loop

ROW_NAMES = {
    "ours": "**rnnplay RNN (default: impl=\"auto\")**",
    "ours[fast]": "rnnplay RNN, impl=\"fast\"",
    "ours[fused]": "rnnplay RNN, impl=\"fused\" (torch._VF with our weights)",
    "reference": "rnnplay RNN, impl=\"reference\" (the seed's loop)",
    "nn.RNN": "torch.nn.RNN / GRU / LSTM (the same cell; cuDNN on CUDA)",
    "gemm_batched": "GEMM-only, one call per shape",
    "gemm_steps": "GEMM-only, per-step calls",
}


def _describe(name: str, w: dict) -> str:
    cell = w.get("cell", "tanh")
    return _describe_shape(name, w) + ("" if cell == "tanh" else f", cell {cell} (peer: torch.nn.{cell.upper()})")


def _describe_shape(name: str, w: dict) -> str:
    if w["kind"] == "classifier":
        return (f"{name} classifier (SequenceClassifier): batch {w['B']}, seq {w['T']}, input {w['I']}, "
                f"hidden {w['H']}, {w['L']} layers, dropout {w['dropout']}, head Linear({w['H']}, {w['C']})")
    return (f"{name} char-LM (CharRNN): batch {w['B']}, seq {w['T']}, embedding {w['I']}, hidden {w['H']}, "
            f"{w['L']} layers, dropout {w['dropout']}, vocab {w['C']}")


def _cell(s: dict) -> str:
    return f"{fmt_ms(s['median'])} [{fmt_ms(s['p25'])}-{fmt_ms(s['p75'])}]"


def markdown(report: dict) -> str:
    m, lines = report["machine"], []
    lines += ["# rnnplay RNN vs torch.nn.RNN", ""]
    lines.append(f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs ({m['cpu_capability']}); "
                 f"torch {m['torch']}, {m['torch_threads']} threads; Python {m['python']}"
                 + (f"; device {report['args']['device']} ({m['gpu']})." if "gpu" in m else "; device cpu."))
    lines.append(f"Load at start: {describe_load(m['load_at_start'])}; at end: {describe_load(report['load_at_end'])}.")
    if report["args"].get("quick"):
        lines.append("**--quick smoke run: a few rounds only, the ratios are indicative, not measurements.**")
    lines.append(f"Command: `{report['command']}` (wall {report['wall_s']:.0f} s). Adam variant for both: "
                 f"{report['adam']}. Times in ms, median [p25-p75]; ratio = ours / nn.RNN (paired: median of "
                 f"per-round ratios); below 1 is faster than nn.RNN.")
    lines += ["", "Method: a train step is zero_grad + forward + cross-entropy + backward + Adam step; inference "
              "is the model's forward in eval mode under no_grad. nn.RNN runs the same model with the same "
              "weights (RNN.to_torch()). Candidates are warmed up, then timed round-robin, order reversed "
              "every other round. GEMM-only rows run just the matrix products of our step on preallocated "
              "tensors (one call per shape, or one call per time step); % of GEMM floor = the faster of "
              "them / the candidate's time. CharRNN reads layer 1's input from the (V, H) table "
              "E @ Wxh^T instead of multiplying the embeddings by Wxh (V < T*B)"
              + (", turned off here (--no-fold)." if report["args"].get("no_fold") else ".")
              + (" glibc keeps freed memory for reuse, for both candidates (rnnplay.malloc, as rnnplay train does)."
                 if report["args"].get("keep_freed_memory") else " glibc's allocator left at its defaults.")]
    for name, r in report["workloads"].items():
        w, tr, inf = r["config"], r["train"], r["infer"]
        lines += ["", f"## {_describe(name, w)}", ""]
        lines.append(f"GEMM work: {tr['gemm_gflop']:.3f} GFLOP per train step, {inf['gemm_gflop']:.3f} per "
                     f"inference; {tr['rows']['ours']['n']} train / {inf['rows']['ours']['n']} inference rounds; "
                     f"load {describe_load(r['load_before'])} -> {describe_load(r['load_after'])}.")
        lines += ["", "| candidate | train ms | train ratio (paired) | train % of GEMM floor | "
                  "infer ms | infer ratio (paired) | infer % of GEMM floor |", "|---|---|---|---|---|---|---|"]
        for key, label in ROW_NAMES.items():
            if key not in tr["rows"]:
                continue
            a, b = tr["rows"][key], inf["rows"][key]
            lines.append(f"| {label} | {_cell(a)} | {a['ratio']:.2f} ({a['ratio_paired']:.2f}) | "
                         f"{_pct(a['floor_fraction'])} | {_cell(b)} | {b['ratio']:.2f} "
                         f"({b['ratio_paired']:.2f}) | {_pct(b['floor_fraction'])} |")
        c = r["correctness"]
        lines += ["", f"Correctness vs torch (eval, float32, max abs diff): logits {c['logits']:.1e}, loss "
                  f"{c['loss']:.1e}, parameter gradients {c['grads']:.1e} (largest gradient {c['max_abs_grad']:.1e}), "
                  f"no_grad logits {c['infer']:.1e}."]
    if report.get("sampling"):
        s = report["sampling"]
        cfg = s["config"]
        lines += ["", f"## Sampling: CharRNN.generate, vocab {cfg['vocab']}, embedding {cfg['embed']}, hidden "
                  f"{cfg['hidden']}, {cfg['layers']} layers; {cfg['length']} characters after a "
                  f"{cfg['prime']}-character prime", "",
                  "| cell | batch | rnnplay chars/s | torch loop chars/s | speedup (paired) |", "|---|---|---|---|---|"]
        for cell, per in s.get("cells", {"tanh": s}).items():
            for key, label in (("batch1", "1"), ("batch8", "8 (8 temperatures)")):
                if key not in per:
                    continue
                b = per[key]
                lines.append(f"| {cell} | {label} | {b['ours']['chars_per_s']:,.0f} | "
                             f"{b['nn.RNN']['chars_per_s']:,.0f} | {b['speedup_paired']:.1f}x |")
        lines += ["", "torch loop: embedding, one nn.RNN / GRU / LSTM call with the carried state, Linear, softmax and "
                  "multinomial per character; chars/s counts every row of the batch."]
    if report.get("adam_variants"):
        lines += ["", "## Adam step alone (our model's parameters), ms median and paired ratio vs torch's default",
                  "", "| workload | default (for-loop) | foreach | fused |", "|---|---|---|---|"]
        for name, a in report["adam_variants"].items():
            lines.append(f"| {name} | " + " | ".join(
                f"{fmt_ms(a[k]['median'])} ({a[k]['vs_default_paired']:.2f})" for k in ("default", "foreach", "fused"))
                + " |")
    lines += ["", "## Targets", "", "| check | target | measured | met |", "|---|---|---|---|"]
    for row in report["summary"]:
        lines.append(f"| {row['check']} | {row['target']} | {row['measured']} | {'yes' if row['met'] else 'NO'} |")
    return "\n".join(lines)


def _pct(x: float) -> str:
    return "-" if x != x else f"{100 * x:.0f}%"  # NaN: no GEMM plan for this cell


def summary(report: dict) -> list[dict]:
    rows = []
    cuda = str(report["args"].get("device", "cpu")).startswith("cuda")
    for name, r in report["workloads"].items():
        tr = r["train"]["rows"]["ours"]["ratio_paired"]
        inf = r["infer"]["rows"]["ours"]["ratio_paired"]
        target = CUDA_TARGET if cuda else TARGETS.get(name, GATED_TARGETS.get(name))
        if target is not None:
            rows.append(dict(check=f"{name} train step, ours / torch (paired)", target=f"<= {target:.2f}",
                             measured=f"{tr:.2f}", met=tr <= target))
        rows.append(dict(check=f"{name} inference, ours / torch (paired)", target="<= 1.00",
                         measured=f"{inf:.2f}", met=inf <= 1.0))
    if report.get("sampling"):
        cps = report["sampling"]["batch1"]["ours"]["chars_per_s"]
        rows.append(dict(check="sampling chars/s, batch 1, W2 size", target=f">= {SAMPLING_TARGET:,}",
                         measured=f"{cps:,.0f}", met=cps >= SAMPLING_TARGET))
        for cell, r in report["sampling"].get("cells", {}).items():
            if cell != "tanh":
                sp = r["batch1"]["speedup_paired"]
                rows.append(dict(check=f"sampling batch 1, {cell}: speed-up over torch.nn.{cell.upper()} in a loop",
                                 target=f">= {GATED_SAMPLING_SPEEDUP:.1f}x", measured=f"{sp:.1f}x",
                                 met=sp >= GATED_SAMPLING_SPEEDUP))
    return rows
