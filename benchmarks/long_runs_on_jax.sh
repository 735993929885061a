#!/usr/bin/env bash
# Trains several configs at once on one GPU machine that has JAX but no TensorFlow, each
# sized to a wall-clock budget, and packs the finished run dirs for the trip back:
#
#   bash benchmarks/long_runs_on_jax.sh <arrays.npz.xz> <budget_s> <pack_dir> <config>...
#
# Each config trains with `python -m trainer.array_fit` under KERAS_BACKEND=jax, logging
# to runs/<name>.log. The run dirs (without checkpoints) and logs go into
# <pack_dir>/runs.tar.gz.part-*, 15 MiB pieces; unpack them in the repo root with
#   cat <pack_dir>/runs.tar.gz.part-* | tar xz
# README, "Training on a GPU machine without TensorFlow".
set -u
arrays=$1 budget=$2 pack=$3
shift 3
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
mkdir -p runs "$pack"
names=()
for config in "$@"; do
  name=$(basename "$config" .cfg)
  names+=("runs/$name" "runs/$name.log")
  # The budget covers training; the timeout adds room for start-up and the final saves.
  timeout $((budget + 60)) python3 -m trainer.array_fit --arrays="$arrays" \
    --flagfile="$config" --precision=auto --time_budget_s="$budget" \
    > "runs/$name.log" 2>&1 &
done
wait
for log in "${names[@]}"; do
  [[ $log == *.log ]] && { echo "== $log"; grep -E 'epochs fit|accuracy [0-9]|budget ran out|rror' "$log"; }
done
tar cz --exclude=checkpoints --exclude=backup "${names[@]}" \
  | split -b 15M - "$pack/runs.tar.gz.part-"
ls -l "$pack"
