"""The trainer end to end on a tiny generated dataset: reports, resume, bad input."""

import csv
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import h5py
import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import REPO
from trainer_helpers import run_trainer
from trainer_helpers import TINY_FLAGS

REPORT_FILES = ('metrics.json', 'classification_report.txt', 'confusion_matrix.png',
                'curves.png', 'augmented_samples.png')


def _epochs_logged(history_csv):
  with open(history_csv) as f:
    return [int(row['epoch']) for row in csv.DictReader(f)]


def test_one_training_step_writes_the_whole_run_dir(tiny_data_dir, tmp_path):
  run_dir = tmp_path / 'run'
  result = run_trainer(f'--data_dir={tiny_data_dir}', f'--run_dir={run_dir}', '--epochs=1',
                       '--steps_per_epoch=1', *TINY_FLAGS,
                       env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '0'})
  assert result.returncode == 0, result.stderr[-3000:]
  # No pipeline drops a half-filled cache (a re-read, and a warning in every log).
  assert 'did not fully read the dataset being cached' not in result.stderr
  for name in ('flags.txt', 'checkpoints/best.keras', 'inference.keras',
               'preprocessing.json', 'history.csv'):
    assert (run_dir / name).is_file(), name
  for name in REPORT_FILES:
    assert (run_dir / 'reports' / name).stat().st_size > 0, name
  machine_log = (run_dir / 'machine.txt').read_text().splitlines()
  assert len(machine_log) == 1 and f'{os.cpu_count()} cores' in machine_log[0]
  metrics = json.loads((run_dir / 'reports' / 'metrics.json').read_text())
  assert set(metrics) == {'train', 'validation', 'test', 'test_flip_tta',
                          'dead_relu_fraction'}
  assert len(metrics['dead_relu_fraction']) == 4  # two blocks of two ReLUs
  # The limited splits are evaluated whole, and the report agrees with metrics.json.
  assert metrics['test']['examples'] == 16
  report = (run_dir / 'reports' / 'classification_report.txt').read_text()
  assert f"{metrics['test']['accuracy']:.4f}" in report
  spec = json.loads((run_dir / 'preprocessing.json').read_text())
  assert spec['labels'] == ['angry', 'fearful', 'happy', 'neutral', 'sad']
  assert spec['input']['normalisation'] == {'scale': 1 / 255, 'offset': 0.0}
  # flags.txt is a valid flagfile: re-running with it finds the finished run.
  again = run_trainer(f'--flagfile={run_dir / "flags.txt"}')
  assert again.returncode == 0 and 'holds a finished run' in again.stdout
  evaluated = run_trainer(f'--run_dir={run_dir}', module='trainer.evaluate')
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  assert json.loads((run_dir / 'reports' / 'metrics.json').read_text()) == metrics


def test_inference_model_has_no_augmentation_and_is_float32(tiny_data_dir, tmp_path):
  run_dir = tmp_path / 'run'
  result = run_trainer(f'--data_dir={tiny_data_dir}', f'--run_dir={run_dir}', '--epochs=1',
                       '--steps_per_epoch=1', '--precision=mixed_bfloat16', '--erasing=0.5',
                       '--mixup=0.2', *TINY_FLAGS)
  assert result.returncode == 0, result.stderr[-3000:]
  model = keras.models.load_model(run_dir / 'inference.keras', compile=False)
  assert not [layer for layer in model.layers
              if type(layer).__name__.startswith(('Random', 'MixUp'))]
  assert {layer.dtype_policy.name for layer in model.layers} == {'float32'}
  x = np.random.default_rng(0).random((4, 48, 48, 1), np.float32)
  np.testing.assert_array_equal(model(x, training=False), model(x, training=False))


def test_interrupted_run_resumes_at_the_next_epoch(tiny_data_dir, tmp_path):
  run_dir = tmp_path / 'run'
  args = [sys.executable, '-m', 'trainer', f'--data_dir={tiny_data_dir}',
          f'--run_dir={run_dir}', '--epochs=8', '--steps_per_epoch=2', *TINY_FLAGS]
  first = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
  history = run_dir / 'history.csv'
  deadline = time.time() + 240
  while time.time() < deadline and (
      not history.exists() or len(_epochs_logged(history)) < 3):
    time.sleep(0.2)
  first.send_signal(signal.SIGKILL)
  first.wait()
  done = len(set(_epochs_logged(history)))
  assert 3 <= done < 8, 'the run was not interrupted mid-way'
  second = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert second.returncode == 0, second.stderr[-3000:]
  first_epoch = next(line for line in second.stdout.splitlines()
                     if line.startswith('Epoch '))
  resumed_at = int(first_epoch.split()[1].split('/')[0])
  assert done <= resumed_at <= done + 1  # the killed epoch may have been backed up
  assert sorted(set(_epochs_logged(history))) == list(range(8))
  assert len((run_dir / 'machine.txt').read_text().splitlines()) == 2  # start + resume


