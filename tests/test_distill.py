"""Knowledge distillation: the teacher's targets, their order in tf.data, the CLI."""

import shutil

import keras
import numpy as np
import pytest

from trainer import data
from trainer import distill
from trainer_helpers import run_trainer
from trainer_helpers import TINY_FLAGS

WEIGHT = 0.7


@pytest.fixture(scope='module')
def builder(tiny_data_dir):
  return data.builder('fer5_ck', str(tiny_data_dir))


@pytest.fixture(scope='module')
def targets(trained_run, builder):
  return distill.teacher_targets(str(trained_run), builder, 'fer5_ck', WEIGHT)


def test_targets_blend_the_teachers_probabilities_with_the_labels_in_split_order(
    trained_run, builder, targets):
  teacher = keras.models.load_model(trained_run / 'inference.keras', compile=False)
  ordered = data.pipeline(builder, 'train', 16, training=False)
  images, one_hot = (np.concatenate(parts) for parts in
                     zip(*ordered.as_numpy_iterator()))
  expected = WEIGHT * teacher.predict(images, verbose=0) + (1 - WEIGHT) * one_hot
  np.testing.assert_allclose(targets, expected, atol=1e-5)
  assert np.ptp(targets.max(axis=1)) > 0.01  # the teacher is not the same on every face


def test_shuffled_training_batches_keep_each_image_with_its_target(
    trained_run, builder, targets):
  teacher = keras.models.load_model(trained_run / 'inference.keras', compile=False)
  shuffled = data.pipeline(builder, 'train', 32, training=True, seed=3, targets=targets)
  images, batch_targets = (np.asarray(t) for t in next(iter(shuffled)))
  label_part = (batch_targets - WEIGHT * teacher.predict(images, verbose=0)) / (1 - WEIGHT)
  np.testing.assert_allclose(label_part.max(axis=1), 1.0, atol=1e-4)  # a one-hot row:
  np.testing.assert_allclose(label_part.sum(axis=1), 1.0, atol=1e-4)  # the image's own


def test_targets_of_the_wrong_shape_are_refused(builder, targets):
  with pytest.raises(ValueError, match='targets for the train split must have shape'):
    data.pipeline(builder, 'train', 8, training=True, targets=targets[1:])


def test_teacher_of_another_dataset_is_refused(trained_run, builder, tmp_path):
  other = tmp_path / 'fer5_teacher'
  shutil.copytree(trained_run, other)
  flags_txt = other / 'flags.txt'
  flags_txt.write_text(flags_txt.read_text().replace('--dataset=fer5_ck', '--dataset=fer5'))
  with pytest.raises(distill.TeacherError, match='trained on fer5, this run on fer5_ck'):
    distill.teacher_targets(str(other), builder, 'fer5_ck', WEIGHT)


def test_trainer_learns_from_a_teacher_and_names_a_missing_one(
    trained_run, tiny_data_dir, tmp_path):
  run_dir = tmp_path / 'student'
  result = run_trainer(f'--data_dir={tiny_data_dir}', f'--run_dir={run_dir}', '--epochs=1',
                       '--steps_per_epoch=1', f'--teacher={trained_run}', *TINY_FLAGS)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f'--teacher={trained_run}' in (run_dir / 'flags.txt').read_text()
  assert (run_dir / 'inference.keras').is_file()
  missing = run_trainer(f'--data_dir={tiny_data_dir}', f'--run_dir={tmp_path / "x"}',
                        f'--teacher={tmp_path / "nothing"}', *TINY_FLAGS)
  assert missing.returncode != 0
  assert f'error: --teacher: {tmp_path / "nothing" / "flags.txt"} is missing' in \
      missing.stderr
