#!/usr/bin/env bash
# One cell of the study's backbone table on a lent GPU, timed: a from-scratch ConvNeXt-T trained on the
# training classes of the staged CUB images at the study's schedule (224 px, 30 epochs of AdamW, batch 64:
# the defaults that pipelines/configs/experiments/backbones.yaml runs), its features extracted, then the
# cell's GZSL runs (the study's CramérGAN + noise + prototype, f-CLSWGAN, ridge) at the seed's budget.
# No pretrained weight is needed, so it runs on a machine without network. It measures what the README's
# "The study's table" needs to estimate the full table's time on a GPU: seconds per scratch epoch and per
# image extracted at 224 px, and seconds per GZSL run of each configuration.
#
# Stage the images first, beside the repository root, ignored by git (a carried path; 64 MiB in all, so
# ten of the twenty staged classes: about 48 MB):
#
#   mkdir -p .git/info && echo /.devdata/ >> .git/info/exclude
#   mkdir -p .devdata/CUB/images && cp -r ../shared/data/CUB/{CUB_200_2011,att_splits.mat,xlsa17_classes} .devdata/CUB/
#   for c in $(ls ../shared/data/CUB/images | head -10); do cp -r ../shared/data/CUB/images/$c .devdata/CUB/images/; done
#
# then, on the machine, from the repository root:  OUT=<folder> [SEEDS=1] bash bench/gpu_table.sh
# (about 6 min with SEEDS=1; every step has its own time limit and keeps its log in $OUT).
SEEDS=${SEEDS:-1}
LOGS=${OUT:-bench/results}/gpu-table
source "$(dirname "$0")/gpu_lib.sh"
export HF_HUB_OFFLINE=1
[ -d .devdata ] && export ZSGM_RESULTS=$PWD/$OUT/gpu-table-results

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -c "import sys, torch, timm; print(sys.version.split()[0], 'torch', torch.__version__, 'timm', timm.__version__, \
torch.cuda.get_device_name(), 'cpus', __import__('os').cpu_count())"
step 30 check $PY -m zsgm.pipelines.cli data check --data-root "${ZSGM_DATA:-data}"

EXP="$OUT/gpu-table-cell.yaml"
cat > "$EXP" <<EOF
title: "One cell of the backbone table on a GPU: ConvNeXt-T from scratch, CUB (staged classes)"
budget: seed
base: {selection: validation, device: cuda}
grid: {data: [cub]}
variants:
  - {name: "cramer+tricks", set: {model: cramer, classifier: prototype, noise: "on"}}
  - {name: "f-CLSWGAN", set: {model: wgan, classifier: softmax, noise: "off"}}
  - {name: "ridge", set: {model: ridge, classifier: prototype, noise: "off"}}
backbones: [{name: convnext_tiny, weights: [scratch]}]
extract: {tag: gpucell, engine: {batch_size: 256}, scratch: {train: {classes: train}}}
seeds: $SEEDS
resources: {num_cpus: 4, num_gpus: 1}
tables:
  - {name: gpu_table_cell, rows: [backbone, pretrained, variant], columns: [dataset], metrics: [U, S, H],
     gain: {field: variant, baseline: ridge}}
EOF
# the extraction cell first (scratch training + extraction; its log has the seconds per epoch and images/s)
step 330 extract $PY -m zsgm.pipelines.cli extract --backbone convnext_tiny --data cub --scratch --scratch-classes train \
    --device cuda --batch-size 256 --no-progress --out data/features/cub/convnext_tiny_scratch_gpucell.safetensors
# then its GZSL cells (the grid finds the features the step above built)
step 330 gzsl $PY -m zsgm.pipelines.cli tables --exp "$EXP" --device cuda --no-progress --no-plots \
    --out "$OUT/gpu-table-tables"
$PY - "$OUT" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
recs = [json.loads(l) for l in (out / "gpu-table-results" / "runs.jsonl").read_text().splitlines() if l.strip()] \
    if (out / "gpu-table-results" / "runs.jsonl").is_file() else []
rows = [{k: r.get(k) for k in ("variant", "model", "classifier", "seed", "U", "S", "H", "seconds", "status")} for r in recs]
(out / "gpu-table-cell.json").write_text(json.dumps(rows, indent=1))
print(json.dumps(rows, indent=1))
EOF
echo "total $(( $(date +%s) - T0 ))s"
