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
from fer_common import contract


@dataclasses.dataclass(frozen=True)
class Face:
  """One classified face."""

  box: Box
  label: str
  probabilities: dict[str, float]
  track: int | None = None  # video: the id the face keeps while it is followed

  def as_dict(self) -> dict:
    """The face as `edge classify` and `edge video` print it."""
    record = {'box': self.box.as_list(), 'roll': round(self.box.roll, 1),
              'found_by': self.box.found_by, 'label': self.label,
              'probabilities': self.probabilities}
    if self.track is not None:
      record = {'track': self.track, **record}
    return record


class FaceClassifier:
  """A .tflite expression model with its sidecar and a face detector."""

  def __init__(self, model_path: str | pathlib.Path, detector: FaceDetector,
               num_threads: int = 1):
    """Loads the model and the model.json beside it and checks that they fit.

    Raises:
      ModelError, sidecar_lib.SidecarError: naming the file and the mismatch.
    """
    self.model = LiteRTModel(model_path, num_threads=num_threads)
    self.sidecar = sidecar_lib.load(model_path)
    self.detector = detector
    if self.model.input_shape != self.sidecar.input_shape:
      raise ModelError(f'{model_path} takes input {self.model.input_shape} but its '
                       f'model.json says {self.sidecar.input_shape}: they do not belong '
                       'together.')
    if self.model.num_classes != len(self.sidecar.labels):
      raise ModelError(f'{model_path} has {self.model.num_classes} outputs but its '
                       f'model.json lists {len(self.sidecar.labels)} labels.')
    if self.model.labels is not None and self.model.labels != self.sidecar.labels:
      raise ModelError(f'the labels in the model.json beside {model_path} '
                       f'({", ".join(self.sidecar.labels)}) are not the ones inside the '
                       f'model ({", ".join(self.model.labels)}): model.json was changed '
                       'or belongs to another model; export again, or copy the .tflite '
                       'with its own model.json.')

  def probabilities(self, face: np.ndarray) -> np.ndarray:
    """Class probabilities of one grayscale face crop of any size, calibrated by the
    temperature that model.json records for the model."""
    height, width = self.sidecar.image_size
    if face.shape != (height, width):
      face = cv2.resize(face, (width, height), interpolation=cv2.INTER_AREA)
    raw = self.model.predict(self.sidecar.normalise(face))
    if self.sidecar.temperature == 1.0:
      return raw
    return contract.apply_temperature(raw, self.sidecar.temperature)

  def classify_face(self, face: np.ndarray) -> tuple[str, dict[str, float]]:
    """Label and probabilities of one grayscale face crop of any size."""
    probabilities = self.probabilities(face)
    named = {label: round(float(p), 6) for label, p in zip(self.sidecar.labels,
                                                              probabilities)}
    return self.sidecar.labels[int(np.argmax(probabilities))], named

  def classify(self, gray: np.ndarray) -> list[Face]:
    """Every detected face of a 2-D uint8 grayscale image, cut out level and framed
    like the training faces (faces.crop), classified."""
    faces = []
    for box in self.detector.detect(gray):
      label, probabilities = self.classify_face(faces_lib.crop(gray, box))
      faces.append(Face(box, label, probabilities))
    return faces


def annotate(image_bgr: np.ndarray, faces: list[Face]) -> np.ndarray:
  """A copy of `image_bgr` with each face's box and label drawn."""
  out = image_bgr.copy()
  for face in faces:
    x, y, width, height = face.box.as_list()
    # The crop square, turned as the face is (the crop levels it by box.roll).
    cx, cy = face.box.centre
    to_image = cv2.getRotationMatrix2D((cx, cy), -face.box.roll, 1.0)
    corners = np.array([[x, y], [x + width, y], [x + width, y + height], [x, y + height]],
                       np.float64) @ to_image[:, :2].T + to_image[:, 2]
    cv2.polylines(out, [np.round(corners).astype(np.int32)], True, (0, 255, 0), 2)
    text = f'{face.label} {face.probabilities[face.label]:.2f}'
    if face.track is not None:
      text = f'#{face.track} {text}'
    cv2.putText(out, text, (x, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                (0, 255, 0), 1, cv2.LINE_AA)
  return out
