"""How a model does on faces as a camera or a photo shows them, owned by the project:

  python -m export.yardstick --model=models/accurate/int8.tflite [--limit=N] \\
      [--out=FILE.md]

Two measurements, beside the test accuracy on the dataset's own crops:
  robustness  every test face (deterministically, from its index) pasted with a soft edge
              into a larger frame at another scale, position and roll, under one of:
              lighting (gamma and contrast), blur, down-and-up sampling, sensor noise,
              JPEG compression, or none; then the whole edge path runs: find the face
              (edge.faces.FaceFinder, the photo path: BlazeFace on the frame and its
              tiles), cut it out levelled and framed, classify it. A face not found
              counts as wrong.
  cross_dataset  for a model trained without CK+ (fer5): every CK+ face of the five
              classes, none of which it has seen.
The exporter runs it on every export (report.md); RESULTS.md carries it for the shipped
models.
"""

import dataclasses
import json
import pathlib
import sys

from absl import app
from absl import flags
import cv2
import numpy as np

from edge import faces
from edge.classifier import FaceClassifier
from export import report
from fer_common import contract
from fer_common import files
from fer_tfds import built

FLAGS = flags.FLAGS
PERTURBATIONS = ('none', 'lighting', 'blur', 'resampling', 'noise', 'jpeg')
FRAME = (400, 300)  # width, height of the frames faces are pasted into
SEED = 2013


@dataclasses.dataclass(frozen=True)
class Scene:
  """One test face placed in a frame."""

  image: np.ndarray  # (FRAME height, FRAME width) uint8
  centre: tuple[float, float]
  side: int
  roll: float
  perturbation: str


