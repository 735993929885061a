"""Finding faces for the edge runner with BlazeFace (edge.blazeface), and cutting each out
levelled by its eyes and framed like the training faces.

How a face is found (`found_by`):
  blazeface    BlazeFace short range on the whole image, or on one of a pyramid of
               overlapping tiles that shows smaller faces large enough for it;
  tracked      (video) BlazeFace on the window around where the face was in the frame
               before;
  whole_image  nothing found in a small, roughly square image: it is taken to be a face
               crop itself;
  given        --no-detect: the caller says the image is a face crop.

Every face found by BlazeFace is detected a second time in a window around it, turned by
the roll its eyes showed and large enough for the detector's best resolution: the second
look gives the box and keypoints from which `frame()` makes the crop.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Protocol

import cv2
import numpy as np

from edge import blazeface

# How a levelled detection becomes the square the training faces show: its side is
# `scale` times the detector's box width, its centre `dx` and `dy` box widths right and
# down of the box's centre (in the levelled face). `python benchmarks/face_framing.py`
# fits it on validation faces in the yardstick's frames, whose true square is known
# (docs/results/face_framing.md).
FRAMING = {'scale': 1.168, 'dx': -0.002, 'dy': -0.103}
# The smallest face, as a share of the window's side, that BlazeFace short range finds
# reliably: about 43 of its 128 input pixels (on the whole frame it found 40 % of the
# faces 31 input pixels wide and 82 % of those 46 wide; docs/results/face_finding.md).
COVERS = 0.34


@dataclasses.dataclass(frozen=True)
class Box:
  """A face in pixels of the original image: the square (x, y, width, height) the model
  sees once the image is turned by `roll` degrees about the square's centre
  (counter-clockwise, OpenCV's convention; 0: the face is level already)."""

  x: float
  y: float
  width: float
  height: float
  roll: float = 0.0
  found_by: str = 'blazeface'
  score: float = 1.0

  def as_list(self) -> list[int]:
    """[x, y, width, height], whole pixels."""
    return [int(round(v)) for v in (self.x, self.y, self.width, self.height)]

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


@dataclasses.dataclass(frozen=True)
class Window:
  """A square of the image (centre, side in pixels), turned by `roll` degrees."""

  cx: float
  cy: float
  side: float
  roll: float = 0.0
  inner_edges: tuple[bool, bool, bool, bool] = (False,) * 4  # left, top, right, bottom
  mirror: bool = False  # the detector sees the window's mirror image


def roll_of(keypoints: np.ndarray) -> float:
  """The degrees that level a face whose eyes are at keypoints[0] (the person's right,
  on the image's left) and keypoints[1]: positive when the person's left eye is lower."""
  (rx, ry), (lx, ly) = keypoints[0], keypoints[1]
  return math.degrees(math.atan2(ly - ry, lx - rx))


def frame(detection: blazeface.Detection, roll: float, framing: dict,
          found_by: str) -> Box:
  """The crop square of `detection` by `framing` (see FRAMING), in the image's pixels,
  for a face that turning the image by `roll` degrees levels (roll_of)."""
  x, y, width, height = detection.box
  side = width * framing['scale']
  # The offset is in the levelled face; in the image it turns with the face.
  turn = math.radians(roll)
  dx, dy = framing['dx'] * width, framing['dy'] * width
  cx = x + width / 2 + dx * math.cos(turn) - dy * math.sin(turn)
  cy = y + height / 2 + dx * math.sin(turn) + dy * math.cos(turn)
  return Box(float(cx - side / 2), float(cy - side / 2), float(side), float(side),
             roll=float(roll), found_by=found_by, score=float(detection.score))


def intersection(a: Box, b: Box) -> float:
  """The area two boxes share (their squares, ignoring roll), in pixels."""
  w = min(a.x + a.width, b.x + b.width) - max(a.x, b.x)
  h = min(a.y + a.height, b.y + b.height) - max(a.y, b.y)
  return w * h if w > 0 and h > 0 else 0.0


def _overlap(a: Box, b: Box) -> float:
  """Intersection over the smaller box's area."""
  return intersection(a, b) / min(a.width * a.height, b.width * b.height)


class FaceFinder:
  """BlazeFace on the whole image and on a pyramid of tiles, each face looked at again
  level and large, and the whole image where a small square image shows no face."""

  def __init__(self, detector: blazeface.BlazeFace | None = None,
               min_face: float = 48, whole_image_max_side: int = 256,
               framing: dict | None = None, check_mirror: bool = True):
    """Args:
      detector: BlazeFace short range (the default) or another edge.blazeface model.
      min_face: the smallest face searched for, in pixels (the model's input is 48):
        tiles are added until such a face fills COVERS of a tile. In an image larger
        than 20 such faces on its shorter side, the smallest is a twentieth of it, so
        that a photo costs at most some hundreds of detector runs. 0 (or less): the
        whole image only.
      whole_image_max_side: an image with nothing found, at most this many pixels on
        its longer side and at most 1.6 times as long as wide, is taken as a face crop;
        0 disables.
      framing: how a detection becomes the crop (FRAMING by default).
      check_mirror: a face found must be found in the mirror image too (refine).
    """
    self.detector = detector or blazeface.BlazeFace()
    self._min_face, self._check_mirror = min_face, check_mirror
    self._whole_image_max_side = whole_image_max_side
    self.framing = framing or FRAMING

  @classmethod
  def single_pass(cls, detector: blazeface.BlazeFace | None = None) -> 'FaceFinder':
    """The whole image only (as it is and with a margin), no tiles, no crop fallback."""
    return cls(detector, min_face=0, whole_image_max_side=0)

  def windows(self, height: int, width: int) -> list[Window]:
    """The whole image, as it is and with a margin, then levels of tiles overlapping by
    half, from tiles of the image's shorter side down by 0.6 a level, until the
    smallest face searched for (`min_face`) fills COVERS of a tile."""
    # The second, with a black margin of half the image on each side, finds a face
    # that fills the image, which BlazeFace misses without the margin.
    result = [Window(width / 2, height / 2, max(height, width)),
              Window(width / 2, height / 2, 2 * max(height, width))]
    if self._min_face <= 0:
      return result
    smallest = max(self._min_face, min(height, width) / 20)
    covered = COVERS * max(height, width)
    side = min(height, width) * (0.6 if height == width else 1.0)
    while covered > smallest:
      for cy in _tile_centres(height, side):
        for cx in _tile_centres(width, side):
          edges = (cx - side / 2 > 0.5, cy - side / 2 > 0.5,
                   cx + side / 2 < width - 0.5, cy + side / 2 < height - 0.5)
          result.append(Window(cx, cy, side, inner_edges=edges))
      covered, side = COVERS * side, side * 0.6
    return result

  def look(self, image: np.ndarray, window: Window) -> list[blazeface.Detection]:
    """BlazeFace in `window`, its detections in the image's pixels; those touching an
    edge of the window that lies inside the image (a face cut by a tile) are dropped."""
    size = self.detector.spec.input_size
    scale = size / window.side
    # Only the part of the image under the window is read: its bounding square.
    reach = window.side / 2 * (abs(math.cos(math.radians(window.roll)))
                               + abs(math.sin(math.radians(window.roll))))
    x0, y0 = max(0, int(window.cx - reach)), max(0, int(window.cy - reach))
    x1 = min(image.shape[1], int(math.ceil(window.cx + reach)))
    y1 = min(image.shape[0], int(math.ceil(window.cy + reach)))
    if x1 <= x0 or y1 <= y0:
      return []
    source, fx, fy = image[y0:y1, x0:x1], 1.0, 1.0
    # Shrink first where the warp alone would alias: a level window to its final size
    # (area averaging), a turned one to twice that (linear is enough at that factor).
    shrink, interpolation = 1.0, cv2.INTER_AREA
    if scale < 1 and window.roll == 0:
      shrink = scale
    elif scale < 0.5:
      shrink = 2 * scale
      interpolation = cv2.INTER_LINEAR if shrink >= 0.5 else cv2.INTER_AREA
    if shrink < 1:
      width, height = max(1, round((x1 - x0) * shrink)), max(1, round((y1 - y0) * shrink))
      source = cv2.resize(source, (width, height), interpolation=interpolation)
      fx, fy = width / (x1 - x0), height / (y1 - y0)
    # The window, turned and scaled, onto the detector's input square; the part
    # outside the image is black, as in MediaPipe's letterbox.
    to_input = cv2.getRotationMatrix2D((window.cx, window.cy), window.roll, scale)
    to_input[:, 2] += size / 2 - window.cx, size / 2 - window.cy
    from_source = np.array([[1 / fx, 0, x0], [0, 1 / fy, y0], [0, 0, 1]])
    square = cv2.warpAffine(source, to_input @ from_source, (size, size),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=0)
    if window.mirror:
      square = cv2.flip(square, 1)
    back = cv2.invertAffineTransform(to_input)
    margin = 0.02 * size
    left, top, right, bottom = window.inner_edges
    found = []
    for d in self.detector.detect(square):
      if window.mirror:
        d = _mirrored(d, size)
      x, y, w, h = d.box
      if ((left and x < margin) or (top and y < margin) or (right and x + w > size - margin)
          or (bottom and y + h > size - margin)):
        continue
      cx, cy = back @ np.array([x + w / 2, y + h / 2, 1.0])
      w, h = w / scale, h / scale
      # The box keeps the size the detector gave it in the (turned) window.
      found.append(blazeface.Detection((cx - w / 2, cy - h / 2, w, h),
                                       d.keypoints @ back[:, :2].T + back[:, 2], d.score))
    return found

  def refine(self, image: np.ndarray, detection: blazeface.Detection,
             check_mirror: bool | None = None) -> blazeface.Detection | None:
    """The face of `detection` seen again: in a window twice its size, turned by the
    roll of its eyes, so that it fills half the detector's input, level. None when this
    second look finds no face there or, with `check_mirror` (default: the finder's),
    when the detector does not find it in the mirror image of that window as well: a
    false face seldom passes both (docs/results/face_finding.md)."""
    if check_mirror is None:
      check_mirror = self._check_mirror
    x, y, width, height = detection.box
    window = Window(x + width / 2, y + height / 2, 2 * width, roll_of(detection.keypoints))
    near = self._near(image, window, width / 2)
    if not near or (check_mirror
                    and not self._near(image, dataclasses.replace(window, mirror=True),
                                       width / 2)):
      return None
    return max(near, key=lambda d: d.score)

  def _near(self, image: np.ndarray, window: Window, distance: float
            ) -> list[blazeface.Detection]:
    """The detections in `window` whose centre is within `distance` of its centre."""
    return [d for d in self.look(image, window)
            if math.hypot(d.box[0] + d.box[2] / 2 - window.cx,
                          d.box[1] + d.box[3] / 2 - window.cy) < distance]

  def detections(self, gray: np.ndarray) -> list[blazeface.Detection]:
    """The faces of a 2-D uint8 image (or a BGR one) as BlazeFace sees them level (each
    refined), one per face, best first."""
    found = []
    for window in self.windows(*gray.shape[:2]):
      found += self.look(gray, window)
    refined = [self.refine(gray, d) for d in _merged(found)]
    return _merged([d for d in refined if d is not None])

  def detect(self, gray: np.ndarray) -> list[Box]:
    """The faces of a 2-D uint8 image (or a BGR one) as crop squares, best first."""
    boxes = [frame(d, roll_of(d.keypoints), self.framing, 'blazeface')
             for d in FaceFinder.detections(self, gray)]
    if not boxes and self._is_face_crop(gray):
      return [Box(0, 0, gray.shape[1], gray.shape[0], found_by='whole_image')]
    return boxes

  def _is_face_crop(self, gray: np.ndarray) -> bool:
    height, width = gray.shape[:2]
    return (0 < max(height, width) <= self._whole_image_max_side
            and max(height, width) <= 1.6 * min(height, width))


class VideoFaceFinder(FaceFinder):
  """For video: each face of the frame before is looked for again in its window
  (`refine`), and one window of the photo finder's pyramid (down to `min_face`) is
  searched every `discover_every` frames while faces are followed, every frame while
  none is, the whole frame every other time. A frame costs about one detector run per
  face and a third of a run more; a new face that fills a third of the frame is found
  within 2 x `discover_every` frames, a smaller one within one round of the pyramid
  (about 100 searched windows at 640x480)."""

  def __init__(self, detector: blazeface.BlazeFace | None = None,
               min_face: float = 64, discover_every: int = 3,
               framing: dict | None = None):
    """Args as FaceFinder's; discover_every: frames between two searched windows."""
    super().__init__(detector, min_face=min_face, whole_image_max_side=0,
                     framing=framing)
    self._discover_every = discover_every
    self._shape, self._schedule = None, []
    self._previous: list[blazeface.Detection] = []
    self._frame = self._step = 0

  def _found(self, gray: np.ndarray) -> list[tuple[blazeface.Detection, str]]:
    if gray.shape[:2] != self._shape:
      self._shape, self._previous = gray.shape[:2], []
      whole, *others = self.windows(*self._shape)
      self._schedule = [w for other in others for w in (whole, other)]
    # A face followed was checked in the mirror when it was found.
    tracked = [d for d in (self.refine(gray, p, check_mirror=False) for p in self._previous)
               if d is not None]
    found = [(d, 'tracked') for d in tracked]
    if self._frame % self._discover_every == 0 or not tracked:
      window = self._schedule[self._step % len(self._schedule)]
      self._step += 1
      for d in self.look(gray, window):
        if all(_overlap(Box(*d.box), Box(*t.box)) <= 0.5 for t in tracked):
          refined = self.refine(gray, d)
          if refined is not None:
            found.append((refined, 'blazeface'))
    self._frame += 1
    how = {id(d): by for d, by in found}
    self._previous = _merged([d for d, _ in found])
    return [(d, how[id(d)]) for d in self._previous]

  def detections(self, gray: np.ndarray) -> list[blazeface.Detection]:
    """The faces of this frame (the next of the video), refined, best first."""
    return [d for d, _ in self._found(gray)]

  def detect(self, gray: np.ndarray) -> list[Box]:
    """The faces of this frame (the next of the video) as crop squares, best first."""
    return [frame(d, roll_of(d.keypoints), self.framing, by) for d, by in self._found(gray)]


def _tile_centres(length: int, side: float) -> list[float]:
  """Centres of tiles of `side` along `length`, overlapping by about half, the first
  and the last flush with the ends."""
  if side >= length:
    return [length / 2]
  count = math.ceil((length - side) / (side / 2)) + 1
  return list(np.linspace(side / 2, length - side / 2, count))


def _mirrored(detection: blazeface.Detection, size: int) -> blazeface.Detection:
  """A detection in the mirror image of a `size` square, in the square's own pixels
  (the person's right and left keypoints swapped back)."""
  x, y, w, h = detection.box
  points = detection.keypoints.copy()
  points[:, 0] = size - points[:, 0]
  points = points[[1, 0, 2, 3, 5, 4]]
  return blazeface.Detection((size - x - w, y, w, h), points, detection.score)


def _merged(detections: list[blazeface.Detection]) -> list[blazeface.Detection]:
  """Detections of several windows, one per face (the best-scored where boxes
  overlap by more than half the smaller)."""
  kept = []
  for d in sorted(detections, key=lambda d: -d.score):
    box = Box(*d.box)
    if all(_overlap(box, Box(*k.box)) <= 0.5 for k in kept):
      kept.append(d)
  return kept


def crop(gray: np.ndarray, box: Box) -> np.ndarray:
  """The square of `box` cut out level (a 'given' or 'whole_image' box as it is). Parts
  outside the image repeat its edge."""
  if box.found_by in ('given', 'whole_image'):
    x, y, w, h = box.as_list()
    return gray[y:y + h, x:x + w]
  cx, cy = box.centre
  to_square = cv2.getRotationMatrix2D((cx, cy), box.roll, 1.0)
  to_square[:, 2] += box.width / 2 - cx, box.height / 2 - cy
  size = max(1, int(round(box.width)))
  return cv2.warpAffine(gray, to_square, (size, size), flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
