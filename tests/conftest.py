"""Shared fixtures: tiny generated datasets for unit tests, the real archives for
integration tests (skipped with a reason where ../shared/data is absent)."""

import os
import pathlib

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


@pytest.fixture(scope='session')
def tiny_data_dir(tmp_path_factory):
  """A TFDS data dir with fer_emotions/fer5_ck built from the generated fake archives."""
  from fer_tfds import build
  from fer_tfds.fer_emotions import dummy_data_generation

  manual_dir = dummy_data_generation.write_archives(tmp_path_factory.mktemp('manual'))
  data_dir = tmp_path_factory.mktemp('tfds')
  build.build('fer5_ck', str(manual_dir), str(data_dir))
  return data_dir


@pytest.fixture(scope='session')
def real_data_dir(tmp_path_factory):
  """A TFDS data dir with fer_emotions/fer5_ck built from ../shared/data."""
  from fer_tfds import build

  data_dir = tmp_path_factory.mktemp('tfds_real')
  build.build('fer5_ck', str(SHARED_DATA), str(data_dir))
  return data_dir


@pytest.fixture(scope='session')
def trained_run(tiny_data_dir, tmp_path_factory):
  """A tiny FERNet trained long enough to predict more than one class."""
  from trainer_helpers import run_trainer

  run_dir = tmp_path_factory.mktemp('export') / 'run'
  # The study's plain recipe (no augmentation, dropout, smoothing or schedule, 4x4
  # kernels): 48 steps learn the classes and stay clear of int8 near-ties.
  result = run_trainer(f'--data_dir={tiny_data_dir}', f'--run_dir={run_dir}',
                       '--filters=8,16', '--batch_size=8', '--dropout=0', '--epochs=6',
                       '--steps_per_epoch=8', '--learning_rate=3e-3', '--weight_decay=0',
                       '--head_dropout=0', '--label_smoothing=0', '--lr_schedule=constant',
                       '--rotation=0', '--zoom=0', '--shift=0', '--noflip',
                       '--brightness=0,0', '--kernel_size=4')
  assert result.returncode == 0, result.stderr[-3000:]
  return run_dir


@pytest.fixture(scope='session')
def exported(trained_run, tmp_path_factory):
  """(out_dir, report) of `python -m export` on trained_run."""
  from export import export

  out_dir = tmp_path_factory.mktemp('out') / 'models'
  report = export.export(str(trained_run), str(out_dir), calibration_samples=40,
                         latency_runs=5)
  return out_dir, report
