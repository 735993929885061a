"""Training on several workers (trainer/multi_worker.py): the same training as fit(), the
same weights on every worker, and a run that survives the loss of a worker."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO
from trainer import model as model_lib
from trainer import multi_worker
from trainer import recipe

# No dropout or augmentation: the runs compared differ only in how they are distributed.
# float32: bfloat16 (what precision=auto picks on an AMX CPU) rounds two workers' sums of
# half-batches otherwise than one process's sum of the batch.
EXACT_FLAGS = ('--filters=4,8', '--batch_size=8', '--eval_limit=16', '--dropout=0',
               '--head_dropout=0', '--rotation=0', '--zoom=0', '--shift=0', '--noflip',
               '--brightness=0,0', '--steps_per_epoch=4', '--balance_classes',
               '--precision=float32')

# Runs a module with the custom step wrapped to SIGKILL the process before its N-th call.
DIE_BEFORE_STEP = '''
import os, runpy, signal, sys
from trainer import multi_worker
train, calls = multi_worker._Steps.train, [0]
def train_or_die(self, *args):
  calls[0] += 1
  if calls[0] == int(os.environ['DIE_BEFORE_STEP']):
    os.kill(os.getpid(), signal.SIGKILL)
  return train(self, *args)
multi_worker._Steps.train = train_or_die
module = sys.argv[1]
sys.argv = [module, *sys.argv[2:]]
runpy.run_module(module, run_name='__main__', alter_sys=True)
'''


def _start_workers(data_dir, run_dir, count, epochs, die_before_step=None):
  """Starts `count` trainer workers on 127.0.0.1; worker 1 dies before the given step."""
  processes = []
  for index, tf_config in enumerate(multi_worker.local_cluster(count)):
    env = dict(os.environ, TF_CONFIG=tf_config)
    command = ['-m', 'trainer']
    if index == 1 and die_before_step:
      env['DIE_BEFORE_STEP'] = str(die_before_step)
      command = ['-c', DIE_BEFORE_STEP, 'trainer']
    processes.append(subprocess.Popen(
        [sys.executable, *command, f'--data_dir={data_dir}', f'--run_dir={run_dir}',
         f'--epochs={epochs}', *EXACT_FLAGS],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  return processes


def _finish(processes):
  """(return code, stdout + stderr) of each process, once all have ended."""
  outputs = [p.communicate(timeout=300) for p in processes]
  return [(p.returncode, out + err) for p, (out, err) in zip(processes, outputs)]


def _weights(path):
  return keras.models.load_model(path, compile=False).get_weights()


@pytest.mark.long
def test_two_workers_killed_and_restarted_end_like_one_uninterrupted_process(
    tiny_data_dir, tmp_path):
  single = tmp_path / 'single'
  [(code, output)] = _finish(_start_workers(tiny_data_dir, single, 1, epochs=3))
  assert code == 0, output[-3000:]

  run_dir = tmp_path / 'two'
  # Worker 1 dies in the second epoch (4 steps an epoch, one call a step).
  (chief_code, chief_output), (dead_code, _) = _finish(
      _start_workers(tiny_data_dir, run_dir, 2, epochs=3, die_before_step=6))
  assert dead_code == -9
  assert chief_code == 1
  last_line = chief_output.strip().splitlines()[-1]
  assert last_line.startswith('error: another worker stopped'), chief_output[-3000:]
  assert 'Start every worker again with the same command' in last_line
  assert not (run_dir / 'inference.keras').exists()

  results = _finish(_start_workers(tiny_data_dir, run_dir, 2, epochs=3))
  for code, output in results:
    assert code == 0, output[-3000:]
    assert 'Resuming after epoch 1 from' in output

  chief, worker = _weights(run_dir / 'inference.keras'), _weights(
      run_dir / 'workers' / '1' / 'inference.keras')
  for a, b in zip(chief, worker):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(chief, _weights(single / 'inference.keras')):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  history = (run_dir / 'history.csv').read_text().splitlines()
  assert [line.split(',')[0] for line in history[1:]] == ['0', '1', '2']
  assert (run_dir / 'reports' / 'metrics.json').exists()
  assert not (run_dir / 'workers' / '1' / 'reports' / 'metrics.json').exists()
  assert not (run_dir / 'backup').exists()


def test_the_custom_step_trains_as_fit_does_and_logs_the_compiled_metrics(tmp_path):
  rng = np.random.default_rng(0)
  images = rng.normal(size=(64, 48, 48, 1)).astype('float32')
  labels = np.eye(5, dtype='float32')[rng.integers(0, 5, 64)]
  class_weights = np.array([2.0, 0.5, 1.0, 1.0, 3.0], np.float32)
  keras.utils.set_random_seed(1)
  by_fit = model_lib.build_fernet(5, filters=(4, 8), kernel_size=3, dropout=0.0,
                                  head_dropout=0.0)
  by_loop = keras.models.clone_model(by_fit)
  by_loop.set_weights(by_fit.get_weights())
  for model in (by_fit, by_loop):
    model.compile(optimizer=keras.optimizers.AdamW(1e-3),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                  metrics=['accuracy', keras.metrics.AUC(name='auc')])
  data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8).repeat()
  weighted = data.map(lambda x, y: (x, y, recipe.example_weights(class_weights, y)))
  history = by_fit.fit(data, epochs=2, steps_per_epoch=4, validation_data=data.take(2),
                       class_weight=dict(enumerate(class_weights)), verbose=0).history
  logged = keras.callbacks.History()
  strategy = tf.distribute.get_strategy()
  multi_worker.fit(strategy, by_loop, weighted, data.take(2), epochs=2, steps_per_epoch=4,
                   steps_per_execution=3, callbacks=[logged],
                   backup=multi_worker.CheckpointBackup(tmp_path, tmp_path), verbose=0)
  for a, b in zip(by_fit.get_weights(), by_loop.get_weights()):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  assert set(logged.history) == set(history)  # val_auc too: nothing re-derived by hand
  for name, values in history.items():
    np.testing.assert_allclose(logged.history[name], values, rtol=1e-3, atol=1e-4)
