"""Per-frame classification of a video file or a camera (Picamera2 when importable)."""

from __future__ import annotations

import json
import pathlib
import sys
import time

import cv2

from edge.classifier import FaceClassifier
from edge.classifier import annotate


class VideoError(RuntimeError):
  """The source cannot be opened or read, or the output cannot be written."""


class _OpenCVSource:

  def __init__(self, source: str):
    self._capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not self._capture.isOpened():
      kind = 'camera' if source.isdigit() else 'video file'
      raise VideoError(f'cannot open {kind} {source!r}')
    self.fps = self._capture.get(cv2.CAP_PROP_FPS) or 30.0

  def read(self):
    ok, frame = self._capture.read()
    return frame if ok else None

  def close(self):
    self._capture.release()


class _PicameraSource:
  """The Raspberry Pi camera through Picamera2 (only importable on a Pi)."""

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

  def read(self):
    return self._camera.capture_array()  # RGB888 is BGR byte order in OpenCV terms

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


def run(classifier: FaceClassifier, source: str, output: str | None = None,
        show: bool = False, max_frames: int = 0) -> int:
  """Classifies frames until the stream ends, max_frames, or Ctrl-C; prints FPS.

  Each frame's faces go to stdout as one JSON line; FPS every 30 frames and a summary go
  to stderr.
  """
  if output and not pathlib.Path(output).resolve().parent.is_dir():
    raise VideoError(f'--output {output}: the folder {pathlib.Path(output).parent} does '
                     'not exist; create it first')
  frames_in = open_source(source)
  writer, frames, start = None, 0, time.perf_counter()
  try:
    while not max_frames or frames < max_frames:
      frame = frames_in.read()
      if frame is None:
        break
      faces = classifier.classify(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
      frames += 1
      print(json.dumps({'frame': frames, 'faces': [f.as_dict() for f in faces]}),
            flush=True)
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
  except KeyboardInterrupt:
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
