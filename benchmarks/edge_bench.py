"""`python -m edge bench` on the shipped models, written to BENCHMARKS.md.

  python benchmarks/edge_bench.py [--models=models] [--manual_dir=../shared/data]

The frame: a real FER-2013 test face (from the Kaggle archive) scaled to 160x160 and pasted
onto a 640x480 grey canvas, so the detector finds one face and the classifier runs once per
frame. One thread, as on one core of a Pi.
"""

import io
import json
import pathlib
import subprocess
import sys
import tempfile
import zipfile

from absl import app
from absl import flags
from PIL import Image

import markdown_section
from fer_common import machine

FLAGS = flags.FLAGS
SECTION = '<!-- edge_bench.py -->'


def define_flags() -> None:
  """Defines the command-line flags of the benchmark."""
  flags.DEFINE_string('models', 'models', 'Folder with the shipped models, one folder '
                      'each.')
  flags.DEFINE_string('manual_dir', '../shared/data', 'Folder with fer2013.zip.')
  flags.DEFINE_string('out', 'BENCHMARKS.md', 'Markdown file to update.')
  flags.DEFINE_integer('runs', 300, 'Timed runs per measurement.', lower_bound=1)


def face_frame(manual_dir: str, path: pathlib.Path) -> None:
  """Writes a 640x480 frame with one real face on it to `path`."""
  with zipfile.ZipFile(pathlib.Path(manual_dir) / 'fer2013.zip') as archive:
    name = sorted(n for n in archive.namelist() if n.startswith('test/happy/'))[0]
    face = Image.open(io.BytesIO(archive.read(name))).convert('L').resize((160, 160))
  canvas = Image.new('L', (640, 480), 90)
  canvas.paste(face, (240, 160))
  canvas.save(path)


def bench(model: pathlib.Path, frame: pathlib.Path, runs: int) -> dict:
  """The JSON that `python -m edge bench` prints."""
  result = subprocess.run(
      [sys.executable, '-m', 'edge', 'bench', '--model', str(model), '--image', str(frame),
       '--threads', '1', '--runs', str(runs)], capture_output=True, text=True, check=True)
  return json.loads(result.stdout)


def main(argv):
  del argv
  rows = ['## Edge runner (`python benchmarks/edge_bench.py`)', '',
          'One thread; the frame is 640x480 with one real face, given again and again to '
          'the video path (edge.faces.VideoFaceFinder), so each frame costs what a frame '
          'of a video costs once its face is followed: BlazeFace in the window around '
          'the face, half a window of the search for new faces, the crop levelled, '
          f'resized to 48x48 and classified. Measured on {machine.describe()}, not on a '
          'Pi.', '',
          '| model | faces found | model only: median / p90 / p99 ms (FPS) | '
          'detect + classify: median / p90 / p99 ms (FPS) |', '|---|---:|---|---|']
  with tempfile.TemporaryDirectory() as folder:
    frame = pathlib.Path(folder) / 'frame.png'
    face_frame(FLAGS.manual_dir, frame)
    for model in sorted(pathlib.Path(FLAGS.models).glob('*/int8.tflite')):
      r = bench(model, frame, FLAGS.runs)
      cells = [f"{p['median_ms']:.2f} / {p['p90_ms']:.2f} / {p['p99_ms']:.2f} "
               f"({p['fps']:.0f})" for p in (r['model_only'], r['detect_and_classify'])]
      rows.append(f"| `{model}` | {r['faces_in_frame']} | {cells[0]} | {cells[1]} |")
  markdown_section.publish(FLAGS.out, SECTION, rows)


if __name__ == '__main__':
  define_flags()
  app.run(main)
