"""Finding faces for the edge runner: OpenCV's Haar cascade (ships inside
opencv-python-headless < 5), retried where a single pass misses, and how a found face is
cut out so that it is framed like the training faces.

Each Box says how its face was found (`found_by`):
  haar                the cascade on the image;
  haar_padded         nothing found: the cascade on the image with a border added around
                      it (a face that fills the image leaves the cascade no margin);
  haar_rolled         the cascade on a copy rotated by `roll` degrees (a tilted head),
                      where the upright passes found no face;
  haar_rolled_padded  the same on the image with a border;
  whole_image         nothing found in a small, roughly square image: it is taken to be
                      a face crop itself;
  given               --no-detect: the caller says the image is a face crop.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Protocol

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True)
class Box:
  """A face in pixels of the original image: the square (x, y, width, height) that holds
  it upright once the image is rotated by `roll` degrees about the square's centre
  (counter-clockwise, OpenCV's convention; 0: the face is upright already)."""

  x: int
  y: int
  width: int
  height: int
  roll: float = 0.0
  found_by: str = 'haar'

  def as_list(self) -> list[int]:
    return [self.x, self.y, self.width, self.height]

  @property
  def centre(self) -> tuple[float, float]:
    return self.x + self.width / 2, self.y + self.height / 2


class FaceDetector(Protocol):
  """Anything that finds face boxes in a grayscale image can replace FaceFinder."""

  def detect(self, gray: np.ndarray) -> list[Box]:
    """Returns the face boxes in a 2-D uint8 image."""


class WholeImage:
  """'Detects' the whole image: for inputs that are already cropped faces."""

  def detect(self, gray: np.ndarray) -> list[Box]:
    return [Box(0, 0, gray.shape[1], gray.shape[0], found_by='given')]


class HaarFaceDetector:
  """OpenCV's frontal-face Haar cascade, one pass, on a copy scaled to `detect_width`."""

  def __init__(self, detect_width: int = 320, scale_factor: float = 1.15,
               min_neighbors: int = 3, min_size: int = 24,
               cascade: str = 'haarcascade_frontalface_alt2.xml'):
    """Loads the cascade.

    Args:
      detect_width: images are scaled to this width before detection (down for speed;
        small images up, so that a face of 48 px is as large as the cascade needs).
      scale_factor: pyramid step of the cascade.
      min_neighbors: detections needed to keep a box (higher: fewer false faces).
      min_size: smallest face, in pixels of the scaled image.
      cascade: file name inside cv2.data.haarcascades, or a path. The alt2 cascade
        with 3 neighbours found more faces with fewer false ones than the default
        cascade with 5 (docs/results/face_finding.md).
    """
    path = cascade if '/' in cascade else cv2.data.haarcascades + cascade
    self._cascade = cv2.CascadeClassifier(path)
    if self._cascade.empty():
      raise FileNotFoundError(f'cannot load the Haar cascade {path}')
    self._detect_width = detect_width
    self._scale_factor, self._min_neighbors = scale_factor, min_neighbors
    self._min_size = (min_size, min_size)

  def scaled(self, gray: np.ndarray) -> tuple[np.ndarray, float]:
    """(`gray` scaled to the detection width, the scale factor)."""
    scale = self._detect_width / gray.shape[1]
    if scale == 1.0:
      return gray, scale
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(gray, None, fx=scale, fy=scale, interpolation=interpolation), scale

  def detect_unscaled(self, gray: np.ndarray, found_by: str = 'haar') -> list[Box]:
    """One pass of the cascade on `gray` as it is."""
    found = self._cascade.detectMultiScale(
        gray, scaleFactor=self._scale_factor, minNeighbors=self._min_neighbors,
        minSize=self._min_size)
    return [Box(*(int(v) for v in box), found_by=found_by) for box in found]

  def detect(self, gray: np.ndarray) -> list[Box]:
    small, scale = self.scaled(gray)
    return [_unscaled(box, scale) for box in self.detect_unscaled(small)]


def _unscaled(box: Box, scale: float) -> Box:
  """`box` found in an image scaled by `scale`, in pixels of the original."""
  return dataclasses.replace(box, x=int(round(box.x / scale)), y=int(round(box.y / scale)),
                             width=int(round(box.width / scale)),
                             height=int(round(box.height / scale)))


def _rotation(centre: tuple[float, float], degrees: float) -> np.ndarray:
  return cv2.getRotationMatrix2D(centre, degrees, 1.0)


def _overlaps(box: Box, others: list[Box]) -> bool:
  """Whether `box`'s centre lies inside another box (the same face found twice)."""
  cx, cy = box.centre
  return any(abs(cx - o.centre[0]) < o.width / 2 and abs(cy - o.centre[1]) < o.height / 2
             for o in others)


class FaceFinder:
  """The Haar cascade, then the retries a single pass needs (see the module docstring):
  rotated copies for rolled faces, a border for faces that fill the image, and the whole
  image when it is itself a small face crop."""

  def __init__(self, detector: HaarFaceDetector | None = None,
               rolls: tuple[float, ...] = (-15.0, 15.0, -30.0, 30.0),
               pad: float = 0.5, whole_image_max_side: int = 256):
    """Args:
      detector: the single pass (default: HaarFaceDetector()).
      rolls: degrees of the rotated copies searched for tilted faces, the smaller
        first (a face found at one roll is not searched for at the next); () for speed
        (video).
      pad: border added on each side, as a share of the image's longer side, when a
        pass finds nothing; 0 disables.
      whole_image_max_side: an image with nothing found, at most this many pixels on
        its longer side and at most 1.6 times as long as wide, is taken as a face crop;
        0 disables.
    """
    self.detector = detector or HaarFaceDetector()
    self._rolls, self._pad = rolls, pad
    self._whole_image_max_side = whole_image_max_side

  @classmethod
  def single_pass(cls, detector: HaarFaceDetector | None = None) -> 'FaceFinder':
    """The cascade once, no retries: the fast finder of video frames."""
    return cls(detector, rolls=(), pad=0, whole_image_max_side=0)

  def detect(self, gray: np.ndarray) -> list[Box]:
    # Every pass works on the copy at the detection width: retries on a large photo
    # cost what they cost on a small one.
    small, scale = self.detector.scaled(gray)
    boxes = self._detect_small(small)
    if not boxes and self._is_face_crop(gray):
      return [Box(0, 0, gray.shape[1], gray.shape[0], found_by='whole_image')]
    return [_unscaled(box, scale) for box in boxes]

  def _detect_small(self, gray: np.ndarray) -> list[Box]:
    boxes = self.detector.detect_unscaled(gray)
    padded, border = None, 0
    if self._pad:
      border = int(round(self._pad * max(gray.shape)))
      padded = cv2.copyMakeBorder(gray, border, border, border, border,
                                  cv2.BORDER_REPLICATE)
    if not boxes and self._pad:
      boxes = self._shifted(self.detector.detect_unscaled(padded, 'haar_padded'), border)
    boxes += self._rolled(gray, boxes, 'haar_rolled')
    if not boxes and self._pad:
      boxes = self._shifted(self._rolled(padded, [], 'haar_rolled_padded'), border)
    return boxes

  @staticmethod
  def _shifted(boxes: list[Box], border: int) -> list[Box]:
    """Boxes found in the image with a border of `border` pixels, in the image's pixels."""
    return [dataclasses.replace(b, x=b.x - border, y=b.y - border) for b in boxes]

  def _is_face_crop(self, gray: np.ndarray) -> bool:
    height, width = gray.shape
    return (0 < max(height, width) <= self._whole_image_max_side
            and max(height, width) <= 1.6 * min(height, width))

  def _rolled(self, gray: np.ndarray, found: list[Box], found_by: str) -> list[Box]:
    """Faces found on copies of `gray` rotated by each of `rolls`, but not in `found`."""
    height, width = gray.shape
    centre = (width / 2, height / 2)
    result = []
    for roll in self._rolls:
      # The copy is large enough to hold the whole rotated image.
      cos, sin = abs(math.cos(math.radians(roll))), abs(math.sin(math.radians(roll)))
      size = (int(width * cos + height * sin), int(width * sin + height * cos))
      forward = _rotation(centre, roll)
      forward[:, 2] += (size[0] - width) / 2, (size[1] - height) / 2
      rotated = cv2.warpAffine(gray, forward, size, borderMode=cv2.BORDER_REPLICATE)
      back = cv2.invertAffineTransform(forward)
      for box in self.detector.detect_unscaled(rotated, found_by):
        cx, cy = back @ np.array([*box.centre, 1.0])
        face = Box(int(round(cx - box.width / 2)), int(round(cy - box.height / 2)),
                   box.width, box.height, roll=roll, found_by=found_by)
        if not _overlaps(face, found + result):
          result.append(face)
    return result


# How a Haar box relates to the framing of the training faces: the training crop is a
# square `FRAMING['scale']` times the box's width, its centre moved by `FRAMING['dx']` and
# `FRAMING['dy']` box widths. `python benchmarks/face_framing.py` fits it on test faces
# placed in larger frames: the alt2 cascade's box matched the training framing within
# 5 % (scale 1.05, offsets under 0.01), and applying that fit did not change the
# yardstick (docs/results/face_framing.md), so the box is used as it is.
FRAMING = {'scale': 1.0, 'dx': 0.0, 'dy': 0.0}


def crop(gray: np.ndarray, box: Box, framing: dict | None = None) -> np.ndarray:
  """The face of `box` cut out upright as a square framed like the training faces
  (`framing`, default FRAMING; a 'given' or 'whole_image' box is taken as it is).
  Parts outside the image repeat its edge."""
  if box.found_by in ('given', 'whole_image'):
    return gray[box.y:box.y + box.height, box.x:box.x + box.width]
  framing = framing or FRAMING
  side = box.width * framing['scale']
  cx = box.centre[0] + framing['dx'] * box.width
  cy = box.centre[1] + framing['dy'] * box.width
  # Maps the output square onto the image: rotate about the face centre, then shift.
  to_square = _rotation((cx, cy), box.roll)
  to_square[:, 2] += side / 2 - cx, side / 2 - cy
  size = max(1, int(round(side)))
  return cv2.warpAffine(gray, to_square, (size, size), flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
