"""Extracts the BlazeFace models of models/face_detector/ again from the MediaPipe wheel
and checks their SHA-256 against the ones edge.blazeface decodes:

  python scripts/extract_face_detector.py [--wheel mediapipe-0.10.14-....whl]

Without --wheel, pip downloads the wheel (mediapipe==0.10.14, no dependencies) into a
temporary folder. Each file is written whole or not at all.
"""

import argparse
import hashlib
import pathlib
import subprocess
import sys
import tempfile
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge import blazeface  # noqa: E402  (the checkout's, not an installed copy)
from fer_common import files  # noqa: E402

PACKAGE = 'mediapipe==0.10.14'
INSIDE = 'mediapipe/modules/face_detection/'


def download(folder: pathlib.Path) -> pathlib.Path:
  """The MediaPipe wheel, downloaded by pip into `folder`."""
  subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary',
                  ':all:', '-d', str(folder), PACKAGE], check=True)
  return next(folder.glob('mediapipe-*.whl'))


def extract(wheel: pathlib.Path, out: pathlib.Path) -> None:
  """Writes each detector of `wheel` into `out`, refusing one with another checksum."""
  with zipfile.ZipFile(wheel) as archive:
    for spec in (blazeface.SHORT_RANGE, blazeface.FULL_RANGE):
      data = archive.read(INSIDE + spec.file)
      digest = hashlib.sha256(data).hexdigest()
      if digest != spec.sha256:
        sys.exit(f'error: {wheel}:{INSIDE}{spec.file} has SHA-256 {digest}, not '
                 f'{spec.sha256}: not the file edge/blazeface.py decodes')
      files.write_bytes(out / spec.file, data)
      print(f'{out / spec.file}: {len(data)} bytes, sha256 {digest}')


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--wheel', type=pathlib.Path, help='a downloaded mediapipe wheel')
  parser.add_argument('--out', type=pathlib.Path, default=ROOT / 'models' / blazeface.FOLDER)
  args = parser.parse_args()
  if args.wheel:
    extract(args.wheel, args.out)
    return
  with tempfile.TemporaryDirectory() as folder:
    extract(download(pathlib.Path(folder)), args.out)


if __name__ == '__main__':
  main()
