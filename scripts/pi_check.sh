#!/usr/bin/env bash
# Installs the light set in an emulated Raspberry Pi OS (Debian 12 arm64, Python 3.11, qemu-user)
# and runs `edge classify` and `edge bench` on the shipped model there and here (x86), then checks
# that the arm64 classifications equal the x86 ones. Needs root (the emulator uses chroot).
#   scripts/pi_check.sh [OUT_DIR]     (default docs/pi_check)
# Emulated timings are not Raspberry Pi timings: qemu translates every instruction.
set -euo pipefail
cd "$(dirname "$0")/.."
PI_TOOL=${PI_TOOL:-../shared/tools/run-on-pi.sh}
OUT=${1:-docs/pi_check}
FACES=fer_tfds/fer_emotions/dummy_data/fer2013/test
mkdir -p "$OUT"

# qemu 10 from bookworm-backports registers itself through systemd's binfmt.d, which the
# update-binfmts call in run-on-pi.sh does not know ("qemu-aarch64 not in database"):
# register it directly, installing qemu first (the tool's first run) if needed.
register_qemu() {
  local conf=/usr/lib/binfmt.d/qemu-aarch64.conf
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  if [ -f $conf ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    cat $conf > /proc/sys/fs/binfmt_misc/register
  fi
}
register_qemu
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || "$PI_TOOL" "$PWD" true || register_qemu

FRAMES=.pi_check_frames   # photos with faces to find, inside the checkout
rm -rf "$FRAMES"; mkdir -p "$FRAMES"
python3 - "$FRAMES" <<'PY'
# Matplotlib's sample portrait, upright and rolled, on a plain 640x480 frame.
import sys, cv2, matplotlib, numpy as np
head = cv2.imread(matplotlib.get_data_path() + '/sample_data/grace_hopper.jpg')[90:390, 116:416]
for degrees in (0, 20, -20):
  frame = np.full((480, 640, 3), 100, np.uint8)
  frame[100:380, 180:460] = cv2.resize(head, (280, 280), interpolation=cv2.INTER_AREA)
  turn = cv2.getRotationMatrix2D((320, 240), degrees, 1.0)
  frame = cv2.warpAffine(frame, turn, (640, 480), borderValue=(100, 100, 100))
  cv2.imwrite(f'{sys.argv[1]}/portrait_{degrees:+d}.png', frame)
PY

echo "== x86: $(uname -m), $(python3 --version)"
python3 -m edge classify --no-detect "$FACES" > "$OUT/classify_x86.jsonl"
python3 -m edge classify "$FRAMES" > "$OUT/detect_x86.jsonl"
python3 -m edge bench --runs 100 > "$OUT/bench_x86.json"

echo "== emulated Raspberry Pi (arm64)"
PI_OUT=.pi_check_out   # inside the checkout, which the emulator mounts as /project
rm -rf "$PI_OUT"; mkdir -p "$PI_OUT"
PI_RW=1 "$PI_TOOL" "$PWD" "
  set -e
  uname -m; python3 --version
  pip install -q --no-deps . 2>&1 | grep -v 'running as root' || true
  cd /tmp   # run the installed package and its installed models, not the checkout
  python3 -m edge classify --no-detect /project/$FACES > /project/$PI_OUT/classify_arm64.jsonl
  python3 -m edge classify /project/$FRAMES > /project/$PI_OUT/detect_arm64.jsonl
  python3 -m edge bench --runs 20 > /project/$PI_OUT/bench_arm64.json
  python3 -c 'import sys; assert \"tensorflow\" not in sys.modules'
  pip list 2>/dev/null | grep -iE 'litert|opencv|numpy|pillow|tensorflow|fer-edge'
" | tee "$OUT/pi_environment.txt"
mv "$PI_OUT"/* "$OUT"/ && rm -rf "$PI_OUT" "$FRAMES"

python3 - "$OUT" <<'PY' | tee "$OUT/comparison.txt"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
# arm64 and x86 run different int8 kernels (and JPEG decoders): allow one output
# quantisation step of the shipped int8 model, never another label.
variant = json.loads(pathlib.Path('models/accurate/model.json').read_text())[
    'variants']['int8.tflite']
# Calibrated probabilities: one output step, through the temperature, moves a
# probability by at most about step / temperature.
step = variant['output_scale'] / min(1.0, variant.get('temperature', 1.0))
def faces(name):
  return [(pathlib.Path(r['file']).name, r['faces']) for r in
          map(json.loads, (out / name).read_text().splitlines())]
x86, arm = faces('classify_x86.jsonl'), faces('classify_arm64.jsonl')
assert len(x86) == len(arm) > 0, (len(x86), len(arm))
same_label = largest = identical = 0
for (name_a, a), (name_b, b) in zip(x86, arm):
  identical += a == b
  same_label += name_a == name_b and [f['label'] for f in a] == [f['label'] for f in b]
  largest = max([largest] + [abs(fa['probabilities'][k] - fb['probabilities'][k])
                             for fa, fb in zip(a, b) for k in fa['probabilities']])
print(f'{same_label}/{len(x86)} images: the same labels on arm64 and x86; '
      f'{identical}/{len(x86)} bit-identical; largest probability difference '
      f'{largest:.6f} (one int8 output step, calibrated = {step:.6f})')
# Faces found by BlazeFace (float kernels, which may round differently on arm64): the
# same faces, boxes within 2 px, the same labels.
x86_found, arm_found = faces('detect_x86.jsonl'), faces('detect_arm64.jsonl')
found_alike = sum(
    len(a) == len(b) > 0 and all(fa['label'] == fb['label'] and max(
        abs(p - q) for p, q in zip(fa['box'], fb['box'])) <= 2 for fa, fb in zip(a, b))
    for (_, a), (_, b) in zip(x86_found, arm_found))
print(f'{found_alike}/{len(x86_found)} photos: the same faces found (boxes within 2 px) '
      'with the same labels on arm64 and x86')
sys.exit(0 if same_label == len(x86) and largest <= step + 1e-6
         and found_alike == len(x86_found) == len(arm_found) else 1)
PY
