#!/usr/bin/env bash
# One GPU window, start to finish in under 10 minutes on an NVIDIA H200 that has JAX but
# no TensorFlow:
#
#   bash benchmarks/gpu_window.sh <fer5_ck arrays> <out_dir> [tiny]
#
# <fer5_ck arrays>: python -m trainer.dump_arrays --dataset=fer5_ck (all three splits,
# 54 MiB; fer5's runs take its FER-2013 faces). With the repo they exceed what one call of
# our GPU machines carries (64 MiB), so send them in two pieces while the machine stays
# warm (ignored files stay there between calls): `split -b 28M <arrays> <arrays>.part-`,
# carry `<arrays>.part-aa` in a first call (command `true`) and `<arrays>.part-ab` in the
# call that runs this script, which joins `<arrays>.part-*` where <arrays> is absent.
#
# 1. Alone on the GPU: benchmarks/training_throughput.py times MEMBERSxBATCH pairs of our
#    recipe -> <out_dir>/throughput.json (written after every pair).
# 2. Then side by side, each in its own program: benchmarks/configs/gpu_members8_b256.cfg
#    (8 members at once) and gpu_single_b64.cfg (one, batch 64), 30 epochs each, for the
#    accuracy per epoch; the study's two runs (configs/study/) to their end, in float32.
# 3. The run dirs (in $RUNS, default runs/window) without their model files (the 8
#    members' alone are ~150 MiB, more than a device call brings back) and the logs ->
#    <out_dir>/runs.tar.gz.
#
# Keras, absent there, travels as wheels in .whl/ (keras, namex, optree; the device tool's
# README says how to download them), which the script installs where Keras is missing.
# `tiny` shrinks every model and epoch to seconds on a CPU (tests/test_gpu_window.py).
# Back here: python benchmarks/gpu_report.py --window=<out_dir as it came back> writes
# BENCHMARKS.md's GPU section (throughput, accuracy per epoch, the study's two runs).
set -u
arrays=$1 out=$2 size=${3:-full}
python=${PYTHON:-python3}
# The compilation cache lets a program reuse what another compiled.
export KERAS_BACKEND=${KERAS_BACKEND:-jax} XLA_PYTHON_CLIENT_PREALLOCATE=false \
  PYTHONUNBUFFERED=1 PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} \
  JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
if ! "$python" -c 'import keras' 2> /dev/null; then  # carried as wheels (device README)
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
if [[ ! -f $arrays ]]; then
  cat "$arrays".part-* > "$arrays" || { echo "error: neither $arrays nor its pieces"; exit 1; }
fi
runs=${RUNS:-runs/window}
mkdir -p "$out" "$runs"
throughput_s=200 side_by_side_s=320
pairs=1x64,1x256,4x256,8x256,16x256 timed=(--steps=60 --repeats=3)
small_model=() short_run=() members=()
if [[ $size == tiny ]]; then
  throughput_s=300 side_by_side_s=300
  pairs=1x8,2x8 timed=(--steps=2 --repeats=1)
  small_model=(--filters=4,8) short_run=(--batch_size=8 --steps_per_epoch=2 --epochs=1)
  members=(--members_at_once=2)  # 8 members compile for most of a minute on a CPU
fi

echo "== throughput ($pairs)"
timeout $throughput_s "$python" benchmarks/training_throughput.py --arrays="$arrays" \
  --flagfile=configs/fernet.cfg --precision=auto --steps_per_execution=32 \
  --configs=$pairs "${timed[@]}" --out="$out/throughput.json" "${small_model[@]}" \
  2>&1 | tee "$out/throughput.log"

echo "== side by side: members, single, the study"
names=()
train() {  # train <config> <flags>...: one program in the background
  local name
  name=$(basename "$1" .cfg)
  names+=("$name" "$name.log")
  timeout $side_by_side_s "$python" -m trainer --arrays="$arrays" \
    --flagfile="$1" --run_dir="$runs/$name" --steps_per_execution=32 "${@:2}" \
    "${small_model[@]}" "${short_run[@]}" > "$runs/$name.log" 2>&1 &
}
train benchmarks/configs/gpu_members8_b256.cfg --precision=auto "${members[@]}"
train benchmarks/configs/gpu_single_b64.cfg --precision=auto
train configs/study/seed_baseline.cfg --precision=float32
train configs/study/seed_improved.cfg --precision=float32
wait
for log in "${names[@]}"; do
  [[ $log == *.log ]] && { echo "== $log"; grep -E 'accuracy [0-9]|rror' "$runs/$log"; }
done
tar cz -C "$runs" --exclude=backup --exclude='*.keras' "${names[@]}" > "$out/runs.tar.gz"
ls -l "$out"
