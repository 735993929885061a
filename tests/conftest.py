"""Shared fixtures: tiny generated datasets for unit tests, the real archives for
integration tests (skipped with a reason where ../shared/data is absent)."""

import os
import pathlib

import pytest

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / 'shared' / 'data'

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
