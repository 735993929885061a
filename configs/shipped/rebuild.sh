#!/usr/bin/env bash
# Rebuilds the shipped model in models/ from its four members, in one command:
#
#   bash configs/shipped/rebuild.sh
#
# Each member trains with its flagfile here unless runs/<member> already holds a finished
# run (an interrupted one resumes); the three long members train for hours on a CPU, or
# in minutes on a GPU with python -m trainer --arrays (docs/scaling.md): put those run
# dirs into runs/ first and they are used as they are. Then trainer.ensemble averages the
# four over each face and its mirror image, python -m export converts and measures the
# result, and python -m export.ship copies the int8 model and its sidecar into models/.
set -euo pipefail
cd "$(dirname "$0")/../.."
members=(fernet_sgd fernet_long fernet_long_erase fernet_long_erase2)
for member in "${members[@]}"; do
  python -m trainer --flagfile="configs/shipped/${member}.cfg"
done
ensemble=runs/fernet_selected4
if [[ ! -f "${ensemble}/inference.keras" ]]; then
  python -m trainer.ensemble --flip_tta --run_dir="${ensemble}" \
      --members="$(printf 'runs/%s,' "${members[@]}" | sed 's/,$//')"
fi
python -m export --run_dir="${ensemble}" --out_dir=exports/fernet_selected4 --overwrite
python -m export.ship --export_dir=exports/fernet_selected4 --to=models/accurate
