#!/usr/bin/env bash
# The first run on a GPU machine: the checks that only a GPU can make, in at most ~8 minutes
# (the steps' limits add up to 480 s, plus 120 s if resmo must be installed first).
#
#     bash benchmarks/gpu_first_run.sh            # results in $OUT, else benchmarks/results/gpu_first_run/<date>/
#     bash benchmarks/gpu_first_run.sh --dry      # print the steps and their limits; run and write nothing
#
# For a fresh copy of the repository on a machine with one CUDA GPU and no internet: resmo is
# installed from the copy if it is not importable (`pip install -e .`, without dependencies:
# torch and the rest must be there). Each step has its own time limit and writes its log (and
# JSON, where it makes one) into the results folder as soon as it ends, so a hang or a crash
# loses only its own step; `status.tsv` lists every step with its exit code and seconds.
# Steps:
#   env          GPU, driver, torch, resmo commit
#   tests        the device-sensitive tests, on CUDA (mixed precision, host syncs, CUDA RNG
#                resume, TF32 / cuDNN settings, the batched fast path, pipeline choice,
#                kept DataLoader workers)
#   lars_ops     ops and CUDA kernels per LARS step and per DINO clipping (benchmarks/lars_ops.py)
#   sync_debug   host syncs per step under torch.cuda.set_sync_debug_mode (cuda_sync_debug.py)
#   bf16_<m>     one short bf16-mixed run of every method with batched views (ResNet-18)
#   fp16_mocov3  one short 16-mixed run (gradient scaler)
#   throughput   benchmarks/gpu_throughput.py: model only, batched, torchvision (8 workers)
set -u
cd "$(dirname "$0")/.."

DRY=0
if [ "${1:-}" = "--dry" ]; then DRY=1; fi
RESULTS=${OUT:-benchmarks/results/gpu_first_run/$(date -u +%Y-%m-%d)}
STATUS="$RESULTS/status.tsv"
if [ "$DRY" = 0 ]; then
    mkdir -p "$RESULTS"
    [ -f "$STATUS" ] || printf 'step\texit_code\tseconds\tlimit_s\n' > "$STATUS"
fi
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python}

# step NAME LIMIT_SECONDS COMMAND...: run COMMAND under a time limit, log into $RESULTS/NAME.log
step() {
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s): $*"
    if [ "$DRY" = 1 ]; then return 0; fi
    local start=$SECONDS
    timeout -k 10 "$limit" "$@" > "$RESULTS/$name.log" 2>&1
    local code=$?
    printf '%s\t%s\t%s\t%s\n' "$name" "$code" "$((SECONDS - start))" "$limit" >> "$STATUS"
    echo "   exit $code after $((SECONDS - start))s (124: time limit)"
    tail -n 3 "$RESULTS/$name.log" | sed 's/^/   | /'
}

if [ "$DRY" = 0 ] && ! "$PY" -c "import resmo" 2>/dev/null; then
    step install 120 "$PY" -m pip install --no-deps --no-build-isolation -e .
fi

step env 10 bash -c "nvidia-smi; $PY -c 'import torch, resmo; print(torch.__version__, torch.version.cuda, \
torch.cuda.get_device_name(0), resmo.__version__)'; git rev-parse HEAD; git status --short | head -20"

# the tests that behave differently on a GPU; pytest's own results as JUnit XML beside the log
step tests 100 "$PY" -m pytest -q -p no:cacheprovider --junitxml="$RESULTS/tests.xml" \
    tests/methods/test_device_precision.py tests/train/test_host_syncs.py \
    tests/train/test_cuda_rng_resume.py tests/train/test_gpu_settings.py tests/train/test_fast_path.py \
    tests/data/test_pipeline_choice.py tests/data/test_persistent_workers.py

step lars_ops 40 "$PY" -m benchmarks.lars_ops --device cuda --out "$RESULTS/lars_ops_cuda.json"

step sync_debug 60 "$PY" -m benchmarks.cuda_sync_debug --device cuda --out "$RESULTS/cuda_sync_debug.json"

# one short run of each method: ResNet-18, bf16-mixed, batched views (data.pipeline auto on CUDA);
# the run folders (checkpoints, backbones) stay in a temporary folder, their summaries are kept
RUNS=$( [ "$DRY" = 1 ] && echo /tmp/RUNS || mktemp -d )
RUN_ARGS=(--backbone resnet18 --epochs 1 --batch-size 256 --seed 0 data.synthetic.num_samples=2048
          data.synthetic.val_num_samples=512 data.image_size=32 monitor.knn_max_train=512
          train.progress_bar=false train.log_every_n_steps=2)
run_method() {  # run_method NAME METHOD PRECISION
    step "$1" 30 "$PY" -m resmo.cli pretrain --method "$2" --precision "$3" --out "$RUNS/$1" "${RUN_ARGS[@]}"
    if [ "$DRY" = 0 ]; then
        mkdir -p "$RESULTS/runs/$1"
        cp "$RUNS/$1/summary.json" "$RUNS/$1/config.yaml" "$RUNS/$1/metrics.csv" "$RESULTS/runs/$1/" 2>/dev/null
    fi
}
for method in mocov2 mocov3 byol dino densecl; do
    run_method "bf16_$method" "$method" bf16-mixed
done
run_method fp16_mocov3 mocov3 16-mixed
[ "$DRY" = 1 ] || rm -rf "$RUNS"

step throughput 90 "$PY" -m benchmarks.gpu_throughput --steps 20 --warmup 5 --torchvision-workers 8 \
    --out "$RESULTS/gpu_throughput.json"

echo "results in $RESULTS"
[ "$DRY" = 1 ] || cat "$STATUS"
