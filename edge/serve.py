"""`python -m edge serve SOURCE`: the camera (or a video file) in a browser, each face
with its expression over time, served by the standard library's HTTP server.

Routes, each needing the token (`?token=T` or `Authorization: Bearer T`; 401 without):
  /             the page (edge/live.html, read once at start): the annotated stream, each
                tracked face's label and probabilities, a timeline of the last minute,
                frames per second and the model;
  /stream.mjpg  multipart/x-mixed-replace JPEG frames;
  /faces        server-sent events, one JSON record per frame, as `edge video` prints
                (with the frames per second): those of the last minute first.
Anything else is 404. Capture and inference run in one thread at the source's pace; each
frame is encoded once and handed to every viewer, and a viewer that reads slowly skips
frames instead of slowing the others. At most `max_viewers` streams of each kind at once
(503 beyond).
"""

from __future__ import annotations

import collections
import dataclasses
import hmac
import http.server
import json
import pathlib
import secrets
import socketserver
import sys
import threading
import time
import urllib.parse

import cv2

from edge import tracking
from edge import video as video_lib
from edge.classifier import FaceClassifier
from edge.classifier import annotate

PAGE = pathlib.Path(__file__).with_name('live.html')
JPEG_QUALITY = 80
WRITE_TIMEOUT_S = 10  # a viewer that takes no data for this long is dropped


HISTORY_S = 60  # the records a new /faces viewer gets first: the page's timeline


@dataclasses.dataclass
class Frame:
  """One processed frame as every viewer gets it."""

  number: int
  t: float
  jpeg: bytes
  record: bytes  # the JSON line


class Broadcast:
  """The newest frame, and a way to wait for the next one without holding up the
  producer."""

  def __init__(self):
    self._changed = threading.Condition()
    self._frame: Frame | None = None
    self._history: collections.deque[Frame] = collections.deque()
    self.closed = False

  def publish(self, frame: Frame) -> None:
    with self._changed:
      self._frame = frame
      self._history.append(dataclasses.replace(frame, jpeg=b''))
      while self._history[0].t < frame.t - HISTORY_S:
        self._history.popleft()
      self._changed.notify_all()

  def history(self) -> list[Frame]:
    """The frames of the last HISTORY_S seconds, without their pictures."""
    with self._changed:
      return list(self._history)

  def close(self) -> None:
    with self._changed:
      self.closed = True
      self._changed.notify_all()

  def next_after(self, number: int, timeout: float = 1.0) -> Frame | None:
    """The newest frame if it is newer than `number` (waiting up to `timeout` seconds
    for one); None if there is none yet or the broadcast is closed."""
    with self._changed:
      self._changed.wait_for(
          lambda: self.closed or (self._frame is not None and self._frame.number > number),
          timeout)
      if self.closed or self._frame is None or self._frame.number <= number:
        return None
      return self._frame


