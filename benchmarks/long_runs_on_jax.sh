#!/usr/bin/env bash
# Trains several configs one after another on one GPU machine that has JAX but no
# TensorFlow, each sized to a wall-clock budget, and packs the run dirs for the trip back:
#
#   bash benchmarks/long_runs_on_jax.sh <arrays.npz.xz> <budget_s> <pack_dir> <config>...
#
# Each config trains with `python -m trainer --arrays` under KERAS_BACKEND=jax for
# <budget_s> seconds, logging to runs/<name>.log. One at a time, because each run sizes
# its schedule by timing its own steps: a run sharing the GPU with runs that start or end
# meanwhile gets its timing wrong (2026-11-27: two runs stopped at epoch 53 of 81 and 76).
# The run dirs (without checkpoints) and logs go into
# <pack_dir>/runs.tar.gz.part-*, 15 MiB pieces; unpack them in the repo root with
#   cat <pack_dir>/runs.tar.gz.part-* | tar xz
# docs/scaling.md.
set -u
arrays=$1 budget=$2 pack=$3
shift 3
# The compilation cache lets each real run reuse what its timing probe compiled.
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1 \
  JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
mkdir -p runs "$pack"
names=()
for config in "$@"; do
  name=$(basename "$config" .cfg)
  names+=("runs/$name" "runs/$name.log")
  # The budget covers training; the timeout adds room for start-up and the final saves.
  timeout $((budget + 30)) python3 -m trainer --arrays="$arrays" \
    --flagfile="$config" --precision=auto --time_budget_s="$budget" \
    --steps_per_execution=32 > "runs/$name.log" 2>&1
done
for log in "${names[@]}"; do
  [[ $log == *.log ]] && { echo "== $log"; grep -E 'epochs fit|accuracy [0-9]|budget ran out|rror' "$log"; }
done
tar cz --exclude=checkpoints --exclude=backup "${names[@]}" \
  | split -b 15M - "$pack/runs.tar.gz.part-"
ls -l "$pack"
