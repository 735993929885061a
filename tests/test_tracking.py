"""Faces followed across frames: track ids that stay with their face, smoothed labels that
do not flicker, and `edge video`'s times and CSV on a real video file."""

import csv
import json
import signal
import subprocess
import sys

import cv2
import numpy as np

from conftest import FPS
from conftest import REPO
from conftest import moving_heads_video
from edge import faces
from edge import timeline
from edge import tracking



def probabilities(winner, p=0.8):
  """Five class probabilities with `p` on class `winner`."""
  result = np.full(5, (1 - p) / 4)
  result[winner] = p
  return result


def test_a_one_frame_flip_does_not_change_the_smoothed_label():
  tracker = tracking.Tracker(smooth_s=0.3)
  box = faces.Box(100, 100, 80, 80)
  labels = []
  for frame in range(60):  # 2 s at 30 fps; frame 30 alone looks sad, confidently
    p = probabilities(4, 0.95) if frame == 30 else probabilities(2, 0.7)
    (track,) = tracker.update(frame / 30, [box], [p])
    labels.append(int(np.argmax(track.probabilities)))
  assert labels == [2] * 60
  raw = tracking.Tracker(smooth_s=0)  # unsmoothed, the flip shows
  flipped = [int(np.argmax(raw.update(f / 30, [box], [probabilities(4, 0.95) if f == 30
                                                       else probabilities(2)])[0]
                           .probabilities)) for f in range(60)]
  assert flipped[30] == 4


def test_a_lasting_change_comes_through_within_the_time_constant():
  tracker = tracking.Tracker(smooth_s=0.3)
  box = faces.Box(0, 0, 50, 50)
  changed_at = None
  for frame in range(90):
    winner = 2 if frame < 30 else 4
    (track,) = tracker.update(frame / 30, [box], [probabilities(winner)])
    if changed_at is None and np.argmax(track.probabilities) == 4:
      changed_at = frame
  assert 30 < changed_at <= 30 + 0.3 * 30 * 2


def test_tracks_end_after_missed_frames_and_ids_are_never_reused():
  tracker = tracking.Tracker(max_missed=2)
  a, b = faces.Box(0, 0, 50, 50), faces.Box(300, 0, 50, 50)
  first = [t.id for t in tracker.update(0.0, [a, b], [probabilities(0)] * 2)]
  assert first == [1, 2]
  for k in range(3):  # b is missing for 3 frames: its track ends
    (kept,) = tracker.update(0.1 * (k + 1), [a], [probabilities(0)])
    assert kept.id == 1
  again = tracker.update(0.5, [a, b], [probabilities(0)] * 2)
  assert [t.id for t in again] == [1, 3]


def test_two_faces_moving_across_the_frame_keep_two_track_ids(tmp_path):
  video = tmp_path / 'two.avi'
  moving_heads_video(video)
  table, picture = tmp_path / 'faces.csv', tmp_path / 'timeline.png'
  result = subprocess.run([sys.executable, '-m', 'edge', 'video', str(video), '--model',
                           'fast', '--csv', str(table), '--timeline', str(picture)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  records = [json.loads(line) for line in result.stdout.splitlines()]
  assert len(records) == 40
  # Times come from the file: 1/15 s apart.
  assert np.allclose(np.diff([r['t'] for r in records]), 1 / FPS, atol=1e-3)
  ids = {face['track'] for r in records for face in r['faces']}
  assert len(ids) == 2, ids
  settled = [r for r in records[5:]]
  assert all(len(r['faces']) == 2 for r in settled), [len(r['faces']) for r in settled]
  # Each id stays with its face: the top one moves right, the bottom one left.
  path = {i: [] for i in ids}
  for r in settled:
    for face in r['faces']:
      x, y, w, h = face['box']
      path[face['track']].append((x + w / 2, y + h / 2))
  for points in path.values():
    xs, ys = np.array(points).T
    assert np.ptp(ys) < 40  # never jumps to the other face
    assert np.all(np.diff(xs) > 0) or np.all(np.diff(xs) < 0)
  rows = list(csv.reader(table.open()))
  assert rows[0][:7] == ['t', 'track', 'x', 'y', 'width', 'height', 'label']
  assert len(rows[0]) == 7 + 5
  assert len(rows) - 1 == sum(len(r['faces']) for r in records)
  for row in rows[1:]:
    assert row[6] == max(zip(map(float, row[7:]), rows[0][7:]))[1]  # label = argmax
  # The timeline: a band per track, coloured by the probabilities.
  drawn = cv2.imread(str(picture))
  assert drawn.shape == (timeline.TOP + 2 * timeline.ROW + timeline.BOTTOM, timeline.WIDTH, 3)
  band = drawn[timeline.TOP + 20:timeline.TOP + timeline.ROW - 10, timeline.LEFT + 10:-30]
  assert (band < 250).any(axis=2).mean() > 0.9  # filled, not blank


def test_sigterm_ends_a_video_run_with_what_it_had_written(tmp_path):
  video = tmp_path / 'long.avi'
  moving_heads_video(video, frames=400)
  table = tmp_path / 'faces.csv'
  process = subprocess.Popen([sys.executable, '-m', 'edge', 'video', str(video), '--model',
                              'fast', '--csv', str(table)], cwd=REPO, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  first = process.stdout.readline()  # a frame is done
  assert json.loads(first)['frame'] == 1
  process.send_signal(signal.SIGTERM)
  out, err = process.communicate(timeout=30)
  assert process.returncode == 0, err[-2000:]
  frames = 1 + len(out.splitlines())
  assert frames < 400 and 'done:' in err and 'Traceback' not in err
  rows = list(csv.reader(table.open()))  # written whole, with every frame it printed
  assert rows[0][0] == 't' and len(rows) > 1
  assert not list(tmp_path.glob('.*faces.csv*'))  # no temporary file left
