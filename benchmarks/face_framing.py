"""Fits how a BlazeFace detection becomes the square the training faces show
(edge.faces.FRAMING), and checks the fit and its neighbours on both shipped models:

  python benchmarks/face_framing.py [--faces=N] --out=docs/results/face_framing.md

Validation faces of fer5_ck are placed in the yardstick's frames (export.yardstick.scene),
where the true square, centre and roll of each face are known. The photo path's finder
(edge.faces.FaceFinder) finds them; for each face found, the square's side as a share of
the detector's box width, and its centre's offset from the box centre in box widths
(measured in the levelled face), are recorded. Their medians are the fit. Then each
shipped model classifies every found face cut out with the fit, with the box as it is,
and with scales and offsets around the fit: robustness accuracy, as the yardstick
counts it (a face not found is wrong). Validation faces only: test faces choose nothing.
"""

import math
import pathlib
import sys

from absl import app
from absl import flags
import numpy as np

from edge import faces
from edge.classifier import FaceClassifier
from export import yardstick
from fer_common import contract
from fer_common import files
from fer_tfds import built

FLAGS = flags.FLAGS
MODELS = ('models/accurate/int8.tflite', 'models/fast/int8.tflite')


def define_flags() -> None:
  """Defines the command-line flags."""
  flags.DEFINE_integer('faces', None, 'Validation faces (default: all).', lower_bound=10)
  flags.DEFINE_string('out', None, 'Also write the result to this Markdown file.')


def found_faces(images: np.ndarray) -> list:
  """(index, scene, the refined detection of its face) for each face the photo finder
  finds in its frame, in the order of `images`."""
  finder = faces.FaceFinder()
  result = []
  for index, face in enumerate(images):
    item = yardstick.scene(face[..., 0], index)
    for detection in finder.detections(item.image):
      x, y, width, height = detection.box
      if (abs(x + width / 2 - item.centre[0]) < item.side / 2
          and abs(y + height / 2 - item.centre[1]) < item.side / 2):
        result.append((index, item, detection))
        break
    if (index + 1) % 500 == 0:
      print(f'face_framing: {index + 1}/{len(images)} frames searched', flush=True)
  return result


def fit(found: list) -> dict:
  """The median framing of the found faces (see the module docstring)."""
  scales, dxs, dys = [], [], []
  for _, item, detection in found:
    x, y, width, height = detection.box
    # The true offset, turned into the face's own frame (the scene turned it by roll).
    ox, oy = item.centre[0] - (x + width / 2), item.centre[1] - (y + height / 2)
    turn = math.radians(item.roll)
    scales.append(item.side / width)
    dxs.append((ox * math.cos(turn) - oy * math.sin(turn)) / width)
    dys.append((ox * math.sin(turn) + oy * math.cos(turn)) / width)
  return {'scale': round(float(np.median(scales)), 3), 'dx': round(float(np.median(dxs)), 3),
          'dy': round(float(np.median(dys)), 3)}


def accuracy(classifier: FaceClassifier, found: list, labels: np.ndarray,
             framing: dict) -> float:
  """Robustness accuracy over all `labels` with the found faces cut out by `framing`."""
  right = 0
  for index, item, detection in found:
    box = faces.frame(detection, faces.roll_of(detection.keypoints), framing, 'blazeface')
    probabilities = classifier.probabilities(faces.crop(item.image, box))
    right += int(np.argmax(probabilities)) == int(labels[index])
  return right / len(labels)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  images, labels = built.split_arrays(contract.DEFAULT_CONFIG, 'validation', None)[:2]
  images, labels = images[:FLAGS.faces], labels[:FLAGS.faces]
  found = found_faces(images)
  fitted = fit(found)
  candidates = {'the box as it is': {'scale': 1.0, 'dx': 0.0, 'dy': 0.0},
                'the fit': fitted}
  for scale in (0.9, 1.0, 1.1, 1.2):
    for dy in (0.0, -0.05, -0.1):
      candidates.setdefault(f'scale {scale}, dy {dy}', {'scale': scale, 'dx': 0.0, 'dy': dy})
  classifiers = [FaceClassifier(m, faces.WholeImage()) for m in MODELS]
  lines = [f'{len(images)} validation faces of fer5_ck in the yardstick\'s frames; the '
           f'photo finder found {100 * len(found) / len(images):.1f} %. The fit (medians '
           f'over the faces found): the training square is {fitted["scale"]} times '
           f'BlazeFace\'s box width, its centre {fitted["dx"]} box widths right and '
           f'{fitted["dy"]} down of the box centre, in the levelled face.', '',
           '| crop | scale | dx | dy | ' + ' | '.join(f'`{m}`' for m in MODELS) +
           ' | mean |', '|---|---:|---:|---:|' + '---:|' * (len(MODELS) + 1)]
  for name, framing in candidates.items():
    scores = [accuracy(c, found, labels, framing) for c in classifiers]
    lines.append(f'| {name} | {framing["scale"]} | {framing["dx"]} | {framing["dy"]} | ' +
                 ' | '.join(f'{100 * s:.2f} %' for s in scores) +
                 f' | {100 * np.mean(scores):.2f} % |')
    print(lines[-1], flush=True)
  text = '\n'.join(lines)
  print(text)
  if FLAGS.out:
    command = ' '.join(['python benchmarks/face_framing.py', *sys.argv[1:]])
    files.write_text(pathlib.Path(FLAGS.out),
                     f'# Face framing\n\nWritten by `{command}`.\n\n{__doc__.split(chr(10) * 2)[1]}'
                     f'\n\n{text}\n')


if __name__ == '__main__':
  define_flags()
  app.run(main)
