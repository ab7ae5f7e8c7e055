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
# then run, on the machine, from the repository root:  OUT=<folder> [PLAN=short|full|more] bash bench/gpu.sh
# Every step has its own time limit and writes its own result files (rewritten after each
# section), so a step cut short keeps what it measured; the most important step goes first.
source "$(dirname "$0")/gpu_lib.sh"

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
$PY -c "import sys, torch, timm; print(sys.version.split()[0], 'torch', torch.__version__, 'timm', timm.__version__, \
torch.cuda.get_device_name(), 'cpus', __import__('os').cpu_count())"

# Plans, sized from the H200 runs of 2026-11-27 (tests 25 s; one headline repeat 195 s with start-up:
# the reference loop ~28 s per seed-budget epoch, zsgm ~4 s; each plan fits one 10-minute command
# and a 15-minute lease, machine start included):
#   PLAN=short (~5 min): the CUDA tests, the headline pair once, extraction once.
#   PLAN=full  (~8 min, steps capped at 75 + 390 + 95 s): the CUDA tests, the headline pair twice,
#                extraction twice.
# Extraction: three backbones on 4096 real photos (the staged ones cycled), PIL in the workers
# against nvJPEG on the device, with and without its decode-ahead thread.
#   PLAN=more  (~10 min, a second lease): the classifier's CUDA graphs against eager steps, nvJPEG's
#                pixels against PIL's, time to result at the model's 30 epochs, the demo on CUDA,
#                the wgan + softmax pair once.
PLAN=${PLAN:-full}
# zsgm scores every 5 epochs (its default cadence) and, against the same reference runs, every epoch
# as the reference does: the target compares H with the reference's best epoch on test
HEAD=(--device cuda --budget seed --models cramer --classifiers prototype --epochs 5 --eval-every 5
      --also-eval-every 1)

if [ "$PLAN" = short ] || [ "$PLAN" = full ]; then
    # the GPU path's tests: CUDA-graph capture of every family and of the classifier step, replay =
    # eager, a learning run, nvJPEG against PIL, extraction decoding on the GPU
    step 75 tests $PY -m pytest -q -s -p no:cacheprovider tests/test_cuda.py
fi
case "$PLAN" in
short)
    step 200 cramer $PY -m zsgm.pipelines.cli bench "${HEAD[@]}" --repeats 1 --ttr-repeats 0 \
        --sections pairs --out "$OUT" --tag cuda-cramer-prototype
    step 100 extraction $PY -m zsgm.pipelines.cli bench --device cuda --budget seed --repeats 1 --sections extraction \
        --out "$OUT" --tag cuda-extraction ;;
full)
    step 390 cramer $PY -m zsgm.pipelines.cli bench "${HEAD[@]}" --repeats 2 --ttr-repeats 0 \
        --sections pairs --out "$OUT" --tag cuda-cramer-prototype
    step 95 extraction $PY -m zsgm.pipelines.cli bench --device cuda --budget seed --repeats 2 --sections extraction \
        --out "$OUT" --tag cuda-extraction ;;
more)
    # the prototype classifier's fit on a CUB-sized problem: graphs (auto) against eager, batch 1024 and 256
    step 140 classifier $PY lab/experiments/prototype_batch.py --device cuda 1024,5e-4,0 1024,5e-4,0 \
        1024,5e-4,0,off 256,5e-4,0 256,5e-4,0,off
    cp /tmp/zsgm-classifier.log "$OUT/cuda-classifier-graphs.log"
    # nvJPEG + the batched transform against PIL + timm's, on the staged CUB photos
    step 40 pixels $PY lab/experiments/gpu_transform_vs_pil.py --device cuda --images 256
    cp /tmp/zsgm-pixels.log "$OUT/cuda-transform-vs-pil.log"
    step 170 ttr $PY -m zsgm.pipelines.cli bench "${HEAD[@]}" --ttr-repeats 1 --ttr-epochs 30 \
        --sections ttr --out "$OUT" --tag cuda-cramer-prototype-ttr
    step 50 demo $PY -m zsgm.pipelines.cli bench --device cuda --repeats 2 --sections demo --out "$OUT" --tag cuda-demo
    step 180 wgan $PY -m zsgm.pipelines.cli bench --device cuda --budget seed --models wgan --classifiers softmax \
        --epochs 5 --eval-every 5 --repeats 1 --ttr-repeats 0 --sections pairs --no-speed-options \
        --out "$OUT" --tag cuda-wgan-softmax ;;
*)
    echo "unknown PLAN '$PLAN': use short, full or more" >&2
    exit 2 ;;
esac
echo "== done after $(( $(date +%s) - T0 ))s"