def test_run_dir_from_other_flags_is_refused(tiny_data_dir, tmp_path):
  from fer_common import contract
  from trainer import config
  from trainer import run_dir as run_dir_lib

  run_dir = tmp_path / 'run'
  base = (f'--data_dir={tiny_data_dir}', f'--run_dir={run_dir}', '--steps_per_epoch=1',
          '--epochs=1', *TINY_FLAGS)
  assert run_trainer(*base).returncode == 0
  refused = run_trainer(*base, '--learning_rate=0.5')
  assert refused.returncode != 0
  assert "--learning_rate was '0.002', now '0.5'" in refused.stderr
  assert 'Traceback' not in refused.stderr
  saved = contract.read_flags(run_dir / 'flags.txt')
  # A run dir written before a flag existed ran with its default: still the same run.
  older = {name: value for name, value in saved.items() if name != 'mixup'}
  # A run dir that was moved, more epochs, another machine: still the same run.
  moved = config.recorded(config.TrainConfig.from_args(
      [*base[:1], f'--run_dir={tmp_path / "moved"}', *base[2:], '--epochs=9',
       '--steps_per_execution=4']))
  for current in (older, moved):
    run_dir_lib.check_resumable(saved, current, config.default_values())


def test_missing_dataset_says_how_to_build_it(tmp_path):
  result = run_trainer(f'--data_dir={tmp_path}', f'--run_dir={tmp_path / "run"}')
  assert result.returncode != 0
  assert 'python -m fer_tfds.build --manual_dir=' in result.stderr
  assert 'Traceback' not in result.stderr


@pytest.mark.parametrize('flag, message', [
    ('--precision=float64', 'precision'),
    ('--brightness=0.5', 'brightness'),
    ('--erasing=1.5', 'erasing'),
    ('--learning_rate=-1', 'learning_rate'),
    ('--batch_size=0', 'batch_size'),
    ('--dropout=1', 'dropout'),
    ('--epochs=0', 'epochs'),
    ('--filters=32,64,x', 'filters'),
    (('--reduce_lr_patience=3', '--lr_schedule=cosine'), 'lr_schedule=constant'),
    (('--early_stopping_patience=3', '--train_split=train+validation'),
     'cannot be used with --train_split=train+validation'),
])
def test_bad_flag_values_are_refused_clearly(flag, message):
  from absl import flags
  from trainer.config import ConfigError
  from trainer.config import TrainConfig

  with pytest.raises((flags.Error, ConfigError), match=re.escape(message)):
    TrainConfig.from_args(['--run_dir=unused', *((flag,) if isinstance(flag, str) else flag)])


@pytest.mark.parametrize('flag', ['--dropout=1', '--lr_schedule=linear', '--brightness=2,3'])
def test_a_bad_flag_ends_the_command_in_one_line_and_writes_nothing(tmp_path, flag):
  result = run_trainer(f'--run_dir={tmp_path / "run"}', flag)
  assert result.returncode != 0 and 'Traceback' not in result.stderr
  assert flag.split('=')[0] in result.stderr
  assert not (tmp_path / 'run').exists()


def test_help_lists_the_trainers_flags_and_no_tensorflow_start_up_noise():
  result = run_trainer('--help')  # absl exits with 1 after printing the help
  assert '--learning_rate' in result.stdout and '--[no]balance_classes' in result.stdout
  for noise in ('cuInit', 'oneDNN', 'cuda drivers', 'rebuild TensorFlow'):
    assert noise not in result.stderr


def test_fine_tuning_starts_from_the_run_and_refits_on_validation(
    trained_run, tiny_data_dir, tmp_path):
  run_dir = tmp_path / 'refit'
  # A learning rate of 0 leaves the conv kernels as --init_from gave them.
  result = run_trainer(f'--data_dir={tiny_data_dir}', f'--run_dir={run_dir}',
                       f'--init_from={trained_run}', '--train_split=train+validation',
                       '--filters=8,16', '--batch_size=8', '--eval_limit=16', '--epochs=1',
                       '--learning_rate=0', '--weight_decay=0', '--kernel_size=4')
  assert result.returncode == 0, result.stderr[-3000:]
  splits = tfds.builder('fer_emotions/fer5_ck', data_dir=tiny_data_dir).info.splits
  steps = splits['train+validation'].num_examples // 8
  assert steps > splits['train'].num_examples // 8
  assert f'{steps}/{steps}' in result.stdout  # one epoch covers both splits
  assert not (run_dir / 'checkpoints' / 'best.keras').exists()  # the last epoch is kept

  def kernels(path):
    model = keras.models.load_model(path / 'inference.keras', compile=False)
    return [w for w in model.weights if 'kernel' in w.path]
  for start, end in zip(kernels(trained_run), kernels(run_dir), strict=True):
    np.testing.assert_array_equal(start, end)


