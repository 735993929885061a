"""Per-frame classification of a video file or a camera (Picamera2 when importable):
faces followed by track, their probabilities smoothed, one JSON line per frame."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import pathlib
import sys
import time

import cv2
import numpy as np

from edge import timeline
from edge import tracking
from edge.classifier import Face
from edge.classifier import FaceClassifier
from edge.classifier import annotate
from fer_common import files


class VideoError(RuntimeError):
  """The source cannot be opened or read, or the output cannot be written."""


class _OpenCVSource:
  """A video file (timed by its own timestamps) or a camera (timed by the clock)."""

  def __init__(self, source: str):
    self._camera = self.live = source.isdigit()
    self._capture = cv2.VideoCapture(int(source) if self._camera else source)
    if not self._capture.isOpened():
      kind = 'camera' if self._camera else 'video file'
      raise VideoError(f'cannot open {kind} {source!r}')
    self.fps = self._capture.get(cv2.CAP_PROP_FPS) or 30.0
    self._start = time.monotonic()

  def read(self):
    """(frame, seconds since the start), or (None, None) at the end."""
    ok, frame = self._capture.read()
    if not ok:
      return None, None
    if self._camera:
      return frame, time.monotonic() - self._start
    return frame, self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000

  def close(self):
    self._capture.release()


class _PicameraSource:
  """The Raspberry Pi camera through Picamera2 (only importable on a Pi)."""

  live = True

  def __init__(self):
    from picamera2 import Picamera2  # pylint: disable=g-import-not-at-top
    try:
      self._camera = Picamera2()
      self._camera.configure(self._camera.create_video_configuration(
          main={'size': (640, 480), 'format': 'RGB888'}))
      self._camera.start()
    except Exception as e:  # Picamera2 raises several types when no camera is attached
      raise VideoError(f'cannot open the Pi camera: {e}') from e
    self.fps = 30.0
    self._start = time.monotonic()

  def read(self):
    """(frame, seconds since the start); RGB888 is BGR byte order in OpenCV terms."""
    return self._camera.capture_array(), time.monotonic() - self._start

  def close(self):
    self._camera.stop()


def open_source(source: str):
  """A frame source: 'picamera' (or a camera index on a Pi with Picamera2), else OpenCV."""
  if source == 'picamera' or source.isdigit():
    try:
      return _PicameraSource()
    except ImportError:
      if source == 'picamera':
        raise VideoError('Picamera2 is not installed (sudo apt install '
                         'python3-picamera2)') from None
  return _OpenCVSource(source)


CSV_COLUMNS = ('t', 'track', 'x', 'y', 'width', 'height', 'label')


def tracked_faces(classifier: FaceClassifier, tracker: tracking.Tracker,
                  gray: np.ndarray, t: float) -> list[Face]:
  """The faces of one frame at `t` seconds, each with its track id and its track's
  smoothed probabilities; `label` is their argmax."""
  faces = classifier.classify(gray)
  tracks = tracker.update(t, [f.box for f in faces],
                          [list(f.probabilities.values()) for f in faces])
  labels = classifier.sidecar.labels
  return [dataclasses.replace(
      face, track=track.id, label=labels[int(np.argmax(track.probabilities))],
      probabilities={n: round(float(p), 6) for n, p in zip(labels, track.probabilities)})
          for face, track in zip(faces, tracks)]


def frame_record(number: int, t: float, faces: list[Face]) -> dict:
  """The record of one frame, as `edge video` prints it and `edge serve` sends it."""
  return {'frame': number, 't': round(t, 3), 'faces': [f.as_dict() for f in faces]}


def run(classifier: FaceClassifier, source: str, output: str | None = None,
        show: bool = False, max_frames: int = 0, smooth_s: float = 0.3,
        csv_path: str | None = None, timeline_path: str | None = None) -> int:
  """Classifies frames until the stream ends, max_frames, Ctrl-C or SIGTERM; prints FPS.

  Each frame's faces go to stdout as one JSON line ({'frame', 't', 'faces'}, each face
  with its `track`); FPS every 30 frames and a summary go to stderr. `csv_path` gets one
  row per face per frame, written whole when the run ends; `timeline_path` a picture of
  each track's expression over time (edge.timeline).
  """
  for path, flag in ((output, '--output'), (csv_path, '--csv'),
                     (timeline_path, '--timeline')):
    if path and not pathlib.Path(path).resolve().parent.is_dir():
      raise VideoError(f'{flag} {path}: the folder {pathlib.Path(path).parent} does '
                       'not exist; create it first')
  tracker = tracking.Tracker(smooth_s)
  frames_in = open_source(source)
  writer, frames, start, duration = None, 0, time.perf_counter(), 0.0
  samples: dict[int, list] = {}
  with contextlib.ExitStack() as stack:
    rows = None
    if csv_path:
      table = stack.enter_context(files.replaced(csv_path)).open('w', newline='')
      stack.callback(table.close)
      rows = csv.writer(table)
      rows.writerow([*CSV_COLUMNS, *classifier.sidecar.labels])
    try:
      while not max_frames or frames < max_frames:
        frame, t = frames_in.read()
        if frame is None:
          break
        faces = tracked_faces(classifier, tracker,
                              cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), t)
        frames, duration = frames + 1, t
        for f in faces:  # recorded before printed: a frame printed is in every file
          samples.setdefault(f.track, []).append((t, list(f.probabilities.values())))
        if rows:
          for f in faces:
            rows.writerow([round(t, 3), f.track, *f.box.as_list(), f.label,
                           *f.probabilities.values()])
        print(json.dumps(frame_record(frames, t, faces)), flush=True)
        if output or show:
          drawn = annotate(frame, faces)
          if output:
            if writer is None:
              writer = _open_writer(output, drawn.shape, frames_in.fps)
            writer.write(drawn)
          if show:
            _show(drawn)
        if frames % 30 == 0:
          print(f'{frames} frames, {frames / (time.perf_counter() - start):.1f} FPS',
                file=sys.stderr, flush=True)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (edge.cli turns it into one)
      pass
    finally:
      frames_in.close()
      if writer is not None:
        writer.release()
  elapsed = time.perf_counter() - start
  print(f'done: {frames} frames in {elapsed:.1f} s, {frames / max(elapsed, 1e-9):.1f} FPS',
        file=sys.stderr)
  if frames == 0:
    raise VideoError(f'no frame could be read from {source!r}')
  if timeline_path:
    timeline.write(timeline_path, samples, classifier.sidecar.labels, duration)
    print(f'timeline: {timeline_path}', file=sys.stderr)
  return 0


def _open_writer(path: str, shape, fps: float):
  fourcc = cv2.VideoWriter_fourcc(*('mp4v' if path.endswith('.mp4') else 'MJPG'))
  writer = cv2.VideoWriter(path, fourcc, fps, (shape[1], shape[0]))
  if not writer.isOpened():
    raise VideoError(f'cannot write video {path} (use .mp4 or .avi)')
  return writer


def _show(frame) -> None:
  try:
    cv2.imshow('fer-edge', frame)
    if cv2.waitKey(1) & 0xFF == ord('q'):
      raise KeyboardInterrupt
  except cv2.error as e:
    raise VideoError('this OpenCV build cannot show windows (opencv-python-headless); '
                     'use --output FILE instead of --show') from e
