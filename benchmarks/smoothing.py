"""Chooses the default of `edge video --smooth` by measuring flicker against lag:

  python benchmarks/smoothing.py [--model=models/fast/int8.tflite] \\
      --out=docs/results/smoothing.md

Each clip is two validation faces of fer5_ck of different classes, two seconds each at
30 frames per second, as a camera sees a still face: every frame moves the crop by up
to 4 % of its side, scales it by up to 5 %, changes the lighting and adds sensor noise.
The model classifies every frame; edge.tracking.Tracker smooths the probabilities with
each time constant. Flicker: label changes per second within one face's two seconds.
Lag: time from the change of face until the smoothed label is the one the model gives
the second face most often (clips where both faces get the same label are left out).
The default is the knee: the longest time constant whose step from the one before still
removed at least one label change per second for each second of lag it added.
"""

import pathlib
import sys

from absl import app
from absl import flags
import cv2
import numpy as np

from edge import faces
from edge import tracking
from edge.classifier import FaceClassifier
from fer_common import contract
from fer_common import files
from fer_tfds import built

FLAGS = flags.FLAGS
FPS = 30
SECONDS_PER_FACE = 2.0
TIME_CONSTANTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2)


def define_flags() -> None:
  """Defines the command-line flags."""
  flags.DEFINE_string('model', 'models/fast/int8.tflite', 'The model (video\'s default).')
  flags.DEFINE_integer('clips', 150, 'Clips of two faces.', lower_bound=1)
  flags.DEFINE_string('out', None, 'Also write the table to this Markdown file.')


def camera_frame(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """`face` (48x48) as one camera frame shows it: shifted, scaled, relit, noisy."""
  big = cv2.resize(face, (96, 96), interpolation=cv2.INTER_CUBIC).astype(np.float32)
  scale = rng.uniform(0.95, 1.05)
  shift = rng.uniform(-0.04, 0.04, 2) * 96
  turn = cv2.getRotationMatrix2D((48, 48), 0, scale)
  turn[:, 2] += shift
  moved = cv2.warpAffine(big, turn, (96, 96), borderMode=cv2.BORDER_REPLICATE)
  moved = moved * rng.uniform(0.9, 1.1) + rng.normal(0, 6, moved.shape)
  return np.clip(moved, 0, 255).astype(np.uint8)


def raw_clip(classifier: FaceClassifier, pair: tuple[np.ndarray, np.ndarray],
             rng: np.random.Generator) -> np.ndarray:
  """(frames, classes) probabilities of the model, frame by frame, unsmoothed."""
  frames = int(FPS * SECONDS_PER_FACE)
  return np.stack([classifier.probabilities(camera_frame(face, rng))
                   for face in pair for _ in range(frames)])


def smoothed_labels(probabilities: np.ndarray, smooth_s: float) -> np.ndarray:
  """The label of each frame after edge.tracking's smoothing of one track."""
  tracker = tracking.Tracker(smooth_s)
  box = faces.Box(0, 0, 96, 96)
  return np.array([int(np.argmax(tracker.update(i / FPS, [box], [p])[0].probabilities))
                   for i, p in enumerate(probabilities)])


def measure(clips: list[np.ndarray]) -> list[dict]:
  """Flicker and lag (module docstring) for each of TIME_CONSTANTS."""
  half = int(FPS * SECONDS_PER_FACE)
  rows = []
  for smooth_s in TIME_CONSTANTS:
    changes, lags = [], []
    for probabilities in clips:
      labels = smoothed_labels(probabilities, smooth_s)
      changes += [np.count_nonzero(np.diff(labels[:half])),
                  np.count_nonzero(np.diff(labels[half:]))]
      first = np.bincount(probabilities[:half].argmax(-1)).argmax()
      second = np.bincount(probabilities[half:].argmax(-1)).argmax()
      if first != second:
        reached = np.flatnonzero(labels[half:] == second)
        lags.append(reached[0] / FPS if reached.size else SECONDS_PER_FACE)
    rows.append({'smooth_s': smooth_s,
                 'flicker_per_s': float(np.mean(changes) / SECONDS_PER_FACE),
                 'lag_s': float(np.mean(lags)), 'lag_p90_s': float(np.percentile(lags, 90))})
  return rows


def knee(rows: list[dict]) -> float:
  """The time constant the module docstring's rule chooses."""
  chosen = rows[0]['smooth_s']
  for before, after in zip(rows, rows[1:]):
    added_lag = after['lag_s'] - before['lag_s']
    if before['flicker_per_s'] - after['flicker_per_s'] < added_lag:
      break
    chosen = after['smooth_s']
  return chosen


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  images, labels = built.split_arrays(contract.DEFAULT_CONFIG, 'validation', None)[:2]
  classifier = FaceClassifier(FLAGS.model, faces.WholeImage())
  rng = np.random.default_rng(0)
  clips = []
  while len(clips) < FLAGS.clips:
    a, b = rng.choice(len(labels), 2, replace=False)
    if labels[a] != labels[b]:
      clips.append(raw_clip(classifier, (images[a, ..., 0], images[b, ..., 0]), rng))
  rows = measure(clips)
  lines = [f'{FLAGS.clips} clips of two validation faces, {SECONDS_PER_FACE:.0f} s each '
           f'at {FPS} frames per second, classified by `{FLAGS.model}`.', '',
           '| --smooth (s) | flicker (label changes per second) | lag (s, mean) | '
           'lag (s, p90) |', '|---:|---:|---:|---:|']
  lines += [f"| {r['smooth_s']} | {r['flicker_per_s']:.2f} | {r['lag_s']:.2f} | "
            f"{r['lag_p90_s']:.2f} |" for r in rows]
  lines += ['', f'The knee (the default of `edge video --smooth`): {knee(rows)} s.']
  text = '\n'.join(lines)
  print(text)
  if FLAGS.out:
    command = ' '.join(['python benchmarks/smoothing.py', *sys.argv[1:]])
    files.write_text(pathlib.Path(FLAGS.out), f'# Smoothing\n\nWritten by `{command}`.'
                     f'\n\n{__doc__.split(chr(10) * 2)[1]}\n\n{text}\n')


if __name__ == '__main__':
  define_flags()
  app.run(main)
