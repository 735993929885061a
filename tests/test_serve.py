"""`python -m edge serve` on loopback, from a test video with two faces: the three
routes, the token, the viewer limit, a stalled viewer, SIGTERM, and the page in a real
headless Chromium."""

import http.client
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from conftest import moving_heads_video

TOKEN = 'test-token-123'
LABELS = ('angry', 'fearful', 'happy', 'neutral', 'sad')


def start(video, *flags):
  """A running `edge serve` on a free loopback port: (process, port); what it printed
  up to its URL is in `process.printed`."""
  process = subprocess.Popen(
      [sys.executable, '-m', 'edge', 'serve', str(video), '--port', '0', *flags],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  process.printed = ''
  deadline = time.monotonic() + 60
  for line in process.stderr:
    process.printed += line
    found = re.search(r'http://[^:]+:(\d+)/\?token=(\S+)', line)
    if found:
      return process, int(found.group(1))
    if time.monotonic() > deadline:
      break
  process.kill()
  raise AssertionError('edge serve printed no URL')


def stop(process):
  process.send_signal(signal.SIGTERM)
  return process.wait(timeout=20)


@pytest.fixture(scope='module')
def video(tmp_path_factory):
  path = tmp_path_factory.mktemp('serve') / 'two.avi'
  moving_heads_video(path, frames=60)
  return path


@pytest.fixture(scope='module')
def server(video):
  process, port = start(video, '--loop', '--token', TOKEN, '--max-viewers', '2')
  yield port
  stop(process)


def get(port, path, headers=None, timeout=10):
  connection = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
  connection.request('GET', path, headers=headers or {})
  return connection.getresponse()


def events(response, count):
  """The first `count` server-sent records of a /faces response."""
  records = []
  while len(records) < count:
    line = response.fp.readline().decode()
    if line.startswith('data: '):
      records.append(json.loads(line[len('data: '):]))
  return records


def jpeg_parts(response, count):
  """The first `count` JPEG parts of a /stream.mjpg response."""
  parts = []
  while len(parts) < count:
    line = response.fp.readline()
    if line.lower().startswith(b'content-length:'):
      response.fp.readline()
      parts.append(response.fp.read(int(line.split(b':')[1])))
  return parts


def test_every_route_needs_the_token_and_there_are_only_three(server):
  for path in ('/', '/stream.mjpg', '/faces', '/?token=wrong'):
    assert get(server, path).status == 401, path
  for path in ('/favicon.ico', '/../etc/passwd', '/live.html', f'/edge/cli.py?token={TOKEN}'):
    assert get(server, path).status == 404, path
  page = get(server, f'/?token={TOKEN}')
  assert page.status == 200 and b'fer-edge live' in page.read()
  bearer = get(server, '/', {'Authorization': f'Bearer {TOKEN}'})
  assert bearer.status == 200 and b'fast/int8.tflite' in bearer.read()


def test_the_stream_is_jpeg_and_the_faces_are_the_video_records(server):
  stream = get(server, f'/stream.mjpg?token={TOKEN}')
  assert stream.status == 200
  assert stream.getheader('Content-Type').startswith('multipart/x-mixed-replace')
  parts = jpeg_parts(stream, 3)
  assert all(p[:2] == b'\xff\xd8' for p in parts)  # JPEG start-of-image
  stream.close()
  faces = get(server, f'/faces?token={TOKEN}')
  assert faces.getheader('Content-Type') == 'text/event-stream'
  records = events(faces, 30)
  faces.close()
  assert all({'frame', 't', 'faces', 'fps'} <= set(r) for r in records)
  seen = [face for r in records for face in r['faces']]
  assert seen and all({'track', 'box', 'label', 'probabilities'} <= set(f) for f in seen)
  assert all(f['label'] in LABELS for f in seen)


def test_the_viewer_limit_answers_503_and_frees_its_slot(server):
  first = get(server, f'/stream.mjpg?token={TOKEN}')
  second = get(server, f'/stream.mjpg?token={TOKEN}')
  assert first.status == second.status == 200
  assert get(server, f'/stream.mjpg?token={TOKEN}').status == 503
  first.close()
  second.close()
  time.sleep(1.5)  # the server notices the closed viewers at their next frame
  again = get(server, f'/stream.mjpg?token={TOKEN}')
  assert again.status == 200
  again.close()


def test_a_viewer_that_stops_reading_does_not_hold_up_the_others(server):
  stalled = socket.create_connection(('127.0.0.1', server))
  stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
  stalled.sendall(f'GET /stream.mjpg?token={TOKEN} HTTP/1.1\r\nHost: x\r\n\r\n'.encode())
  time.sleep(3)  # its buffers fill with frames it never reads
  faces = get(server, f'/faces?token={TOKEN}')
  records = events(faces, 200)[-30:]  # after the history of the last minute
  faces.close()
  stalled.close()
  # The file plays at its 15 frames per second while one viewer is stalled.
  span = records[-1]['t'] - records[0]['t']
  assert 29 / span > 12, span
  assert records[-1]['fps'] > 12


def test_sigterm_stops_the_server_cleanly_and_releases_the_source(video):
  process, port = start(video, '--loop')
  assert get(port, '/').status == 401  # a generated token is required too
  assert stop(process) == 0
  assert 'camera released' in process.stderr.read()
  with pytest.raises(OSError):
    socket.create_connection(('127.0.0.1', port), timeout=2)


def test_a_file_ends_cleanly_without_loop(video):
  process, _ = start(video)
  assert process.wait(timeout=30) == 0  # 60 frames at 15 per second


def test_listening_on_every_address_warns_who_can_see_the_camera(video):
  process, _ = start(video, '--host', '0.0.0.0', '--loop')
  assert stop(process) == 0
  assert 'anyone who can reach this machine' in process.printed


@pytest.mark.skipif(shutil.which('chromium') is None,
                    reason='no chromium: `apt-get install chromium` (Debian) for the page '
                    'test; .ci/run installs it')
def test_the_page_in_headless_chromium_shows_the_stream_and_a_label(server, tmp_path):
  url = f'http://127.0.0.1:{server}/?token={TOKEN}'
  browser = ['chromium', '--headless=new', '--no-sandbox', '--disable-gpu',
             '--window-size=1280,900', '--timeout=5000']
  shot = tmp_path / 'page.png'
  subprocess.run([*browser, f'--screenshot={shot}', url], capture_output=True, timeout=60,
                 check=True, cwd=tmp_path)
  dom = subprocess.run([*browser, '--dump-dom', url], capture_output=True, text=True,
                       timeout=60, check=True, cwd=tmp_path).stdout
  labels = re.findall(r'class="label">(\w+)<', dom)
  assert labels and set(labels) <= set(LABELS), dom[-2000:]
  picture = np.asarray(Image.open(shot).convert('L'), np.float32)
  stream = picture[52:532, 15:655]  # where the page lays out the 640x480 stream
  assert stream.std() > 20  # the camera's picture, not an empty box
  assert picture[600:700, 600:1200].std() < stream.std()
