"""Compares face-finder settings on the yardstick's frames (export.yardstick scenes: test
faces at several scales, positions and rolls, perturbed): how many faces each finds and
how many false faces it reports, with no model involved.

  python benchmarks/face_finding.py --faces=500 --out=docs/results/face_finding.md

The settings edge.faces uses by default came from this table.
"""

import pathlib
import sys
import time

from absl import app
from absl import flags

from edge import faces
from export import yardstick
from fer_common import contract
from fer_common import files

FLAGS = flags.FLAGS
DEFAULT_CASCADE = 'haarcascade_frontalface_default.xml'
ALT2_CASCADE = 'haarcascade_frontalface_alt2.xml'
SETTINGS = {
    'one pass, default cascade, 5 neighbours': faces.FaceFinder.single_pass(
        faces.HaarFaceDetector(cascade=DEFAULT_CASCADE, min_neighbors=5)),
    'one pass, alt2 cascade, 3 neighbours (video)': faces.FaceFinder.single_pass(
        faces.HaarFaceDetector(cascade=ALT2_CASCADE, min_neighbors=3)),
    'retries, default cascade, 5 neighbours': faces.FaceFinder(
        faces.HaarFaceDetector(cascade=DEFAULT_CASCADE, min_neighbors=5)),
    'retries, alt2 cascade, 5 neighbours': faces.FaceFinder(
        faces.HaarFaceDetector(cascade=ALT2_CASCADE, min_neighbors=5)),
    'retries, alt2 cascade, 3 neighbours (photos)': faces.FaceFinder(
        faces.HaarFaceDetector(cascade=ALT2_CASCADE, min_neighbors=3)),
}


def define_flags() -> None:
  """Defines the command-line flags."""
  flags.DEFINE_integer('faces', 500, 'Test faces, each in its own frame.', lower_bound=10)
  flags.DEFINE_string('out', None, 'Also write the table to this Markdown file.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  images, _ = yardstick.split_arrays(contract.DEFAULT_CONFIG, 'test', None)
  scenes = [yardstick.scene(image[..., 0], index)
            for index, image in enumerate(images[:FLAGS.faces])]
  lines = [f'The first {len(scenes)} test faces of fer5_ck, each in a 400x300 frame; a '
           'face counts as found when a box\'s centre lies within half its side of the '
           'face\'s.', '',
           '| finder | faces found | false faces per frame | ms per frame |',
           '|---|---:|---:|---:|']
  for name, finder in SETTINGS.items():
    start, found, false = time.perf_counter(), 0, 0
    for item in scenes:
      boxes = finder.detect(item.image)
      hit = yardstick.nearest(boxes, item) is not None
      found, false = found + hit, false + len(boxes) - hit
    seconds = (time.perf_counter() - start) / len(scenes)
    lines.append(f'| {name} | {100 * found / len(scenes):.1f} % | '
                 f'{false / len(scenes):.2f} | {1000 * seconds:.0f} |')
    print(lines[-1], flush=True)
  if FLAGS.out:
    command = ' '.join(['python benchmarks/face_finding.py', *sys.argv[1:]])
    text = '\n'.join(lines)
    files.write_text(pathlib.Path(FLAGS.out),
                     f'# Face finding\n\nWritten by `{command}`.\n\n{text}\n')


if __name__ == '__main__':
  define_flags()
  app.run(main)
