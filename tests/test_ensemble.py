"""trainer.ensemble: averaging runs (and mirror images) into a run dir that exports."""

import json
import shutil

import keras
import numpy as np
import pytest

from edge.litert_model import LiteRTModel
from export import export
from export import inputs
from trainer import views
from conftest import made_once
from trainer_helpers import run_trainer
from trainer_helpers import TINY_FLAGS


@pytest.fixture(scope='session')
def second_run(tiny_data_dir, shared_dir):
  """A second tiny run with another architecture and seed than `trained_run`."""
  def make(folder):
    result = run_trainer(f'--data_dir={tiny_data_dir}', f'--run_dir={folder / "run"}',
                         '--epochs=1', '--steps_per_epoch=2', '--seed=7', *TINY_FLAGS)
    assert result.returncode == 0, result.stderr[-3000:]
  return made_once(shared_dir / 'second_run', make) / 'run'


@pytest.fixture(scope='session')
def ensemble_run(trained_run, second_run, shared_dir):
  """`python -m trainer.ensemble` over both tiny runs, with mirrored and shifted views."""
  def make(folder):
    result = run_trainer(f'--members={trained_run},{second_run}', '--flip_tta',
                         '--shift_tta=2', f'--run_dir={folder / "run"}',
                         module='trainer.ensemble')
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'test accuracy' in result.stdout
  return made_once(shared_dir / 'ensemble', make) / 'run'


def _images(run_dir):
  images, _ = inputs.load_split(inputs.read_run(str(run_dir)), 'test')
  return images


def _shifted(images, pixels):
  """The image moved down, up, right and left by `pixels`, edges mirrored in."""
  padded = np.pad(images, ((0, 0), (pixels, pixels), (pixels, pixels), (0, 0)),
                  mode='symmetric')
  size = images.shape[1]
  return [padded[:, top:top + size, left:left + size]
          for top, left in ((0, pixels), (2 * pixels, pixels), (pixels, 0), (pixels, 2 * pixels))]


def test_ensemble_averages_the_members_over_shifted_and_mirrored_views(
    trained_run, second_run, ensemble_run):
  # Loads with plain Keras: no custom layer for the exporter or anyone else to import.
  model = keras.models.load_model(ensemble_run / 'inference.keras', compile=False)
  members = [keras.models.load_model(run / 'inference.keras', compile=False)
             for run in (trained_run, second_run)]
  images = _images(trained_run)
  mirrored = images[:, :, ::-1]
  seen = [images, *_shifted(images, 2)]
  seen += [view[:, :, ::-1] for view in seen]
  assert len(seen) == views.views_per_member(flip_tta=True, shift_tta=2)
  assert np.abs(seen[1] - images).max() > 0  # the shifts are not the identity
  expected = np.mean([m.predict(x, verbose=0) for m in members for x in seen], axis=0)
  got = model.predict(images, verbose=0)
  np.testing.assert_allclose(got, expected, atol=1e-5)
  np.testing.assert_allclose(model.predict(mirrored, verbose=0), got, atol=1e-5)
  assert np.abs(got - members[0].predict(images, verbose=0)).max() > 1e-3


def test_ensemble_run_dir_has_reports_and_reusable_flags(ensemble_run, trained_run):
  metrics = json.loads((ensemble_run / 'reports' / 'metrics.json').read_text())
  # The report is the saved ensemble's own accuracy on the whole test split.
  images, labels = inputs.load_split(inputs.read_run(str(ensemble_run)), 'test')
  model = keras.models.load_model(ensemble_run / 'inference.keras', compile=False)
  predicted = model.predict(images, verbose=0).argmax(-1)
  assert metrics['test']['examples'] == len(labels)
  assert metrics['test']['accuracy'] == pytest.approx((predicted == labels).mean())
  assert (ensemble_run / 'reports' / 'confusion_matrix.png').stat().st_size > 0
  assert (ensemble_run / 'preprocessing.json').read_text() == (
      trained_run / 'preprocessing.json').read_text()
  again = run_trainer(f'--flagfile={ensemble_run / "flags.txt"}', module='trainer.ensemble')
  assert again.returncode != 0 and 'inference.keras exists' in again.stderr
  evaluated = run_trainer(f'--run_dir={ensemble_run}', module='trainer.evaluate')
  assert evaluated.returncode != 0 and 'is an ensemble' in evaluated.stderr


def test_ensemble_exports_and_int8_agrees_with_keras(ensemble_run, tmp_path):
  report = export.export(str(ensemble_run), str(tmp_path / 'models'),
                         calibration_samples=40, latency_runs=3)
  images = _images(ensemble_run)
  expected = keras.models.load_model(ensemble_run / 'inference.keras', compile=False
                                     ).predict(images, verbose=0)
  lite = LiteRTModel(tmp_path / 'models' / 'int8.tflite')
  got = np.array([lite.predict(image) for image in images])
  # int8 moves probabilities by a step or two of 1/256 on average, and the worst face of
  # this tiny ensemble by one to eight steps from run to run. It may flip near-ties only.
  top2 = np.sort(expected, axis=-1)[:, -2:]
  clear = top2[:, 1] - top2[:, 0] > 0.05
  assert (got.argmax(-1) == expected.argmax(-1))[clear].mean() >= 0.95
  error = np.abs(got - expected)
  assert error.mean() < 0.01 and error.max() < 0.1, (error.mean(), error.max())
  # Raw 0..255 pixels instead of the normalised input move the mean far past that bound.
  wrong = np.array([lite.predict(image * 255) for image in images])
  assert np.abs(wrong - expected).mean() > 0.01
  assert report['dataset'] == 'fer5_ck'


def test_unfinished_member_is_named(trained_run, tmp_path):
  result = run_trainer(f'--members={trained_run},{tmp_path / "nothing"}',
                       f'--run_dir={tmp_path / "out"}', module='trainer.ensemble')
  assert result.returncode != 0
  assert f'{tmp_path / "nothing" / "flags.txt"} is missing' in result.stderr
  assert not (tmp_path / 'out').exists()


def test_members_of_different_datasets_are_refused(trained_run, tmp_path):
  other = tmp_path / 'fer5_run'
  shutil.copytree(trained_run, other)
  flags_txt = other / 'flags.txt'
  flags_txt.write_text(flags_txt.read_text().replace('--dataset=fer5_ck', '--dataset=fer5'))
  result = run_trainer(f'--members={trained_run},{other}', f'--run_dir={tmp_path / "out"}',
                       module='trainer.ensemble')
  assert result.returncode != 0 and 'another dataset' in result.stderr
