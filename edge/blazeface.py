"""Google's BlazeFace face detectors (MediaPipe's `face_detection` module) on LiteRT,
decoded as MediaPipe decodes them: SSD anchors, a box and six keypoints per anchor, a
score threshold and weighted non-maximum suppression.

The model files and their provenance are in `models/face_detector/` (README.md there);
`scripts/extract_face_detector.py` extracts them again from the MediaPipe wheel. Each file
is checked against the SHA-256 below when it is loaded: the decoding options belong to
these very files. The options are those of MediaPipe's
`mediapipe/modules/face_detection/face_detection_{short,full}_range.pbtxt`.
"""

from __future__ import annotations

import dataclasses
import pathlib

import cv2
import numpy as np

from edge import model_files
from fer_common import contract

try:
  from ai_edge_litert.interpreter import Interpreter
except ImportError:  # a Pi with the older tflite-runtime wheel instead
  from tflite_runtime.interpreter import Interpreter

FOLDER = 'face_detector'
# MediaPipe's keypoint order; "right" is the person's right, on the image's left.
KEYPOINTS = ('right_eye', 'left_eye', 'nose_tip', 'mouth_centre', 'right_ear',
             'left_ear')


class DetectorError(ValueError):
  """A detector file is missing or is not the file its decoding options are for."""


@dataclasses.dataclass(frozen=True)
class Spec:
  """One BlazeFace model: its file and the options MediaPipe decodes it with."""

  file: str
  sha256: str
  input_size: int
  strides: tuple[int, ...]
  anchors_per_layer: tuple[int, ...]  # anchors at each cell, per stride group
  min_score: float
  min_suppression: float = 0.3  # IoU above which detections are merged


SHORT_RANGE = Spec(
    file='face_detection_short_range.tflite',
    sha256='bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8',
    input_size=128, strides=(8, 16), anchors_per_layer=(2, 6), min_score=0.5)
FULL_RANGE = Spec(
    file='face_detection_full_range_sparse.tflite',
    sha256='2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1',
    input_size=192, strides=(4,), anchors_per_layer=(1,), min_score=0.6)


@dataclasses.dataclass(frozen=True)
class Detection:
  """A face in pixels of the image it was found in."""

  box: tuple[float, float, float, float]  # x_min, y_min, width, height
  keypoints: np.ndarray  # (6, 2) x, y in KEYPOINTS order
  score: float


def anchors(spec: Spec) -> np.ndarray:
  """(N, 2) anchor centres in [0, 1] (MediaPipe's SsdAnchorsCalculator with
  fixed_anchor_size: every anchor is 1 x 1, so only its centre matters), in the order
  of the model's outputs."""
  centres = []
  for stride, per_cell in zip(spec.strides, spec.anchors_per_layer):
    cells = int(np.ceil(spec.input_size / stride))
    y, x = np.mgrid[0:cells, 0:cells]
    grid = np.stack([(x + 0.5) / cells, (y + 0.5) / cells], -1).reshape(-1, 1, 2)
    centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
  return np.concatenate(centres).astype(np.float32)


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
  """IoU of one (x_min, y_min, x_max, y_max) box with each of `others`."""
  x0 = np.maximum(box[0], others[:, 0])
  y0 = np.maximum(box[1], others[:, 1])
  x1 = np.minimum(box[2], others[:, 2])
  y1 = np.minimum(box[3], others[:, 3])
  inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
  area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
  return inter / np.maximum(area(box) + area(others) - inter, 1e-9)