class Pipeline(threading.Thread):
  """Reads the source at its pace (a file at its own frame rate), finds, follows and
  classifies the faces, draws them, and publishes each frame once."""

  def __init__(self, classifier: FaceClassifier, source: str, broadcast: Broadcast,
               smooth_s: float, loop: bool):
    super().__init__(daemon=True, name='pipeline')
    self._classifier, self._source, self._broadcast = classifier, source, broadcast
    self._smooth_s, self._loop = smooth_s, loop
    self._stopping = threading.Event()
    self.frames, self.fps, self.error = 0, 0.0, None
    self._frames_in = video_lib.open_source(source)  # raises VideoError now, not later

  def stop(self) -> None:
    """Ends the loop after the frame in progress; run() then releases the source."""
    self._stopping.set()

  def close(self) -> None:
    """Releases the source of a pipeline that never ran."""
    self._frames_in.close()

  def run(self) -> None:
    tracker = tracking.Tracker(self._smooth_s)
    start, offset, last_t = time.monotonic(), 0.0, 0.0
    recent = []
    try:
      while not self._stopping.is_set():
        frame, t = self._frames_in.read()
        if frame is None:
          if not self._loop or self._source.isdigit() or self.frames == 0:
            break
          self._frames_in.close()
          self._frames_in = video_lib.open_source(self._source)
          offset = last_t + 1 / max(self._frames_in.fps, 1.0)
          continue
        t = last_t = t + offset
        if not self._frames_in.live:  # a file plays at its own pace
          time.sleep(max(0.0, start + t - time.monotonic()))
        faces = video_lib.tracked_faces(self._classifier, tracker,
                                        cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), t)
        self.frames += 1
        ok, jpeg = cv2.imencode('.jpg', annotate(frame, faces),
                                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
          raise video_lib.VideoError('a frame could not be encoded as JPEG')
        now = time.monotonic()
        recent = [s for s in recent if s > now - 2] + [now]
        self.fps = (len(recent) - 1) / max(recent[-1] - recent[0], 1e-9)
        record = video_lib.frame_record(self.frames, t, faces)
        record['fps'] = round(self.fps, 1)
        self._broadcast.publish(Frame(self.frames, t, jpeg.tobytes(),
                                      json.dumps(record).encode()))
    except Exception as e:  # reported by the main thread as one line
      self.error = e
    finally:
      self._frames_in.close()
      self._broadcast.close()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
  """The HTTP server, with what its handlers share."""

  daemon_threads = True
  allow_reuse_address = True

  def __init__(self, address, broadcast: Broadcast, token: str, page: bytes,
               max_viewers: int):
    super().__init__(address, Handler)
    self.broadcast, self.token, self.page = broadcast, token, page
    self.slots = {'/stream.mjpg': threading.BoundedSemaphore(max_viewers),
                  '/faces': threading.BoundedSemaphore(max_viewers)}


class Handler(http.server.BaseHTTPRequestHandler):
  """The three routes; nothing is read from disk."""

  server: Server
  protocol_version = 'HTTP/1.1'

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    del format, args  # a camera page is requested often: stay quiet

  def _authorised(self, query: dict) -> bool:
    given = query.get('token', [''])[0]
    header = self.headers.get('Authorization', '')
    if header.startswith('Bearer '):
      given = header[len('Bearer '):]
    return hmac.compare_digest(given.encode(), self.server.token.encode())

  def _reply(self, status: int, body: bytes, content_type: str = 'text/plain') -> None:
    self.send_response(status)
    self.send_header('Content-Type', content_type)
    self.send_header('Content-Length', str(len(body)))
    self.send_header('Cache-Control', 'no-store')
    self.end_headers()
    self.wfile.write(body)

  def do_GET(self):  # pylint: disable=invalid-name
    url = urllib.parse.urlsplit(self.path)
    query = urllib.parse.parse_qs(url.query)
    if url.path not in ('/', '/stream.mjpg', '/faces'):
      return self._reply(404, b'not found\n')
    if not self._authorised(query):
      return self._reply(401, b'a token is needed: open the URL the server printed\n')
    if url.path == '/':
      return self._reply(200, self.server.page, 'text/html; charset=utf-8')
    slot = self.server.slots[url.path]
    if not slot.acquire(blocking=False):
      return self._reply(503, b'too many viewers; try again later\n')
    try:
      self.connection.settimeout(WRITE_TIMEOUT_S)
      if url.path == '/stream.mjpg':
        self._stream('multipart/x-mixed-replace; boundary=frame', lambda f: (
            b'--frame\r\nContent-Type: image/jpeg\r\nContent-Length: ' +
            str(len(f.jpeg)).encode() + b'\r\n\r\n' + f.jpeg + b'\r\n'))
      else:
        self._stream('text/event-stream', lambda f: b'data: ' + f.record + b'\n\n',
                     self.server.broadcast.history())
    except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
      pass  # the viewer went away or stalled
    finally:
      slot.release()
      self.close_connection = True

  def _stream(self, content_type: str, part, first: list[Frame] = ()) -> None:
    """Sends `part(frame)` for each of `first`, then for each newer frame until the
    broadcast closes."""
    self.send_response(200)
    self.send_header('Content-Type', content_type)
    self.send_header('Cache-Control', 'no-store')
    self.send_header('Connection', 'close')
    self.end_headers()
    seen = 0
    for frame in first:
      self.wfile.write(part(frame))
      seen = frame.number
    while not self.server.broadcast.closed:
      frame = self.server.broadcast.next_after(seen)
      if frame is not None:
        self.wfile.write(part(frame))
        self.wfile.flush()
        seen = frame.number


def page(model: str) -> bytes:
  """The page, with the model's name filled in (the page reads the token from its own
  address)."""
  return PAGE.read_text().replace('{{model}}', model).encode()


def serve(classifier: FaceClassifier, source: str, host: str = '127.0.0.1',
          port: int = 8080, token: str | None = None, max_viewers: int = 4,
          smooth_s: float = 0.3, loop: bool = False, model_name: str = '') -> int:
  """Serves until Ctrl-C, SIGTERM (which edge.cli turns into Ctrl-C) or the end of a file
  source; returns 0."""
  token = token or secrets.token_urlsafe(16)
  broadcast = Broadcast()
  pipeline = Pipeline(classifier, source, broadcast, smooth_s, loop)
  try:
    server = Server((host, port), broadcast, token, page(model_name), max_viewers)
  except OSError as e:
    pipeline.close()
    raise video_lib.VideoError(f'cannot listen on {host}:{port} ({e.strerror})') from None
  http = threading.Thread(target=server.serve_forever, daemon=True, name='http')
  try:  # from here on, Ctrl-C or SIGTERM at any moment ends the same clean way
    shown = host if host not in ('0.0.0.0', '::') else 'THIS-MACHINE'
    if host in ('0.0.0.0', '::'):
      print(f'warning: listening on every address: anyone who can reach this machine on '
            f'port {server.server_address[1]} and has the token sees the camera.',
            file=sys.stderr, flush=True)
    print(f'Serving {source} on http://{shown}:{server.server_address[1]}/?token={token}',
          file=sys.stderr, flush=True)
    http.start()
    pipeline.start()
    while pipeline.is_alive():
      pipeline.join(0.2)
  except KeyboardInterrupt:
    pass
  finally:
    pipeline.stop()
    if pipeline.is_alive():
      pipeline.join(timeout=10)
    elif pipeline.ident is None:  # interrupted before it started
      pipeline.close()
    if http.is_alive():
      server.shutdown()
    server.server_close()
  if pipeline.error is not None:
    raise video_lib.VideoError(f'the source {source!r} failed: {pipeline.error}')
  print(f'stopped: {pipeline.frames} frames served, camera released', file=sys.stderr)
  return 0
