"""Shared fixtures: tiny generated datasets for unit tests, the real archives for
integration tests (skipped with a reason where ../shared/data is absent)."""

import json
import os
import pathlib
import shutil

import cv2
import matplotlib
import numpy as np
import pytest

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / 'shared' / 'data'

# A real portrait that ships with matplotlib (its sample data): Grace Hopper.
PORTRAIT = matplotlib.get_data_path() + '/sample_data/grace_hopper.jpg'
FPS = 15  # of moving_heads_video


def moving_heads_video(path, frames=40):
  """Two heads (the portrait and its mirror image) crossing a 640x480 frame, one
  left to right at the top, one right to left at the bottom."""
  gray = cv2.cvtColor(cv2.imread(PORTRAIT), cv2.COLOR_BGR2GRAY)
  head = cv2.resize(gray[90:390, 116:416], (190, 190), interpolation=cv2.INTER_AREA)
  mirrored = head[:, ::-1]
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), FPS, (640, 480))
  rng = np.random.default_rng(0)
  backdrop = cv2.GaussianBlur(rng.integers(60, 170, (480, 640)).astype(np.uint8),
                              (41, 41), 0)
  for k in range(frames):
    canvas = backdrop.copy()
    x = int(10 + k * 400 / frames)
    canvas[10:200, x:x + 190] = head
    canvas[280:470, 640 - 200 - x:640 - 10 - x] = mirrored
    writer.write(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
  writer.release()


requires_real_data = pytest.mark.skipif(
    not (SHARED_DATA / 'fer2013.zip').exists() or not (SHARED_DATA / 'ckplus.zip').exists(),
    reason=f'the Kaggle archives are not in {SHARED_DATA} (only CI and the dev machines '
    'have them); integration tests on the real data are skipped',
)


def pytest_collection_modifyitems(items):
  """The long tests (pytest.ini's `long` marker) first in each half of the run: xdist's
  work stealing gives each of the two test processes one half and moves tests from the
  end of a half, so a long test started last would keep one process busy alone."""
  long = [item for item in items if item.get_closest_marker('long')]
  rest = [item for item in items if not item.get_closest_marker('long')]
  first = len(items) // 2 - len(long[0::2])
  items[:] = long[0::2] + rest[:first] + long[1::2] + rest[first:]


@pytest.fixture(scope='session')
def shared_dir(tmp_path_factory, worker_id):
  """A folder every test process of this run sees: with pytest-xdist, the folder above
  each worker's own (one per run); without it, this process's."""
  base = tmp_path_factory.getbasetemp()
  return base.parent if worker_id != 'master' else base


def made_once(folder: pathlib.Path, make) -> pathlib.Path:
  """`folder` as `make(folder)` fills it, by whichever test process gets there first; the
  others wait for it under its lock and use what it made."""
  from fer_common import locks

  done = folder.with_name(f'.{folder.name}.made')
  with locks.held(folder, 'a shared test fixture', wait=True, log=lambda *_: None):
    if not done.exists():
      shutil.rmtree(folder, ignore_errors=True)  # what a process that died left
      folder.mkdir(parents=True)
      make(folder)
      done.touch()
  return folder


@pytest.fixture(scope='session')
def tiny_data_dir(shared_dir):
  """A TFDS data dir with fer_emotions/fer5_ck built from the generated fake archives."""
  from fer_tfds import build
  from fer_tfds.fer_emotions import dummy_data_generation

  def make(folder):
    manual_dir = dummy_data_generation.write_archives(folder / 'manual')
    build.build('fer5_ck', str(manual_dir), str(folder / 'tfds'))
  return made_once(shared_dir / 'tiny_data', make) / 'tfds'


@pytest.fixture(scope='session')
def real_data_dir(shared_dir):
  """A TFDS data dir with fer_emotions/fer5_ck built from ../shared/data."""
  from fer_tfds import build

  return made_once(shared_dir / 'tfds_real',
                   lambda folder: build.build('fer5_ck', str(SHARED_DATA), str(folder)))


@pytest.fixture(scope='session')
def trained_run(tiny_data_dir, shared_dir):
  """A tiny FERNet trained long enough to predict more than one class."""
  from trainer_helpers import run_trainer

  def make(folder):
    # The study's plain recipe (no augmentation, dropout, smoothing or schedule, 4x4
    # kernels): 48 steps learn the classes and stay clear of int8 near-ties.
    result = run_trainer(f'--data_dir={tiny_data_dir}', f'--run_dir={folder / "run"}',
                         '--filters=8,16', '--batch_size=8', '--dropout=0', '--epochs=6',
                         '--steps_per_epoch=8', '--learning_rate=3e-3', '--weight_decay=0',
                         '--head_dropout=0', '--label_smoothing=0',
                         '--lr_schedule=constant', '--rotation=0', '--zoom=0', '--shift=0',
                         '--noflip', '--brightness=0,0', '--kernel_size=4')
    assert result.returncode == 0, result.stderr[-3000:]
  return made_once(shared_dir / 'trained', make) / 'run'


@pytest.fixture(scope='session')
def exported(trained_run, shared_dir):
  """(out_dir, report) of `python -m export` on trained_run."""
  from export import export
  from fer_common import contract

  def make(folder):
    export.export(str(trained_run), str(folder / 'models'), calibration_samples=40,
                  latency_runs=5)
  out_dir = made_once(shared_dir / 'exported', make) / 'models'
  return out_dir, json.loads((out_dir / contract.REPORT_JSON).read_text())
