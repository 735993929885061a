"""Face detection for the edge runner: OpenCV's Haar cascade (ships inside
opencv-python-headless < 5), or the whole image for already-cropped faces."""

from __future__ import annotations

import dataclasses
from typing import Protocol

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True)
class Box:
  """A face box in pixels of the original image."""

  x: int
  y: int
  width: int
  height: int

  def as_list(self) -> list[int]:
    return [self.x, self.y, self.width, self.height]


class FaceDetector(Protocol):
  """Anything that finds face boxes in a grayscale image can replace the Haar cascade."""

  def detect(self, gray: np.ndarray) -> list[Box]:
    """Returns the face boxes in a 2-D uint8 image."""


class WholeImage:
  """'Detects' the whole image: for inputs that are already cropped faces."""

  def detect(self, gray: np.ndarray) -> list[Box]:
    return [Box(0, 0, gray.shape[1], gray.shape[0])]


class HaarFaceDetector:
  """OpenCV's frontal-face Haar cascade, run on a downscaled copy for speed."""

  def __init__(self, detect_width: int = 320, scale_factor: float = 1.15,
               min_neighbors: int = 5, min_size: int = 24,
               cascade: str = 'haarcascade_frontalface_default.xml'):
    """Loads the cascade.

    Args:
      detect_width: images wider than this are downscaled to it before detection.
      scale_factor: pyramid step of the cascade.
      min_neighbors: detections needed to keep a box (higher: fewer false faces).
      min_size: smallest face, in pixels of the downscaled image.
      cascade: file name inside cv2.data.haarcascades, or a path.
    """
    path = cascade if '/' in cascade else cv2.data.haarcascades + cascade
    self._cascade = cv2.CascadeClassifier(path)
    if self._cascade.empty():
      raise FileNotFoundError(f'cannot load the Haar cascade {path}')
    self._detect_width = detect_width
    self._scale_factor, self._min_neighbors = scale_factor, min_neighbors
    self._min_size = (min_size, min_size)

  def detect(self, gray: np.ndarray) -> list[Box]:
    scale = min(1.0, self._detect_width / gray.shape[1])
    small = gray if scale == 1.0 else cv2.resize(
        gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    found = self._cascade.detectMultiScale(
        small, scaleFactor=self._scale_factor, minNeighbors=self._min_neighbors,
        minSize=self._min_size)
    return [Box(*(int(round(v / scale)) for v in box)) for box in found]
