"""Does mixed precision learn? fp32, bf16 and fp16 autocast, our CharRNN (fused: cuDNN on CUDA; fast)
against torch's own module with the same weights, the same batches and Adam with clipping.

    python benchmarks/bench_amp.py cuda     # 3 x 1024, batch 128 x 128, 150 steps (a GPU)
    python benchmarks/bench_amp.py cpu      # a tiny smoke run

Prints, per cell, dtype and model, the loss/gradient norm at 4 points of the run and its time.
A learning check, not a speed benchmark (the first steps include cuDNN's warm-up).
"""
import sys, time
import torch
import torch.nn.functional as F
sys.path.insert(0, "benchmarks")
from bench_rnn import _PeerLM
from rnnplay import CharRNN
from rnnplay.data.corpus import load_corpus

dev = sys.argv[1] if len(sys.argv) > 1 else "cuda"
H, E, B, T, STEPS = (1024, 256, 128, 128, 150) if dev == "cuda" else (32, 16, 8, 16, 20)
data = load_corpus("play").data.long()
V = int(data.max()) + 1
g = torch.Generator().manual_seed(0)
starts = torch.randint(0, data.numel() - T - 1, (STEPS, B), generator=g)

def run(cell, impl, dtype, peer=False, rnn_fp32=False):
    torch.manual_seed(0)
    ours = CharRNN(V, H, 3, embed_size=E, cell=cell, impl=impl)
    m = (_PeerLM(ours) if peer else ours).to(dev)
    opt = torch.optim.Adam(m.parameters(), lr=2e-3)
    scaler = torch.amp.GradScaler(dev, enabled=dtype == torch.float16)
    losses = []
    t0 = time.perf_counter()
    for s in range(STEPS):
        idx = starts[s][:, None] + torch.arange(T + 1)
        xy = data[idx].to(dev)
        x, y = xy[:, :-1], xy[:, 1:]
        with torch.autocast(dev, dtype=dtype, enabled=dtype != torch.float32):
            logits, _ = m(x)
            loss = F.cross_entropy(logits.float().reshape(-1, V), y.reshape(-1))
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        gn = torch.nn.utils.clip_grad_norm_(m.parameters(), 5.0)
        scaler.step(opt); scaler.update()
        if s in (0, STEPS // 3, 2 * STEPS // 3, STEPS - 1):
            losses.append(f"{loss.item():.3f}/g{gn.item():.2g}")
    return " ".join(losses) + f"  {time.perf_counter() - t0:.1f}s"

def show(*a, **k):
    try:
        return run(*a, **k)
    except Exception as e:
        return "error: " + str(e).splitlines()[0][:100]

for cell in ("lstm", "gru"):
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        name = str(dtype).split(".")[-1]
        print(cell, name, "fused:", show(cell, "fused", dtype), flush=True)
        print(cell, name, "torch:", show(cell, "fused", dtype, peer=True), flush=True)
        if dtype != torch.float32:
            print(cell, name, "fast: ", show(cell, "fast", dtype), flush=True)