def _background(rng: np.random.Generator) -> np.ndarray:
  """A smooth random texture with a lighting gradient, no face-like structure."""
  width, height = FRAME
  texture = rng.integers(40, 200, (height // 8, width // 8)).astype(np.float32)
  texture = cv2.resize(texture, (width, height), interpolation=cv2.INTER_CUBIC)
  gradient = np.linspace(-30, 30, width)[None, :] * rng.choice([-1, 1])
  return np.clip(cv2.GaussianBlur(texture, (0, 0), 6) + gradient, 0, 255)


def scene(face: np.ndarray, index: int) -> Scene:
  """The test face `face` (48x48 uint8) in a frame, as its `index` decides."""
  rng = np.random.default_rng([SEED, index])
  width, height = FRAME
  side = int(rng.choice([64, 96, 144, 200]))
  roll = float(rng.choice([0, 0, -12, 12, -24, 24]))
  margin = side * 0.75
  cx, cy = rng.uniform(margin, width - margin), rng.uniform(margin, height - margin)
  canvas = _background(rng)
  big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float32)
  # A soft elliptical edge, so that the frame holds a face, not a pasted square.
  yy, xx = np.mgrid[0:side, 0:side] / (side - 1) * 2 - 1
  alpha = np.clip((1.15 - np.hypot(xx, yy * 0.9)) / 0.25, 0, 1).astype(np.float32)
  layer, weight = np.zeros_like(canvas), np.zeros_like(canvas)
  x0, y0 = int(cx - side / 2), int(cy - side / 2)
  layer[y0:y0 + side, x0:x0 + side], weight[y0:y0 + side, x0:x0 + side] = big, alpha
  turn = cv2.getRotationMatrix2D((x0 + side / 2, y0 + side / 2), roll, 1.0)
  layer = cv2.warpAffine(layer, turn, (width, height))
  weight = cv2.warpAffine(weight, turn, (width, height))
  image = canvas * (1 - weight) + layer * weight
  perturbation = PERTURBATIONS[index % len(PERTURBATIONS)]
  image = _perturb(image, perturbation, rng)
  return Scene(np.clip(image, 0, 255).astype(np.uint8), (x0 + side / 2, y0 + side / 2),
               side, roll, perturbation)


def _perturb(image: np.ndarray, perturbation: str, rng: np.random.Generator) -> np.ndarray:
  if perturbation == 'lighting':
    gamma, contrast = rng.uniform(0.5, 1.8), rng.uniform(0.6, 1.3)
    image = 255 * (image / 255) ** gamma
    return (image - image.mean()) * contrast + image.mean()
  if perturbation == 'blur':
    return cv2.GaussianBlur(image, (0, 0), rng.uniform(1.0, 2.5))
  if perturbation == 'resampling':
    factor = rng.uniform(0.3, 0.6)
    small = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    return cv2.resize(small, FRAME, interpolation=cv2.INTER_LINEAR)
  if perturbation == 'noise':
    return image + rng.normal(0, rng.uniform(6, 15), image.shape)
  if perturbation == 'jpeg':
    quality = int(rng.uniform(15, 40))
    _, encoded = cv2.imencode('.jpg', np.clip(image, 0, 255).astype(np.uint8),
                              [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE).astype(np.float32)
  return image


def nearest(boxes: list[faces.Box], item: Scene) -> faces.Box | None:
  """The box whose centre lies within half the face's side of the pasted face's."""
  for box in boxes:
    cx, cy = box.centre
    if (abs(cx - item.centre[0]) < item.side / 2
        and abs(cy - item.centre[1]) < item.side / 2):
      return box
  return None


def robustness(classifier: FaceClassifier, images: np.ndarray, labels: np.ndarray,
               finder: faces.FaceDetector | None = None) -> dict:
  """The robustness measurement (module docstring) of `classifier` on test faces, with
  `finder` (default: the photo path's edge.faces.FaceFinder())."""
  finder = finder or faces.FaceFinder()
  rows = []
  for index, (face, label) in enumerate(zip(images, labels)):
    item = scene(face[..., 0], index)
    box = nearest(finder.detect(item.image), item)
    predicted = None
    if box is not None:
      probabilities = classifier.probabilities(faces.crop(item.image, box))
      predicted = int(np.argmax(probabilities))
    rows.append((item.perturbation, box is not None, predicted == int(label)))
    if (index + 1) % 250 == 0:
      print(f'yardstick: {index + 1}/{len(labels)} faces in frames', flush=True)
  found = np.array([r[1] for r in rows])
  right = np.array([r[2] for r in rows])
  by = np.array([r[0] for r in rows])
  return {
      'faces': len(rows), 'accuracy': float(right.mean()), 'found': float(found.mean()),
      'accuracy_of_found': float(right[found].mean()) if found.any() else 0.0,
      'by_perturbation': {p: float(right[by == p].mean()) for p in PERTURBATIONS
                          if (by == p).any()},
  }


def crops_accuracy(classifier: FaceClassifier, images: np.ndarray, labels: np.ndarray
                   ) -> dict:
  """Accuracy and per-class recall of `classifier` on 48x48 face crops as they are."""
  predicted = np.array([np.argmax(classifier.probabilities(image[..., 0]))
                        for image in images])
  recall = {name: float((predicted[labels == c] == c).mean())
            for c, name in enumerate(classifier.sidecar.labels) if (labels == c).any()}
  return {'faces': int(len(labels)), 'accuracy': float((predicted == labels).mean()),
          'recall': recall}


def measure(model_path: pathlib.Path, trained_on: str, data_dir: str | None = None,
            limit: int | None = None) -> dict:
  """Both yardsticks of the .tflite at `model_path`, trained on `trained_on` (a
  fer_emotions config), on the test split of fer5_ck, the same faces for every model.
  `limit`: the first N test faces only.

  Raises:
    FileNotFoundError: fer5_ck is not built; the message says how to build it.
  """
  classifier = FaceClassifier(model_path, faces.WholeImage())
  images, labels = built.split_arrays(contract.DEFAULT_CONFIG, 'test', data_dir)[:2]
  images, labels = images[:limit], labels[:limit]
  result = {'model': str(model_path), 'trained_on': trained_on,
            'crops': crops_accuracy(classifier, images, labels),
            'robustness': robustness(classifier, images, labels)}
  if trained_on == 'fer5':
    ck_images, ck_labels, _ = built.split_arrays(
        contract.DEFAULT_CONFIG, 'train+validation+test', data_dir, 'ckplus')
    result['cross_dataset'] = crops_accuracy(classifier, ck_images, ck_labels)
  return result


def to_markdown(result: dict) -> str:
  """The yardstick as a Markdown section."""
  crops, robust = result['crops'], result['robustness']
  lines = ['| measurement | faces | accuracy |', '|---|---:|---:|',
           f"| test faces as cropped in the dataset | {crops['faces']} | "
           f"{100 * crops['accuracy']:.2f} % |",
           f"| the same faces in frames, through the edge path (found: "
           f"{100 * robust['found']:.1f} %, right when found: "
           f"{100 * robust['accuracy_of_found']:.2f} %) | {robust['faces']} | "
           f"{100 * robust['accuracy']:.2f} % |"]
  for name, accuracy in robust['by_perturbation'].items():
    lines.append(f'| ... {name} | | {100 * accuracy:.2f} % |')
  cross = result.get('cross_dataset')
  if cross:
    lines.append(f"| CK+ faces, unseen (cross-dataset) | {cross['faces']} | "
                 f"{100 * cross['accuracy']:.2f} % |")
  else:
    lines.append(f"| CK+ faces (cross-dataset) | | n/a: trained on {result['trained_on']}, "
                 'which holds CK+ |')
  recall = ', '.join(f'{name} {100 * r:.0f} %' for name, r in crops['recall'].items())
  lines += ['', f'Recall per class on the cropped test faces: {recall}.']
  return '\n'.join(lines)


def define_flags() -> None:
  """Defines the command-line flags of the yardstick."""
  flags.DEFINE_string('model', 'models/accurate/int8.tflite',
                      'A .tflite with its model.json.')
  flags.DEFINE_string('data_dir', None, 'TFDS data dir.')
  flags.DEFINE_integer('limit', None, 'Only the first N test faces.', lower_bound=1)
  flags.DEFINE_string('out', None, 'Also write the result here (.md, and .json beside).')
  flags.DEFINE_bool('update_report', False, 'Also record the result in the report.json '
                    'and report.md beside --model (an export folder or models/<name>).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  model = pathlib.Path(FLAGS.model)
  try:
    spec = json.loads(model.with_name(contract.SIDECAR).read_text())
    trained_on = spec.get('source', {}).get('dataset', '').split('/')[-1]
    result = measure(model, trained_on, FLAGS.data_dir, FLAGS.limit)
  except (OSError, ValueError) as e:
    sys.exit(f'error: {e}')
  markdown = to_markdown(result)
  print(markdown)
  if FLAGS.out:
    out = pathlib.Path(FLAGS.out)
    command = ' '.join(['python -m export.yardstick', *sys.argv[1:]])
    files.write_text(out, f'# Yardstick: {model}\n\nWritten by `{command}`.\n\n'
                          f'{markdown}\n')
    files.write_text(out.with_suffix('.json'), json.dumps(result, indent=2) + '\n')
  if FLAGS.update_report:
    try:
      report.record_yardstick(model.parent, result)
    except FileNotFoundError as e:
      sys.exit(f'error: --update_report: {e.filename} is missing: {model.parent} is no '
               'export folder.')
    print(f'Recorded in {model.parent / contract.REPORT_MD}.')


if __name__ == '__main__':
  define_flags()
  app.run(main)
