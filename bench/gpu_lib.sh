# Shared by the GPU scripts (bench/gpu.sh, bench/gpu_table.sh): the environment of a checkout run
# without installing it, and step(), which runs one command under its own time limit and keeps its log.
set -u
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
[ -d .devdata ] && export ZSGM_DATA=$PWD/.devdata
PY=${PY:-python3}
T0=$(date +%s)
LOGS=${LOGS:-/tmp/zsgm}   # step logs: $LOGS-<name>.log

step() {  # step <seconds> <name> <command...>
    local limit=$1 name=$2
    shift 2
    echo "== $name (limit ${limit}s, at $(( $(date +%s) - T0 ))s)"
    timeout "$limit" "$@" > "$LOGS-$name.log" 2>&1
    local rc=$?
    tail -n 60 "$LOGS-$name.log"
    echo "== $name rc=$rc after $(( $(date +%s) - T0 ))s"
    return $rc
}