def weighted_nms(corners: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 threshold: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
  """MediaPipe's weighted non-maximum suppression: the best-scoring detection and every
  other overlapping it by more than `threshold` IoU become one, their boxes and
  keypoints averaged by score, with the best score.

  Returns:
    (corners (4,), keypoints (K, 2), score) per face, best first.
  """
  order = np.argsort(-scores)
  corners, keypoints, scores = corners[order], keypoints[order], scores[order]
  faces = []
  remaining = np.arange(len(scores))
  while remaining.size:
    overlap = _iou(corners[remaining[0]], corners[remaining]) > threshold
    members, remaining = remaining[overlap], remaining[~overlap]
    weights = scores[members][:, None]
    faces.append(((corners[members] * weights).sum(0) / weights.sum(),
                  (keypoints[members] * weights[:, :, None]).sum(0) / weights.sum(),
                  float(scores[members[0]])))
  return faces


class BlazeFace:
  """One BlazeFace model: a grayscale or BGR image in, face detections out."""

  def __init__(self, spec: Spec = SHORT_RANGE, path: pathlib.Path | None = None,
               min_score: float | None = None, num_threads: int = 1):
    """Loads the model, refusing a file other than the one `spec` is for.

    Args:
      spec: SHORT_RANGE (what the runner uses) or FULL_RANGE (for distant faces; in
        the checkout only, for benchmarks/face_finding.py).
      path: the .tflite (default: models/face_detector/<spec.file>).
      min_score: detections below this are dropped (default: MediaPipe's, per model).

    Raises:
      DetectorError: the file is missing or its SHA-256 is not spec.sha256.
    """
    path = pathlib.Path(path) if path else model_files.find(FOLDER) / spec.file
    if not path.is_file():
      raise DetectorError(f'{path}: face detector not found (scripts/'
                          'extract_face_detector.py extracts it from the MediaPipe wheel)')
    if contract.sha256(path) != spec.sha256:
      raise DetectorError(f'{path} is not the face detector this runner decodes (its '
                          f'SHA-256 is not {spec.sha256}); extract it again with '
                          'scripts/extract_face_detector.py')
    self.spec = spec
    self.min_score = spec.min_score if min_score is None else min_score
    self._interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
    self._interpreter.allocate_tensors()
    self._input = self._interpreter.get_input_details()[0]['index']
    # Outputs: regressors (1, N, 16) and scores (1, N, 1), told apart by their shape.
    outputs = sorted(self._interpreter.get_output_details(), key=lambda d: -d['shape'][-1])
    self._regressors, self._scores = outputs[0]['index'], outputs[1]['index']
    self._anchors = anchors(spec)

  def _letterboxed(self, image: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """The model input: `image` scaled to fit the input square, centred, padded black
    (as MediaPipe's ImageToTensorCalculator with keep_aspect_ratio), in [-1, 1];
    with the scale and the left and top padding in input pixels."""
    size = self.spec.input_size
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    if small.ndim == 2:
      small = cv2.cvtColor(small, cv2.COLOR_GRAY2RGB)
    else:
      small = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    left, top = (size - new_w) // 2, (size - new_h) // 2
    tensor = np.full((size, size, 3), -1.0, np.float32)
    tensor[top:top + new_h, left:left + new_w] = small.astype(np.float32) / 127.5 - 1.0
    return tensor[None], scale, left, top

  def detect(self, image: np.ndarray) -> list[Detection]:
    """The faces in a 2-D uint8 grayscale or (H, W, 3) BGR image, best first."""
    tensor, scale, left, top = self._letterboxed(image)
    self._interpreter.set_tensor(self._input, tensor)
    self._interpreter.invoke()
    raw = self._interpreter.get_tensor(self._regressors)[0]
    logits = np.clip(self._interpreter.get_tensor(self._scores)[0, :, 0], -100, 100)
    keep = logits > np.log(self.min_score / (1 - self.min_score))  # sigmoid > min_score
    if not keep.any():
      return []
    raw, scores, centres = raw[keep], 1 / (1 + np.exp(-logits[keep])), self._anchors[keep]
    size = self.spec.input_size
    # Offsets are in input pixels, relative to the anchor centre (reverse_output_order:
    # x before y).
    centre = raw[:, 0:2] + centres * size
    half = raw[:, 2:4] / 2
    corners = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:16].reshape(-1, 6, 2) + centres[:, None, :] * size
    detections = []
    for box, points, score in weighted_nms(corners, keypoints, scores,
                                           self.spec.min_suppression):
      # Input pixels -> image pixels: remove the letterbox padding, undo the scale.
      offset = np.array([left, top], np.float32)
      (x0, y0), (x1, y1) = (box[:2] - offset) / scale, (box[2:] - offset) / scale
      detections.append(Detection((float(x0), float(y0), float(x1 - x0), float(y1 - y0)),
                                  (points - offset) / scale, score))
    return detections
