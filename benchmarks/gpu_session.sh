#!/usr/bin/env bash
# The checks of one lent-GPU session (issue 14), in one command, each step bounded in time:
#   bash benchmarks/gpu_session.sh            # outputs under $OUT (default /tmp/rnnplay-gpu)
# 1. bench_rnn on CUDA: every cell and execution path against the torch module on cuDNN (W2, W3)
# 2. torchrun with NCCL (one process per GPU there is), its checkpoint resumed on one process,
#    and one process more than there are GPUs (refused in one line)
# 3. train with --precision fp32, bf16, fp16 on the GPU (chars/s and final loss of each)
# 4. the CUDA tests (those that skip without a GPU, and the suites that exercise the GPU paths)
# Wheels in .whl/ (textual and its needs, for the app's tests) are installed first when present.
set -u
OUT=${OUT:-/tmp/rnnplay-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} RNNPLAY_RUNS_DB=off
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
# the project itself, as README installs it (rnnplay.corpora maps to ./corpora), offline
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >/dev/null 2>&1 \
  || echo "pip install -e . failed here"
python3 -c "from rnnplay import corpora" 2>/dev/null || { echo "rnnplay.corpora: linked"; ln -s ../corpora rnnplay/corpora; }
W=$(mktemp -d)
step() { echo; echo "=== $1 ($(date -u +%T))"; }
step env
nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'gpus', torch.cuda.device_count())"
NGPU=$(python3 -c "import torch; print(torch.cuda.device_count())")

step "bench_rnn --device cuda"
timeout ${BENCH_S:-200} python3 benchmarks/bench_rnn.py --device cuda --workloads W2,W3 --cells all --json \
  > "$OUT/bench_rnn_cuda.json" 2> "$OUT/bench_rnn_cuda.err"; echo "rc=$?"; tail -3 "$OUT/bench_rnn_cuda.err"
python3 - "$OUT/bench_rnn_cuda.json" <<'PY' > "$OUT/bench_rnn_cuda.md" 2>&1
import json, sys; sys.path.insert(0, "benchmarks")
from _rnn_report import markdown
print(markdown(json.load(open(sys.argv[1]))))
PY
cat "$OUT/bench_rnn_cuda.md" | head -80

TRAIN="python3 -m rnnplay train --device cuda --steps 300 --eval-every 100 --sample-every 0 --json --no-record"
step "torchrun NCCL, $NGPU process(es)"
timeout 120 torchrun --standalone --nproc-per-node "$NGPU" -m rnnplay train --device cuda --steps 200 --eval-every 100 \
  --sample-every 0 --json --no-record --out "$W/d.pt" > "$W/d.out" 2> "$W/d.err"; echo "rc=$?"; tail -2 "$W/d.out"; grep -v "^\s*$" "$W/d.err" | tail -4
step "resume the distributed checkpoint on one process"
timeout 90 $TRAIN --resume "$W/d.pt" > "$W/r.out" 2> "$W/r.err"; echo "rc=$?"; tail -1 "$W/r.out"; tail -3 "$W/r.err"
step "one process more than GPUs: refused"
timeout 90 torchrun --standalone --nproc-per-node $((NGPU + 1)) -m rnnplay train --device cuda --steps 20 --no-record \
  --out "$W/x.pt" > "$W/x.out" 2> "$W/x.err"; echo "rc=$?"; grep -v "^\s*$" "$W/x.err" | grep -i -m5 "gpu\|error\|rnnplay"

for p in fp32 bf16 fp16; do
  step "train --precision $p"
  timeout 90 $TRAIN --precision $p --out "$W/p_$p.pt" > "$W/p_$p.out" 2> "$W/p_$p.err"; echo "rc=$?"
  tail -1 "$W/p_$p.out"; tail -2 "$W/p_$p.err"
done

step "gpu line"
python3 -c "
import torch; from rnnplay.gpu import gpu_line
x = torch.randn(4096, 4096, device='cuda'); y = x @ x; torch.cuda.synchronize(); print(gpu_line('cuda:0'))"

step "CUDA tests"
timeout ${TESTS_S:-180} python3 -m pytest -q -rfE --tb=short -p no:cacheprovider -n 14 tests/test_fused.py tests/test_precision.py \
  tests/test_gpu_view.py tests/test_checkpoint.py tests/tui/test_train_tab.py tests/test_gated_cells.py \
  tests/test_model_vs_torch.py tests/test_distributed.py ${TESTS_EXTRA:-} > "$OUT/tests_cuda.txt" 2>&1
tail -25 "$OUT/tests_cuda.txt"
echo; echo "=== done ($(date -u +%T))"
