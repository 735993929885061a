"""`edge video FILE --timeline out.png`: each track's expression over time as a picture,
drawn with OpenCV (no plotting library on the Pi)."""

from __future__ import annotations

import pathlib

import cv2
import numpy as np

from fer_common import files

# BGR, one per class in the model's label order (as the live page colours them).
COLOURS = [(46, 87, 228), (181, 94, 160), (58, 193, 243), (173, 163, 143), (216, 125, 59),
           (80, 175, 76), (0, 140, 255)]
WIDTH, ROW, LEFT, TOP, BOTTOM = 1000, 70, 70, 40, 60


def draw(samples: dict[int, list[tuple[float, np.ndarray]]], labels: tuple[str, ...],
         duration: float) -> np.ndarray:
  """The picture: a band per track, its probabilities stacked from the first class up at
  each moment it was seen, the label (the largest) as a strip above; time along x."""
  tracks = sorted(samples)
  height = TOP + ROW * max(len(tracks), 1) + BOTTOM
  image = np.full((height, WIDTH, 3), 255, np.uint8)
  span = max(duration, 1e-6)
  x_of = lambda t: int(LEFT + (WIDTH - LEFT - 20) * t / span)
  cv2.putText(image, 'expression over time, per face (track)', (LEFT, 24),
              cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
  for row, track in enumerate(tracks):
    top = TOP + row * ROW
    cv2.putText(image, f'#{track}', (8, top + ROW // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                (0, 0, 0), 1, cv2.LINE_AA)
    points = samples[track]
    for k, (t, p) in enumerate(points):
      x0 = x_of(t)
      # A gap longer than a second means the face was away: leave it blank.
      following = points[k + 1][0] if k + 1 < len(points) else t
      x1 = max(x0 + 1, x_of(min(following, t + 1.0)))
      band_top, band_bottom = top + 14, top + ROW - 6
      y = band_bottom
      for c, share in enumerate(p):
        h = share * (band_bottom - band_top)
        cv2.rectangle(image, (x0, int(round(y - h))), (x1, int(round(y))),
                      COLOURS[c % len(COLOURS)], -1)
        y -= h
      cv2.rectangle(image, (x0, top + 4), (x1, top + 10),
                    COLOURS[int(np.argmax(p)) % len(COLOURS)], -1)
  axis = TOP + ROW * max(len(tracks), 1) + 10
  cv2.line(image, (LEFT, axis), (WIDTH - 20, axis), (0, 0, 0), 1)
  step = max(1, int(np.ceil(span / 10)))
  for second in range(0, int(span) + 1, step):
    x = x_of(second)
    cv2.line(image, (x, axis), (x, axis + 5), (0, 0, 0), 1)
    cv2.putText(image, f'{second} s', (x - 8, axis + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                (0, 0, 0), 1, cv2.LINE_AA)
  x = LEFT
  for c, label in enumerate(labels):
    cv2.rectangle(image, (x, height - 18), (x + 12, height - 6),
                  COLOURS[c % len(COLOURS)], -1)
    cv2.putText(image, label, (x + 16, height - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (0, 0, 0), 1, cv2.LINE_AA)
    x += 30 + 9 * len(label)
  return image


def write(path: str | pathlib.Path, samples: dict, labels: tuple[str, ...],
          duration: float) -> None:
  """Draws the timeline and writes it to `path` (PNG), whole or not at all."""
  with files.replaced(path, suffix=pathlib.Path(path).suffix or '.png') as temp:
    if not cv2.imwrite(str(temp), draw(samples, labels, duration)):
      raise OSError(f'cannot write {path}')
