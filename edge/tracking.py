"""Faces followed across video frames: each keeps a track id while it moves, and its
probabilities are smoothed over a time constant, so that its label does not flicker."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from edge import faces
from edge.faces import Box


def iou(a: Box, b: Box) -> float:
  """Intersection over union of two boxes."""
  inter = faces.intersection(a, b)
  return inter / (a.width * a.height + b.width * b.height - inter)


def _near(a: Box, b: Box) -> float:
  """How well `b` continues `a`: their IoU, or where they do not overlap (a fast move),
  a small positive number while b's centre is within a's width of a's centre."""
  overlap = iou(a, b)
  if overlap > 0:
    return overlap
  distance = math.hypot(a.centre[0] - b.centre[0], a.centre[1] - b.centre[1])
  return 1e-3 if distance < a.width else 0.0


@dataclasses.dataclass
class Track:
  """One face followed over frames."""

  id: int
  box: Box
  probabilities: np.ndarray  # smoothed
  t: float  # seconds of its last update
  missed: int = 0  # frames in a row without the face


class Tracker:
  """Gives each face of a frame the id of the track it continues (greedy matching by
  box overlap, or centre distance for a fast move), starts a track for a new face, ends
  one after `max_missed` frames without its face; ids are never reused in one run."""

  def __init__(self, smooth_s: float = 0.3, max_missed: int = 5):
    """Args:
      smooth_s: time constant of the exponential smoothing of each track's
        probabilities, in seconds; 0 for none.
      max_missed: frames in a row a track may go without its face before it ends.
    """
    self.smooth_s, self.max_missed = smooth_s, max_missed
    self.tracks: list[Track] = []
    self._next_id = 1

  def update(self, t: float, boxes: list[Box], probabilities: list[np.ndarray]
             ) -> list[Track]:
    """The tracks of the faces `boxes` (with their `probabilities`) seen at time `t`
    seconds, in the order of `boxes`."""
    pairs = sorted(((_near(track.box, box), i, j) for i, track in enumerate(self.tracks)
                    for j, box in enumerate(boxes)), reverse=True)
    track_of, used = {}, set()
    for score, i, j in pairs:
      if score <= 0:
        break
      if i not in used and j not in track_of:
        track_of[j] = self.tracks[i]
        used.add(i)
    result = []
    for j, (box, p) in enumerate(zip(boxes, probabilities)):
      p = np.asarray(p, np.float64)
      track = track_of.get(j)
      if track is None:
        track = Track(self._next_id, box, p, t)
        self._next_id += 1
        self.tracks.append(track)
      else:
        dt = max(t - track.t, 0.0)
        keep = math.exp(-dt / self.smooth_s) if self.smooth_s > 0 else 0.0
        track.probabilities = keep * track.probabilities + (1 - keep) * p
        track.box, track.t, track.missed = box, t, 0
      result.append(track)
    for i, track in enumerate(self.tracks):
      if i not in used and track not in result:
        track.missed += 1
    self.tracks = [k for k in self.tracks if k.missed <= self.max_missed]
    return result