@pytest.mark.parametrize('filters, message', [
    ('8,16', 'is not a finished trainer run'),
    ('4,8', 'holds another model than this FERNet'),
])
def test_init_from_a_run_that_cannot_start_this_model_is_refused(
    trained_run, tiny_data_dir, tmp_path, filters, message):
  source = tmp_path / 'empty' if 'finished' in message else trained_run
  result = run_trainer(f'--data_dir={tiny_data_dir}', f'--run_dir={tmp_path / "run"}',
                       f'--init_from={source}', f'--filters={filters}', '--epochs=1',
                       '--steps_per_epoch=1', '--batch_size=8')
  assert result.returncode != 0
  assert message in result.stderr and str(source) in result.stderr
  assert 'Traceback' not in result.stderr
  if source != trained_run:  # refused before the run dir is written
    assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('train_split, kept', [
    ('train', 'best finite epoch so far is kept in'),
    ('train+validation', 'keeps no best-epoch model')])
def test_nan_loss_stops_with_a_clear_message(tiny_data_dir, tmp_path, train_split, kept):
  result = run_trainer(f'--data_dir={tiny_data_dir}', f'--run_dir={tmp_path / "run"}',
                       '--epochs=3', '--steps_per_epoch=2', '--learning_rate=1e30',
                       '--optimizer=adam', '--weight_decay=0', f'--train_split={train_split}',
                       *TINY_FLAGS)
  assert result.returncode != 0
  assert 'the loss became NaN/inf' in result.stderr and kept in result.stderr
  assert 'Traceback' not in result.stderr
  # Nothing was saved from non-finite weights: no best checkpoint, no backup.
  run_dir = tmp_path / 'run'
  for path in [*run_dir.glob('checkpoints/*.keras'), *run_dir.rglob('*.weights.h5')]:
    assert all_finite(path), path


def all_finite(path: pathlib.Path) -> bool:
  """Whether every floating-point array saved in a .keras or .weights.h5 file is finite."""
  if path.suffix == '.keras':
    model = keras.saving.load_model(path, compile=False)
    return all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in model.weights)
  arrays = []
  with h5py.File(path) as saved:
    saved.visititems(lambda _, item: arrays.append(item[()]) if isinstance(
        item, h5py.Dataset) and item.dtype.kind == 'f' else None)
  return all(np.isfinite(a).all() for a in arrays)


def test_all_finite_sees_a_nan_in_a_backup(tmp_path):
  model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
  path = tmp_path / 'backup.weights.h5'
  model.save_weights(path)
  assert all_finite(path)
  model.layers[0].kernel.assign(np.full((2, 1), np.nan, 'float32'))
  model.save_weights(path)
  assert not all_finite(path)


FLAGFILES = sorted(str(path.relative_to(REPO)) for path in [
    *(REPO / 'configs').rglob('*.cfg'), *(REPO / 'docs' / 'results' / 'configs').glob('*.cfg'),
    *(REPO / 'benchmarks' / 'configs').glob('*.cfg')])


@pytest.mark.parametrize('flagfile', FLAGFILES)
def test_every_flagfile_parses_passes_the_checks_and_includes_at_most_one_file(
    flagfile, monkeypatch):
  from trainer.config import TrainConfig

  monkeypatch.chdir(REPO)  # flagfiles include configs/fernet.cfg
  path = REPO / flagfile
  includes = [line for line in path.read_text().splitlines()
              if line.startswith('--flagfile=')]
  assert len(includes) <= 1
  for include in includes:  # and what they include includes nothing further
    assert '--flagfile=' not in pathlib.Path(include.split('=', 1)[1]).read_text()
  config_value = TrainConfig.from_args([f'--flagfile={flagfile}'])
  assert config_value.run_dir == f'runs/{path.stem}'
  if path.stem == 'fernet_k4':  # an experiment overrides what it includes
    assert (config_value.kernel_size, config_value.epochs, config_value.filters) == (
        4, 13, (16, 32, 64, 128, 256))


