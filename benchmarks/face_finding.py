"""Compares face finders on the yardstick's frames (export.yardstick scenes: validation
faces at several scales, positions and rolls, perturbed): how many faces each finds, how
many false faces it reports and what a frame costs, with no expression model involved.

  python benchmarks/face_finding.py --faces=1000 --out=docs/results/face_finding.md

The finder edge.faces uses by default came from this table.
"""

import pathlib
import sys
import time

from absl import app
from absl import flags
import cv2
import numpy as np

from edge import blazeface
from edge import faces
from export import yardstick
from fer_common import contract
from fer_common import files
from fer_common import machine
from fer_tfds import built

FLAGS = flags.FLAGS


class FullRangeWhereNothing:
  """A finder, then BlazeFace full range on the whole image where it found nothing."""

  def __init__(self, first: faces.FaceFinder):
    self._first = first
    self._full = faces.FaceFinder.single_pass(blazeface.BlazeFace(blazeface.FULL_RANGE))

  def detect(self, gray: np.ndarray) -> list[faces.Box]:
    return self._first.detect(gray) or self._full.detect(gray)


def settings() -> dict:
  """The finders compared, by name."""
  full_range = blazeface.BlazeFace(blazeface.FULL_RANGE)
  return {
      'short range, whole image': faces.FaceFinder.single_pass(),
      'full range, whole image': faces.FaceFinder.single_pass(full_range),
      'short range, tiles for faces of 64 px and more (the windows video searches, one '
      'every third frame)': faces.FaceFinder(min_face=64),
      'short range, tiles for faces of 48 px and more (photos: edge.faces.FaceFinder())':
          faces.FaceFinder(),
      'the same, then full range where it finds nothing':
          FullRangeWhereNothing(faces.FaceFinder()),
      'photos, without the second look in the mirror image':
          faces.FaceFinder(check_mirror=False),
  }


def define_flags() -> None:
  """Defines the command-line flags."""
  flags.DEFINE_integer('faces', 1000, 'Validation faces, each in its own frame.',
                       lower_bound=10)
  flags.DEFINE_string('out', None, 'Also write the table to this Markdown file.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  images, _ = built.split_arrays(contract.DEFAULT_CONFIG, 'validation', None)[:2]
  scenes = [yardstick.scene(image[..., 0], index)
            for index, image in enumerate(images[:FLAGS.faces])]
  lines = [f'The first {len(scenes)} validation faces of fer5_ck, each in a 400x300 frame '
           '(sides 64 to 200 px, rolls up to 24 degrees, perturbed); a face counts as found '
           'when a box\'s centre lies within half its side of the face\'s. One thread, '
           f'{machine.describe()}.', '',
           '"Noise": 40 frames of blurred noise (640x480, sigma 2, 3, 5 and 8), where every '
           'face is false.', '',
           '| finder | faces found | ... of side 64 / 96 / 144 / 200 px | false faces '
           'per frame | false faces per noise frame | ms per frame |',
           '|---|---:|---|---:|---:|---:|']
  sides = sorted({item.side for item in scenes})
  noise = [cv2.GaussianBlur(np.random.default_rng(seed).integers(0, 256, (480, 640),
                                                                 np.uint8), (0, 0), sigma)
           for sigma in (2, 3, 5, 8) for seed in range(10)]
  for name, finder in settings().items():
    start, hits, false = time.perf_counter(), [], 0
    for item in scenes:
      boxes = finder.detect(item.image)
      hit = yardstick.nearest(boxes, item) is not None
      hits.append(hit)
      false += len(boxes) - hit
    seconds = (time.perf_counter() - start) / len(scenes)
    in_noise = sum(len(finder.detect(frame)) for frame in noise)
    hits = np.array(hits)
    by_side = ' / '.join(
        f'{100 * hits[[s.side == side for s in scenes]].mean():.0f}' for side in sides)
    lines.append(f'| {name} | {100 * hits.mean():.1f} % | {by_side} % | '
                 f'{false / len(scenes):.3f} | {in_noise / len(noise):.3f} | '
                 f'{1000 * seconds:.1f} |')
    print(lines[-1], flush=True)
  if FLAGS.out:
    command = ' '.join(['python benchmarks/face_finding.py', *sys.argv[1:]])
    text = '\n'.join(lines)
    files.write_text(pathlib.Path(FLAGS.out),
                     f'# Face finding\n\nWritten by `{command}`.\n\n{text}\n')


if __name__ == '__main__':
  define_flags()
  app.run(main)
