"""Fits how the edge runner's face boxes relate to the training faces' framing, and
measures what the fitted correction does to the robustness yardstick:

  python benchmarks/face_framing.py --faces=600 --out=docs/results/face_framing.md

Test faces are placed upright in frames (export.yardstick's scenes, so the face square
is known); the Haar cascade's box on each is compared with that square: its side as a
share of the box's width, and its centre's offset in box widths. The medians become
edge.faces.FRAMING. Then the shipped model runs the yardstick with the box as it is and
with the fitted framing.
"""

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

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags."""
  flags.DEFINE_integer('faces', 600, 'Test faces to fit on and to measure with.',
                       lower_bound=10)
  flags.DEFINE_string('model', 'models/accurate/int8.tflite',
                      'The model the yardstick runs.')
  flags.DEFINE_string('out', None, 'Also write the result to this Markdown file.')


def fit(images: np.ndarray) -> tuple[dict, int]:
  """(the median framing of Haar boxes on upright faces, how many faces it rests on)."""
  detector = faces.FaceFinder.single_pass()
  ratios, dxs, dys = [], [], []
  for index, face in enumerate(images):
    item = yardstick.scene(face[..., 0], index)
    if item.roll or item.perturbation != 'none':
      continue
    box = yardstick.nearest(detector.detect(item.image), item)
    if box is None:
      continue
    ratios.append(item.side / box.width)
    dxs.append((item.centre[0] - box.centre[0]) / box.width)
    dys.append((item.centre[1] - box.centre[1]) / box.width)
  framing = {'scale': round(float(np.median(ratios)), 3),
             'dx': round(float(np.median(dxs)), 3), 'dy': round(float(np.median(dys)), 3)}
  return framing, len(ratios)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  images, labels = yardstick.split_arrays(contract.DEFAULT_CONFIG, 'test', None)
  images, labels = images[:FLAGS.faces], labels[:FLAGS.faces]
  framing, fitted_on = fit(images)
  identity = {'scale': 1.0, 'dx': 0.0, 'dy': 0.0}
  lines = [f'Fitted on the {fitted_on} upright, unperturbed scenes among the first '
           f'{FLAGS.faces} test faces: the training face is a square {framing["scale"]} '
           f'times the Haar box\'s width, its centre {framing["dx"]} box widths right and '
           f'{framing["dy"]} down of the box\'s.', '',
           f'| crop | robustness accuracy ({FLAGS.model}, {FLAGS.faces} faces) | right '
           'when found |', '|---|---:|---:|']
  for name, chosen in (('the Haar box as it is', identity),
                       ('the fitted framing', framing)):
    classifier = FaceClassifier(FLAGS.model, faces.WholeImage(), framing=chosen)
    result = yardstick.robustness(classifier, images, labels)
    lines.append(f"| {name} | {100 * result['accuracy']:.2f} % | "
                 f"{100 * result['accuracy_of_found']:.2f} % |")
  text = '\n'.join(lines)
  print(text)
  if FLAGS.out:
    command = ' '.join(['python benchmarks/face_framing.py', *sys.argv[1:]])
    files.write_text(pathlib.Path(FLAGS.out),
                     f'# Face framing\n\nWritten by `{command}`.\n\n{text}\n')


if __name__ == '__main__':
  define_flags()
  app.run(main)