def test_the_defaults_are_the_recommended_recipe_of_configs_fernet(monkeypatch):
  import dataclasses

  from trainer.config import TrainConfig

  monkeypatch.chdir(REPO)
  spelled_out = TrainConfig.from_args(['--flagfile=configs/fernet.cfg'])
  assert dataclasses.replace(spelled_out, run_dir=None) == TrainConfig()


def test_sgd_is_nesterov_and_decays_weights_but_not_batchnorm():
  from trainer import recipe
  from trainer.config import TrainConfig

  optimizer = recipe.make_optimizer(10, TrainConfig.from_args([
      '--run_dir=unused', '--optimizer=sgd', '--momentum=0.8', '--learning_rate=0.1',
      '--weight_decay=0.5', '--lr_schedule=constant']))
  assert isinstance(optimizer, keras.optimizers.SGD)
  assert optimizer.nesterov and optimizer.momentum == 0.8

  kernel = keras.Variable(np.ones(3), name='kernel')
  gamma = keras.Variable(np.ones(3), name='gamma')
  optimizer.apply_gradients([(np.zeros(3, 'float32'), kernel),
                             (np.zeros(3, 'float32'), gamma)])
  np.testing.assert_allclose(keras.ops.convert_to_numpy(kernel), 1 - 0.1 * 0.5)
  np.testing.assert_allclose(keras.ops.convert_to_numpy(gamma), 1.0)


def test_progress_log_reports_with_several_steps_per_execution(capsys):
  from trainer import callbacks

  model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
  model.compile(optimizer='sgd', loss='mse', steps_per_execution=4)
  model.fit(np.zeros((48, 2)), np.zeros((48, 1)), batch_size=4, verbose=0,
            callbacks=[callbacks.ProgressLog(batch_size=4, every=5)])
  # Keras reports only batches 4, 8 and 12: one line for each multiple of 5 passed.
  lines = capsys.readouterr().out.splitlines()
  assert [line.split(':')[0] for line in lines] == ['epoch 1/1 batch 8/12',
                                                    'epoch 1/1 batch 12/12']
  assert all(' left ' in line for line in lines)


def test_progress_log_says_how_long_the_run_has_left(capsys, monkeypatch):
  from trainer import callbacks

  clock = iter(range(0, 1000, 5))  # every time.monotonic() call: 5 s later
  monkeypatch.setattr(callbacks.time, 'monotonic', lambda: float(next(clock)))
  log = callbacks.ProgressLog(batch_size=10, every=2)
  log.set_params({'steps': 4, 'epochs': 3})
  log.on_epoch_begin(0)
  log.on_train_batch_end(1)  # 2 steps in 5 s: 2 steps left + 2 epochs of 4 steps, 25 s
  log.on_epoch_end(0)  # the epoch with validation took 10 s
  log.on_epoch_begin(1)
  log.on_train_batch_end(1)  # 2 steps left (5 s) + one epoch as long as the last (10 s)
  lines = capsys.readouterr().out.splitlines()
  assert lines[0].startswith('epoch 1/3 batch 2/4: 4 images/s, about 25 s left ')
  assert lines[1].startswith('epoch 2/3 batch 2/4: 4 images/s, about 15 s left ')


@pytest.mark.parametrize('command', ['trainer', 'export', 'fer_tfds.build'])
def test_the_light_install_says_which_extra_the_command_needs(command):
  # absl, which only the train extra installs, made unfindable.
  code = f'''
import runpy, sys
class Hide:
  def find_spec(self, name, path=None, target=None):
    if name.split('.')[0] == 'absl':
      raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Hide())
sys.argv = ['{command}']
runpy.run_module('{command}', run_name='__main__')
'''
  result = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
  assert result.returncode != 0 and 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      f"error: {command.split('.')[0]} needs absl, which the light install leaves out; "
      "install the training extra: pip install '.[train]'")


def test_each_option_is_declared_once_and_flags_txt_spells_it_as_absl_does(monkeypatch):
  import dataclasses

  from absl import flags
  from fer_common import contract
  from trainer import config

  fields = dataclasses.fields(config.TrainConfig)
  values = flags.FlagValues()
  config.define_flags(values)
  assert sorted(values) == sorted(field.name for field in fields)
  assert all(field.metadata['help'] for field in fields)
  monkeypatch.chdir(REPO)
  args = ['--flagfile=configs/shipped/fernet_long_erase.cfg', '--noflip', '--seed=3',
          '--filters=8,16', '--brightness=-0.3,0.2', '--arrays=a.npz']
  values(['trainer', *args])
  absl_spelling = contract.parse_flag_lines(values[name].serialize() for name in values)
  assert config.recorded(config.TrainConfig.from_args(args)) == absl_spelling
