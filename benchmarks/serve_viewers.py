"""Frames per second of `python -m edge serve` with four viewers against none, written to
BENCHMARKS.md:

  python benchmarks/serve_viewers.py [--seconds=15]

The source is a 640x480 video of two moving heads (matplotlib's sample portrait and its
mirror image) at 120 frames per second, played in a loop: faster than one core processes
it, so the server runs at what capture, face finding, tracking, classification, drawing
and JPEG encoding cost. Its own count of frames per second (the `fps` of the records on
/faces, which a probe reads in both runs) is taken with no viewer of /stream.mjpg, then
with four reading it as fast as they can.
"""

import json
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from absl import app
from absl import flags
import cv2
import matplotlib
import numpy as np

import markdown_section
from fer_common import machine

FLAGS = flags.FLAGS
SECTION = '<!-- serve_viewers.py -->'
REPO = pathlib.Path(__file__).resolve().parents[1]
SOURCE_FPS = 1000


def define_flags() -> None:
  """Defines the command-line flags."""
  flags.DEFINE_integer('seconds', 15, 'Seconds measured per row.', lower_bound=3)
  flags.DEFINE_string('out', 'BENCHMARKS.md', 'Markdown file to update.')


def write_video(path: pathlib.Path, frames: int = 240) -> None:
  """Two heads crossing a 640x480 frame, at SOURCE_FPS."""
  portrait = cv2.imread(matplotlib.get_data_path() + '/sample_data/grace_hopper.jpg')
  head = cv2.resize(portrait[90:390, 116:416], (190, 190), interpolation=cv2.INTER_AREA)
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), SOURCE_FPS,
                           (640, 480))
  for k in range(frames):
    canvas = np.full((480, 640, 3), 110, np.uint8)
    x = int(10 + k * 400 / frames)
    canvas[10:200, x:x + 190] = head
    canvas[280:470, 440 - x:630 - x] = head[:, ::-1]
    writer.write(canvas)
  writer.release()


def read_stream(url: str, stop: threading.Event, counts: list, index: int) -> None:
  """A viewer of /stream.mjpg, reading as fast as it can, counting frames."""
  with urllib.request.urlopen(url, timeout=10) as response:
    while not stop.is_set():
      line = response.readline()
      if line.lower().startswith(b'content-length:'):
        response.readline()
        response.read(int(line.split(b':')[1]))
        counts[index] += 1


def server_fps(base: str, seconds: int) -> list[float]:
  """The server's own frames per second, read from /faces every record for `seconds`."""
  values, end = [], time.monotonic() + seconds
  with urllib.request.urlopen(f'{base}/faces?token=bench', timeout=10) as response:
    while time.monotonic() < end:
      line = response.readline()
      if line.startswith(b'data: '):
        values.append(json.loads(line[6:])['fps'])
  return values


def measure(base: str, viewers: int, seconds: int) -> dict:
  """Median server FPS and each viewer's frames per second."""
  stop, counts = threading.Event(), [0] * viewers
  threads = [threading.Thread(target=read_stream, daemon=True,
                              args=(f'{base}/stream.mjpg?token=bench', stop, counts, i))
             for i in range(viewers)]
  for thread in threads:
    thread.start()
  time.sleep(2)  # past the start of the streams and the history of the probe
  start_counts = list(counts)
  fps = server_fps(base, seconds)
  received = [(c - s) / seconds for c, s in zip(counts, start_counts)]
  stop.set()
  return {'server_fps': float(np.median(fps[len(fps) // 4:])), 'viewer_fps': received}


def main(argv):
  del argv
  with tempfile.TemporaryDirectory() as folder:
    video = pathlib.Path(folder) / 'heads.avi'
    write_video(video)
    process = subprocess.Popen(
        [sys.executable, '-m', 'edge', 'serve', str(video), '--loop', '--port', '0',
         '--token', 'bench', '--threads', '1'],
        cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
      port = next(re.search(r':(\d+)/\?token', line).group(1) for line in process.stderr
                  if 'Serving' in line)
      base = f'http://127.0.0.1:{port}'
      time.sleep(3)
      rows = [(n, measure(base, n, FLAGS.seconds)) for n in (0, 4, 0)]
    finally:
      process.send_signal(signal.SIGTERM)
      process.wait(timeout=30)
  lines = ['## Live view (`python benchmarks/serve_viewers.py`)', '',
           f'`edge serve` with the fast model on one thread, from a 640x480 file of two '
           f'moving faces at {SOURCE_FPS} frames per second in a loop (faster than the '
           'server can go, so it runs flat out); the server\'s own frames per second '
           f'(median over {FLAGS.seconds} s), with no viewer of the stream, then four '
           f'reading it as fast as they can, then none again. Measured on '
           f'{machine.describe()}, not on a Pi.', '',
           '| viewers of /stream.mjpg | server frames per second | frames per second each '
           'viewer received |', '|---:|---:|---|']
  for viewers, r in rows:
    each = ', '.join(f'{v:.1f}' for v in r['viewer_fps']) or '-'
    lines.append(f"| {viewers} | {r['server_fps']:.1f} | {each} |")
  markdown_section.publish(FLAGS.out, SECTION, lines)


if __name__ == '__main__':
  define_flags()
  app.run(main)
