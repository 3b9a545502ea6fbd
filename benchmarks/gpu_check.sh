#!/usr/bin/env bash
# The CUDA checks in one go, for a GPU machine (CI has none): the CUDA tests, training
# throughput on the GPU and on the same machine's CPU, and short `nas search --device cuda` runs.
#
#     bash benchmarks/gpu_check.sh [OUT_DIR]     # logs and journals land in OUT_DIR
#
# Each step has its own time limit and a failing step does not stop the next one.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu-check-out}}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    echo "== $name"
    local start=$SECONDS
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$out/$name.log"
    echo "== $name: rc $rc in $((SECONDS - start)) s"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
'bf16', torch.cuda.is_bf16_supported())"

step cuda-tests 180 "$py" -m pytest tests/test_cuda.py -v -p no:cacheprovider
step throughput-gpu 90 "$py" -m pytest benchmarks/bench_throughput.py -q -p no:cacheprovider
step throughput-cpu 90 env CUDA_VISIBLE_DEVICES= "$py" -m pytest benchmarks/bench_throughput.py \
    -q -p no:cacheprovider
# Issue 25: batched groups of 1, 4, 16 members against training them one after another.
step group-throughput-gpu 240 env NAS_BENCH_GROUPS=1 "$py" -m pytest benchmarks/bench_throughput.py \
    -k "group and cuda" -q -p no:cacheprovider
# Issue 25: trials packed several per GPU by memory against one at a time, the same budget.
step pack-auto 150 "$py" -m nas search --data mnist1d --budget 90s --device cuda \
    --workers-per-device auto --db "$out/pack-auto.db" --no-progress --no-baselines
step pack-one 150 "$py" -m nas search --data mnist1d --budget 90s --device cuda \
    --workers 1 --db "$out/pack-one.db" --no-progress --no-baselines
step pack-compare 30 "$py" -c "
import sys
from nas.journal import JournalView
a, b = (JournalView.load(sys.argv[i]) for i in (1, 2))
n = lambda v: sum(r.result is not None for r in v.records)
oom = sum('out of memory' in (r.result.error or '') for r in a.records if r.result)
print('trials packed', n(a), 'one at a time', n(b), 'ratio', round(n(a) / max(1, n(b)), 2),
      'out-of-memory failures', oom)
" "$out/pack-auto.db" "$out/pack-one.db"
nvidia-smi --query-gpu=memory.used --format=csv,noheader
step search-digits 100 "$py" -m nas search --data digits --budget 45s --device cuda \
    --db "$out/digits-cuda.db" --no-progress
step search-mnist1d-local 90 "$py" -m nas search --data mnist1d --budget 30s --device cuda \
    --executor local --db "$out/mnist1d-cuda.db" --no-progress
step show 30 "$py" -m nas show "$out/digits-cuda.db"
