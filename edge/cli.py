"""`python -m edge {classify,video,serve,bench}`: facial-expression recognition on a Raspberry
Pi with LiteRT and OpenCV only (no TensorFlow)."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import cv2
import numpy as np

from edge import blazeface
from edge import faces as faces_lib
from edge import images
from edge import model_files
from edge import serve as serve_lib
from edge import sidecar as sidecar_lib
from fer_common import signals
from fer_common import timing
from edge import video as video_lib
from edge.classifier import FaceClassifier
from edge.classifier import annotate
from edge.faces import FaceFinder
from edge.faces import VideoFaceFinder
from edge.faces import WholeImage
from edge.litert_model import ModelError

SHIPPED = ('accurate', 'fast')
SMOOTH_S = 0.3  # the --smooth default, chosen by benchmarks/smoothing.py


def shipped_model(name: str) -> pathlib.Path:
  """The int8 file of the shipped model `name`."""
  return model_files.find(name, 'int8.tflite') / 'int8.tflite'


def _seconds(value: str) -> float:
  seconds = float(value)
  if not 0 <= seconds <= 60:
    raise argparse.ArgumentTypeError(f'{value}: give seconds from 0 to 60')
  return seconds


def model_path(value: str) -> pathlib.Path:
  """--model: a shipped model's name, or the path of a .tflite."""
  return shipped_model(value) if value in SHIPPED else pathlib.Path(value)


def make_finder(args, still: bool):
  """The face finder the flags ask for: for still images the whole tile pyramid, for
  video the faces of the frame before and one window of the pyramid a few frames."""
  if getattr(args, 'no_detect', False):
    return WholeImage()
  detector = blazeface.BlazeFace(num_threads=args.threads)
  return FaceFinder(detector) if still else VideoFaceFinder(detector)


def make_classifier(args, still: bool) -> FaceClassifier:
  """The classifier the flags ask for."""
  return FaceClassifier(args.model, make_finder(args, still), num_threads=args.threads)


def classify(args) -> int:
  """Prints one JSON object per image; returns 1 if any image failed."""
  classifier = make_classifier(args, still=True)
  if args.annotate:
    pathlib.Path(args.annotate).mkdir(parents=True, exist_ok=True)
  failed = 0
  for path in images.expand(args.paths):
    record = {'file': str(path), 'faces': [], 'error': None}
    try:
      # Colour only where annotated copies are written: gray needs a third of the memory.
      image = images.read(path, color=bool(args.annotate))
      gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if args.annotate else image
      faces = classifier.classify(gray)
      record['faces'] = [face.as_dict() for face in faces]
      if not faces:
        record['error'] = 'no face found (use --no-detect for already cropped faces)'
      if args.annotate:
        cv2.imwrite(str(pathlib.Path(args.annotate) / f'{path.stem}.png'),
                    annotate(image, faces))
    except images.ImageError as e:
      record['error'] = str(e)
    failed += record['error'] is not None
    print(json.dumps(record), flush=True)
  if failed:
    print(f'{failed} image(s) failed; see their "error" field.', file=sys.stderr)
  return 1 if failed else 0


def _percentiles(times_ms: list[float]) -> dict[str, float]:
  p50, p90, p99 = np.percentile(times_ms, [50, 90, 99])
  return {'median_ms': round(float(p50), 3), 'p90_ms': round(float(p90), 3),
          'p99_ms': round(float(p99), 3), 'fps': round(1000.0 / float(p50), 1)}


def _time(function, runs: int) -> dict[str, float]:
  return _percentiles(timing.call_times_ms(function, runs, warmup=min(10, runs)))


def bench(args) -> int:
  """Prints latency of the model alone and of detect+classify, as JSON: the same frame
  again and again through the video path, so each costs what a frame of a video costs
  once its faces are followed (edge.faces.VideoFaceFinder)."""
  cv2.setNumThreads(args.threads)
  classifier = make_classifier(args, still=False)
  if args.image:
    frame = images.read(pathlib.Path(args.image))
  else:
    frame = np.random.default_rng(0).integers(0, 256, (480, 640), dtype=np.uint8)
  face = np.full(classifier.sidecar.image_size, 128, np.uint8)

  def detect_and_classify():
    boxes = classifier.detector.detect(frame)
    # With no face in the frame, still classify one crop: the cost of a frame with a face.
    for box in boxes or [None]:
      classifier.classify_face(face if box is None else faces_lib.crop(frame, box))

  result = {
      'model': str(args.model), 'threads': args.threads,
      'frame': f'{frame.shape[1]}x{frame.shape[0]}',
      'faces_in_frame': len(classifier.detector.detect(frame)),
      'model_only': _time(lambda: classifier.classify_face(face), args.runs),
      'detect_and_classify': _time(detect_and_classify, args.runs),
  }
  print(json.dumps(result, indent=2))
  return 0


