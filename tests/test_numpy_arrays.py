"""trainer.arrays / dump_arrays / `python -m trainer --arrays`: training from numpy
arrays, for machines with a GPU but no TensorFlow (tested here under the TensorFlow
backend, and under JAX where it is installed)."""

import importlib.util
import json
import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import REPO
from conftest import made_once
from trainer_helpers import run_trainer
from trainer_helpers import TINY_FLAGS


def _splits(rng, sizes):
  return {split: (rng.integers(0, 256, (n, 48, 48, 1), dtype=np.uint8),
                  rng.integers(0, 5, n), rng.choice(['fer2013', 'ckplus'], n))
          for split, n in sizes.items()}


@pytest.mark.parametrize('name', ['data.npz', 'data.npz.xz'])
def test_arrays_round_trip(tmp_path, name):
  from trainer import arrays

  splits = _splits(np.random.default_rng(0), {'train': 6, 'validation': 3})
  arrays.save(tmp_path / name, splits, ['a', 'b', 'c', 'd', 'e'], 'fer5_ck')
  loaded, class_names = arrays.load(tmp_path / name, 'fer5_ck')
  assert class_names == ['a', 'b', 'c', 'd', 'e']
  assert loaded.keys() == {'train', 'validation'}  # test is optional
  for split, (images, labels, _) in splits.items():
    np.testing.assert_array_equal(loaded[split][0], images)
    np.testing.assert_array_equal(loaded[split][1], labels)


def test_a_ck_file_serves_its_fer2013_faces_as_the_config_without_ck(tmp_path):
  from trainer import arrays

  splits = _splits(np.random.default_rng(1), {'train': 20, 'validation': 8})
  arrays.save(tmp_path / 'd.npz', splits, ['a', 'b', 'c', 'd', 'e'], 'fer5_ck')
  loaded, _ = arrays.load(tmp_path / 'd.npz', 'fer5')
  for split, (images, labels, sources) in splits.items():
    fer = sources == 'fer2013'
    np.testing.assert_array_equal(loaded[split][0], images[fer])
    np.testing.assert_array_equal(loaded[split][1], labels[fer])
  for other in ('fer7_ck', 'fer5_ck_dedup'):
    with pytest.raises(arrays.ArraysFileError, match=f'holds fer5_ck, not {other}'):
      arrays.load(tmp_path / 'd.npz', other)


def test_arrays_load_names_the_file_and_the_command_that_writes_it(tmp_path):
  from trainer import arrays

  not_npz = tmp_path / 'faces.npz.xz'
  not_npz.write_text('not an archive')
  no_validation = tmp_path / 'train_only.npz'
  np.savez(no_validation, class_names=np.array(['a']), dataset=np.array('fer5'),
           train_images=np.zeros(1), train_labels=np.zeros(1), train_sources=np.zeros(1))
  for path, problem in ((tmp_path / 'missing.npz', 'does not exist'),
                        (not_npz, 'is no .npz file'),
                        (no_validation, 'lacks validation_images')):
    with pytest.raises(arrays.ArraysFileError, match=problem) as error:
      arrays.load(path, 'fer5')
    assert str(path) in str(error.value) and 'trainer.dump_arrays' in str(error.value)


def test_training_arrays_join_the_splits_train_split_names():
  from trainer import sources
  splits = {'train': (np.zeros((3, 48, 48, 1), np.uint8), np.array([0, 1, 2])),
            'validation': (np.ones((2, 48, 48, 1), np.uint8), np.array([3, 4]))}
  images, labels = sources.training_arrays(splits, 'train')
  assert images.shape[0] == 3 and labels.tolist() == [0, 1, 2]
  images, labels = sources.training_arrays(splits, 'train+validation')
  assert images[3:].min() == 1 and labels.tolist() == [0, 1, 2, 3, 4]


def test_fitting_epochs_fill_the_budget_and_stay_in_bounds():
  from trainer import budget

  # 1 s epochs plus the 10 % jitter allowance: 9 fit in 10 s, not 10.
  assert budget.fitting_epochs(1.0, budget_s=10, max_epochs=300) == 9
  assert budget.fitting_epochs(1.0, budget_s=10, max_epochs=5) == 5
  assert budget.fitting_epochs(1.0, budget_s=0.1, max_epochs=300) == 1


@pytest.mark.parametrize('seconds_left, epochs_run', [(0.0, 1), (3600.0, 4)])
def test_stop_at_deadline_ends_training_when_no_epoch_fits(seconds_left, epochs_run):
  from trainer import callbacks

  model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
  model.compile(optimizer='sgd', loss='mse')
  deadline = callbacks.StopAtDeadline(time.monotonic() + seconds_left)
  history = model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=4, verbose=0,
                      callbacks=[deadline])
  assert len(history.history['loss']) == epochs_run
  assert deadline.stopped_after == (1 if seconds_left == 0 else None)


@pytest.fixture(scope='session')
def tiny_arrays(tiny_data_dir, shared_dir):
  """The tiny dataset written by `python -m trainer.dump_arrays`, without its test split."""
  def make(folder):
    result = run_trainer(f'--data_dir={tiny_data_dir}',
                         f'--out={folder / "fer5_ck.npz.xz"}', '--splits=train,validation',
                         module='trainer.dump_arrays')
    assert result.returncode == 0, result.stderr[-3000:]
  return made_once(shared_dir / 'arrays', make) / 'fer5_ck.npz.xz'



