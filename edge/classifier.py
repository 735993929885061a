"""Detect faces, crop and preprocess them exactly as in training, classify them."""

from __future__ import annotations

import dataclasses
import pathlib

import cv2
import numpy as np

from edge import faces as faces_lib
from edge import sidecar as sidecar_lib
from edge.faces import Box
from edge.faces import FaceDetector
from edge.litert_model import LiteRTModel
from edge.litert_model import ModelError


@dataclasses.dataclass(frozen=True)
class Face:
  """One classified face."""

  box: Box
  label: str
  probabilities: dict[str, float]

  def as_dict(self) -> dict:
    return {'box': self.box.as_list(), 'roll': self.box.roll,
            'found_by': self.box.found_by, 'label': self.label,
            'probabilities': self.probabilities}


class FaceClassifier:
  """A .tflite expression model with its sidecar and a face detector."""

  def __init__(self, model_path: str | pathlib.Path, detector: FaceDetector,
               num_threads: int = 1, framing: dict | None = None):
    """Loads the model and the model.json beside it and checks that they fit.

    framing: how a detected box becomes the crop (edge.faces.crop; default
      edge.faces.FRAMING).

    Raises:
      ModelError, sidecar_lib.SidecarError: naming the file and the mismatch.
    """
    self.model = LiteRTModel(model_path, num_threads=num_threads)
    self.sidecar = sidecar_lib.load(model_path)
    self.detector = detector
    self.framing = framing or faces_lib.FRAMING
    if self.model.input_shape != self.sidecar.input_shape:
      raise ModelError(f'{model_path} takes input {self.model.input_shape} but its '
                       f'model.json says {self.sidecar.input_shape}: they do not belong '
                       'together.')
    if self.model.num_classes != len(self.sidecar.labels):
      raise ModelError(f'{model_path} has {self.model.num_classes} outputs but its '
                       f'model.json lists {len(self.sidecar.labels)} labels.')

  def probabilities(self, face: np.ndarray) -> np.ndarray:
    """Class probabilities of one grayscale face crop of any size."""
    height, width = self.sidecar.image_size
    if face.shape != (height, width):
      face = cv2.resize(face, (width, height), interpolation=cv2.INTER_AREA)
    return self.model.predict(self.sidecar.normalise(face))

  def classify_face(self, face: np.ndarray) -> tuple[str, dict[str, float]]:
    """Label and probabilities of one grayscale face crop of any size."""
    probabilities = self.probabilities(face)
    named = {label: round(float(p), 6) for label, p in zip(self.sidecar.labels,
                                                              probabilities)}
    return self.sidecar.labels[int(np.argmax(probabilities))], named

  def classify(self, gray: np.ndarray) -> list[Face]:
    """Every detected face of a 2-D uint8 grayscale image, cut out upright and framed
    like the training faces (faces.crop), classified."""
    faces = []
    for box in self.detector.detect(gray):
      label, probabilities = self.classify_face(faces_lib.crop(gray, box, self.framing))
      faces.append(Face(box, label, probabilities))
    return faces


def annotate(image_bgr: np.ndarray, faces: list[Face]) -> np.ndarray:
  """A copy of `image_bgr` with each face's box and label drawn."""
  out = image_bgr.copy()
  for face in faces:
    b = face.box
    cv2.rectangle(out, (b.x, b.y), (b.x + b.width, b.y + b.height), (0, 255, 0), 2)
    text = f'{face.label} {face.probabilities[face.label]:.2f}'
    cv2.putText(out, text, (b.x, max(12, b.y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                (0, 255, 0), 1, cv2.LINE_AA)
  return out