def video(args) -> int:
  """Classifies every frame of a video or camera; prints FPS; returns 0 at its end."""
  classifier = make_classifier(args, still=False)
  return video_lib.run(classifier, args.source, output=args.output, show=args.show,
                       max_frames=args.max_frames, smooth_s=args.smooth,
                       csv_path=args.csv, timeline_path=args.timeline)


def serve(args) -> int:
  """Serves the camera or file in a browser until Ctrl-C, SIGTERM or the file's end."""
  classifier = make_classifier(args, still=False)
  return serve_lib.serve(classifier, args.source, host=args.host, port=args.port,
                         token=args.token, max_viewers=args.max_viewers,
                         smooth_s=args.smooth, loop=args.loop,
                         model_name=f'{args.model.parent.name}/{args.model.name}')


def _add_smooth_flag(command: argparse.ArgumentParser) -> None:
  command.add_argument('--smooth', type=_seconds, default=SMOOTH_S, metavar='SECONDS',
                       help='time constant over which each face\'s probabilities are '
                       f'smoothed (0: none; default {SMOOTH_S}, docs/results/smoothing.md)')


def _add_model_flag(command: argparse.ArgumentParser, default: str) -> None:
  # Each command its own flag: a default set on a shared parent flag is shared too.
  command.add_argument('--model', type=model_path, default=shipped_model(default),
                       help=f'{" or ".join(SHIPPED)} (the shipped models, README) or a '
                       f'.tflite with its model.json beside it (default: {default})')


def parser() -> argparse.ArgumentParser:
  """The command line."""
  main = argparse.ArgumentParser(prog='python -m edge', description=__doc__)
  common = argparse.ArgumentParser(add_help=False)
  common.add_argument('--threads', type=int, default=1, help='CPU threads (default 1)')
  commands = main.add_subparsers(dest='command', required=True)
  c = commands.add_parser('classify', parents=[common], help='classify image files')
  c.add_argument('paths', nargs='+', help='image files or folders of images')
  c.add_argument('--no-detect', action='store_true',
                 help='each image is already a cropped face (like the dataset)')
  c.add_argument('--annotate', metavar='DIR', help='write annotated copies here')
  _add_model_flag(c, 'accurate')
  c.set_defaults(run=classify)
  v = commands.add_parser('video', parents=[common], help='classify a video or camera')
  v.add_argument('source', help='video file, camera index (0), or "picamera"')
  v.add_argument('--output', help='write the annotated video here (.mp4/.avi)')
  v.add_argument('--show', action='store_true', help='show a window (needs a GUI '
                 'OpenCV build, not opencv-python-headless)')
  v.add_argument('--max-frames', type=int, default=0, help='stop after N frames')
  v.add_argument('--no-detect', action='store_true', help='frames are cropped faces')
  _add_smooth_flag(v)
  v.add_argument('--csv', metavar='FILE', help='also write one row per face per frame '
                 '(t, track, box, label, probabilities)')
  v.add_argument('--timeline', metavar='PNG', help='also draw each face\'s expression '
                 'over time into this picture')
  _add_model_flag(v, 'fast')
  v.set_defaults(run=video)
  s = commands.add_parser('serve', parents=[common], help='the camera in a browser: the '
                          'annotated stream, each face\'s expression over time')
  s.add_argument('source', help='"picamera", a camera index (0) or a video file')
  s.add_argument('--host', default='127.0.0.1', help='address to listen on (default: '
                 'this machine only; 0.0.0.0 lets every machine that can reach it in)')
  s.add_argument('--port', type=int, default=8080, help='port (default 8080)')
  s.add_argument('--token', help='the token every request must carry (default: a new '
                 'random one, printed with the URL)')
  s.add_argument('--max-viewers', type=int, default=4, help='streams served at once '
                 '(default 4); the next viewer gets 503')
  s.add_argument('--loop', action='store_true', help='play a video file again and again')
  _add_smooth_flag(s)
  _add_model_flag(s, 'fast')
  s.set_defaults(run=serve, no_detect=False)
  b = commands.add_parser('bench', parents=[common], help='measure latency and FPS')
  b.add_argument('--image', help='frame to detect faces in (default: a 640x480 noise '
                 'frame, with one face crop classified per frame)')
  b.add_argument('--runs', type=int, default=200, help='timed runs')
  _add_model_flag(b, 'fast')
  b.set_defaults(run=bench)
  return main


def main(argv: list[str] | None = None) -> int:
  """Runs a subcommand; clear one-line errors, never a stack trace, for bad input."""
  args = parser().parse_args(argv)
  signals.sigterm_as_interrupt()  # video and serve end as on Ctrl-C, the camera released
  try:
    return args.run(args)
  except (ModelError, sidecar_lib.SidecarError, images.ImageError,
          video_lib.VideoError, blazeface.DetectorError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    return 130
