#!/usr/bin/env bash
# The cuda target's check on a GPU machine, in one run (about 5 minutes on an H200):
#   1. install the wheels carried in parts to /tmp/stage (bench/cuda_stage.sh), if any;
#   2. the environment: GPU, driver, versions, whether onnxruntime-genai and bitsandbytes see CUDA;
#   3. the tiny space end to end on cuda (spaces/tiny-cuda.yaml): LoRA and QLoRA trained on the
#      GPU, merged, exported for the cuda EP at fp16, bf16 and int4, measured with
#      onnxruntime-genai-cuda; prints the trials table;
#   4. a Phi-3-mini-shaped model with random weights built on the GPU (bench/phi3_shaped.py),
#      exported at fp16 and int4, measured with `autotune bench`: decode time, GPU memory and
#      effective bandwidth against the GPU's peak.
# Run from the repository root. Results go to $OUT (default /tmp/cuda-check). To try the script
# on a CPU first (steps 3 and 4 on small stand-ins):
#   OMP_NUM_THREADS=1 TARGET=cpu SPACE=spaces/tiny.yaml STUDY_ARGS="--trials 2" PHI3_ARGS="--target cpu
#   --device cpu --layers 1 --hidden-size 256 --intermediate-size 512 --vocab-size 4000 --heads 8
#   --repeats 3" bash bench/cuda_device_run.sh
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/cuda-check}
TARGET=${TARGET:-cuda}
SPACE=${SPACE:-spaces/tiny-cuda.yaml}
case $SPACE in /*) ;; *) SPACE=$REPO/$SPACE ;; esac
mkdir -p "$OUT" /tmp/cuda-run
log() { echo "== $(date +%T) $*"; }
start=$(date +%s)

if compgen -G "/tmp/stage/p*" >/dev/null && [ ! -f /tmp/site/.installed ]; then
  log "unpacking the carried wheels"
  mkdir -p /tmp/stage/wheels
  cat /tmp/stage/p* | tar xf - -C /tmp/stage/wheels || exit 1
  python3 "$REPO/bench/lib/cuda_device_setup.py" /tmp/stage/wheels /tmp/site /tmp/autotune-src \
    || exit 1
  touch /tmp/site/.installed
elif ! (cd /tmp && python3 -c "import autotune.search") 2>/dev/null; then
  python3 "$REPO/bench/lib/cuda_device_setup.py" /tmp/none /tmp/site /tmp/autotune-src || exit 1
fi
export PYTHONPATH=/tmp/autotune-src:/tmp/site${PYTHONPATH:+:$PYTHONPATH}
export ORT_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
# The CUDA libraries (cuBLAS, cuDNN, ...) of the torch installation, for onnxruntime-gpu.
nvlibs=$(python3 "$REPO/bench/lib/cuda_device_setup.py" --library-path)
export LD_LIBRARY_PATH=$nvlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# Run away from the checkout: its autotune/ folder alone is not the package. The bench package is
# linked in (`python -m bench.<name>` finds it in the working folder); results go to $OUT.
cd /tmp/cuda-run || exit 1
ln -sfn "$REPO/bench" bench
export BENCH_RESULTS=$OUT

log "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 "$REPO/bench/lib/cuda_device_setup.py" --report

log "$(basename "$SPACE") end to end on $TARGET"
# shellcheck disable=SC2086  # STUDY_ARGS is a list of flags
timeout 240 python3 -m autotune --space "$SPACE" --target "$TARGET" \
  --out "$OUT/study" --cache /tmp/cuda-cache --quiet ${STUDY_ARGS:-}
echo "exit code $?"
python3 "$REPO/bench/lib/cuda_device_setup.py" --trials "$OUT/study/trials.csv"
tail -n 4 "$OUT"/study/trials/*/error.log 2>/dev/null | tail -n 30

log "Phi-3-mini-shaped model, random weights, fp16 and int4 ($(($(date +%s) - start)) s so far)"
# shellcheck disable=SC2086  # PHI3_ARGS is a list of flags
timeout 210 python3 -m bench.phi3_shaped --out /tmp/phi3-shaped ${PHI3_ARGS:-}
echo "exit code $?"
cp /tmp/phi3-shaped/*.json "$OUT/" 2>/dev/null
log "done in $(($(date +%s) - start)) s"