def test_dump_arrays_writes_the_built_splits(tiny_data_dir, tiny_arrays):
  import tensorflow_datasets as tfds

  from trainer import arrays

  builder = tfds.builder('fer_emotions/fer5_ck', data_dir=tiny_data_dir)
  splits, class_names = arrays.load(tiny_arrays, 'fer5_ck')
  assert class_names == builder.info.features['label'].names
  assert splits.keys() == {'train', 'validation'}
  for split, (images, labels) in splits.items():
    assert images.shape == (builder.info.splits[split].num_examples, 48, 48, 1)
    assert images.dtype == np.uint8 and len(labels) == len(images)


def test_dump_arrays_refuses_splits_without_validation(tiny_data_dir, tmp_path):
  result = run_trainer(f'--data_dir={tiny_data_dir}', f'--out={tmp_path / "x.npz"}',
                       '--splits=train,test', module='trainer.dump_arrays')
  assert result.returncode != 0 and 'validation' in result.stderr
  assert not (tmp_path / 'x.npz').exists()


def _train_from_arrays(tiny_arrays, run_dir, env=None):
  # Several steps per execution, as on a GPU (benchmarks/long_runs_on_jax.sh).
  return run_trainer(f'--arrays={tiny_arrays}', f'--run_dir={run_dir}', *TINY_FLAGS,
                     '--epochs=2', '--time_budget_s=600', '--steps_per_execution=3',
                     env=env)


def test_arrays_writes_a_run_dir_that_evaluate_accepts(tiny_data_dir, tiny_arrays,
                                                          tmp_path):
  run_dir = tmp_path / 'run'
  result = _train_from_arrays(tiny_arrays, run_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'epochs fit the 600 s budget' in result.stdout
  assert 'validation: accuracy' in result.stdout
  assert '--epochs=2' in (run_dir / 'flags.txt').read_text()  # the budget allows both
  assert len((run_dir / 'history.csv').read_text().splitlines()) == 1 + 2
  model = keras.models.load_model(run_dir / 'inference.keras', compile=False)
  assert model.output_shape == (None, 5)

  result = run_trainer(f'--run_dir={run_dir}', f'--data_dir={tiny_data_dir}',
                       module='trainer.evaluate')
  assert result.returncode == 0, result.stderr[-3000:]
  metrics = json.loads((run_dir / 'reports' / 'metrics.json').read_text())
  # The reports describe this run's model on the test split (TINY_FLAGS' --eval_limit).
  splits = tfds.builder('fer_emotions/fer5_ck', data_dir=tiny_data_dir).info.splits
  assert metrics['test']['examples'] == min(16, splits['test'].num_examples)
  report = (run_dir / 'reports' / 'classification_report.txt').read_text()
  assert f"{metrics['test']['accuracy']:.4f}" in report


def test_a_budgeted_run_resumes_with_the_epochs_it_planned(tiny_arrays, tmp_path):
  run_dir = tmp_path / 'run'
  assert _train_from_arrays(tiny_arrays, run_dir).returncode == 0
  (run_dir / 'inference.keras').unlink()  # as if interrupted before the end
  # Resumed on another machine: a new --epochs and the default --steps_per_execution.
  result = run_trainer(f'--arrays={tiny_arrays}', f'--run_dir={run_dir}', *TINY_FLAGS,
                       '--epochs=300', '--time_budget_s=600')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'epochs fit' not in result.stdout  # no new plan
  assert '--epochs=2' in (run_dir / 'flags.txt').read_text()


def test_arrays_names_a_missing_arrays_file(tmp_path):
  result = run_trainer(f'--arrays={tmp_path / "none.npz"}', f'--run_dir={tmp_path / "r"}')
  assert result.returncode != 0
  assert 'none.npz does not exist' in result.stderr and 'Traceback' not in result.stderr


WITHOUT_TENSORFLOW = '''
import runpy, sys
class Hide:  # as on the lent GPU machine: TensorFlow and TFDS are not installed
  def find_spec(self, name, path=None, target=None):
    if name.split('.')[0] in ('tensorflow', 'tensorflow_datasets', 'tf_keras'):
      raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Hide())
sys.argv = ['trainer', *sys.argv[1:]]
runpy.run_module('trainer', run_name='__main__', alter_sys=True)
'''


@pytest.mark.long
@pytest.mark.skipif(importlib.util.find_spec('jax') is None,
                    reason='jax is not installed (pip install jax): the JAX backend path '
                    'of python -m trainer --arrays runs where it is')
def test_arrays_train_members_under_jax_without_tensorflow(tiny_arrays, tmp_path):
  run_dir = tmp_path / 'run'
  command = [sys.executable, '-c', WITHOUT_TENSORFLOW, f'--arrays={tiny_arrays}',
             f'--run_dir={run_dir}', *TINY_FLAGS, '--epochs=2', '--time_budget_s=600',
             '--members_at_once=2', '--balance_classes', '--steps_per_execution=3']
  env = {**os.environ, 'KERAS_BACKEND': 'jax'}
  result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Keras jax on' in (run_dir / 'machine.txt').read_text()
  assert 'member 1 validation: accuracy' in result.stdout
  # Each member is a finished run dir of its own, with its own weights.
  models = [keras.models.load_model(run_dir / f'member_{k}' / 'inference.keras',
                                    compile=False) for k in (0, 1)]
  assert models[0].output_shape == (None, 5)
  assert any(not np.array_equal(a, b) for a, b in
             zip(models[0].get_weights(), models[1].get_weights()))
  assert '--members_at_once=1' in (run_dir / 'member_0' / 'flags.txt').read_text()
  assert 'val_member_1_accuracy' in (run_dir / 'history.csv').read_text()
  assert not (run_dir / 'backup').exists()
  again = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
  assert again.returncode == 0 and 'holds a finished run' in again.stdout
