#!/usr/bin/env bash
# `zsgm bench` on a lent GPU machine, as one prepared script that fits a short lease.
#
# The machine has its own python3 with torch and timm, no network, and none of ../shared:
# stage real CUB attributes and 512 real CUB photos first, beside the repository root,
# ignored by git (they travel as a carried path):
#
#   mkdir -p .git/info && echo /.devdata/ >> .git/info/exclude
#   mkdir -p .devdata/CUB && cp ../shared/data/CUB/att_splits.mat .devdata/CUB/
#   (any 512 images of ../shared/data/CUB/images/<class>/ copied to .devdata/CUB/images/<class>/)
#
# then run, on the machine, from the repository root:  OUT=<folder> [PLAN=short] bash bench/gpu.sh
# Every step has its own time limit and writes its own result files (rewritten after each
# section), so a step cut short keeps what it measured; the most important step goes first.
set -u
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
[ -d .devdata ] && export ZSGM_DATA=$PWD/.devdata
PY=${PY:-python3}
T0=$(date +%s)

step() {  # step <seconds> <name> <command...>
    local limit=$1 name=$2
    shift 2
    echo "== $name (limit ${limit}s, at $(( $(date +%s) - T0 ))s)"
    timeout "$limit" "$@" > "/tmp/zsgm-$name.log" 2>&1
    local rc=$?
    tail -n 60 "/tmp/zsgm-$name.log"
    echo "== $name rc=$rc after $(( $(date +%s) - T0 ))s"
    return $rc
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
$PY -c "import sys, torch, timm; print(sys.version.split()[0], 'torch', torch.__version__, 'timm', timm.__version__, \
torch.cuda.get_device_name(), 'cpus', __import__('os').cpu_count())"

# PLAN=short (about 5 minutes): the CUDA tests, then the headline pair once with engine throughput.
# PLAN=full (about 10 minutes): adds repeats, time to result, the demo, extraction and wgan + softmax.
PLAN=${PLAN:-full}

# 1. the GPU path's tests (CUDA-graph capture of every family, replay = eager, a learning run):
step 100 tests $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py

if [ "$PLAN" = short ]; then
    step 200 cramer $PY -m pipelines.cli bench --device cuda --budget seed --models cramer --classifiers prototype \
        --epochs 5 --eval-every 5 --repeats 1 --ttr-repeats 0 --sections pairs,throughput --out "$OUT" \
        --tag cuda-cramer-prototype
    echo "== done after $(( $(date +%s) - T0 ))s"
    exit 0
fi

# 2. the headline: cramer + prototype at the seed budget vs the field's loop, time to result,
#    engine throughput (CUDA graphs, eager, bf16, torch.compile), the demo end to end
step 300 cramer $PY -m pipelines.cli bench --device cuda --budget seed --models cramer --classifiers prototype \
    --epochs 5 --eval-every 5 --repeats 2 --ttr-repeats 1 --sections pairs,throughput,demo --out "$OUT" \
    --tag cuda-cramer-prototype

# 3. extraction: pipeline vs bare forward for three backbones on real CUB photos, and with fast JPEG decode
step 80 extraction $PY -m pipelines.cli bench --device cuda --budget seed --repeats 2 --sections extraction \
    --out "$OUT" --tag cuda-extraction
step 50 fastdecode $PY -m extract.bench --device cuda --images 512 --batch-size 64 --fast-decode --json
cp /tmp/zsgm-fastdecode.log "$OUT/cuda-extraction-fast-decode.log"

# 4. the other pair of the grid, once
step 120 wgan $PY -m pipelines.cli bench --device cuda --budget seed --models wgan --classifiers softmax \
    --epochs 5 --eval-every 5 --repeats 1 --ttr-repeats 0 --sections pairs --no-gpu-options \
    --out "$OUT" --tag cuda-wgan-softmax
echo "== done after $(( $(date +%s) - T0 ))s"
