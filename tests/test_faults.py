"""Fault injection: the real commands on the tiny fixtures, killed with SIGKILL at named
moments, then run again as a user would. Nothing of the user's may be lost: the run
finishes with every file whole, and an export never deletes what it did not write.

A kill is placed by `KILLER`, which runs a command's module after wrapping the two ways
our code puts bytes on disk (os.replace of a finished temporary file, Path.write_bytes):
the N-th write to a path matching KILL_AT truncates what was written to 96 bytes and
SIGKILLs the process, exactly as a power cut in the middle of that write would.
"""

import os
import signal
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest

from conftest import REPO
from trainer_helpers import TINY_FLAGS
from trainer_helpers import run_trainer

KILLER = '''
import os, pathlib, re, runpy, signal, sys
pattern, nth = re.compile(os.environ['KILL_AT']), int(os.environ.get('KILL_NTH', '1'))
seen = 0

def maybe_die(path, written):
  global seen
  if pattern.search(str(path)):
    seen += 1
    if seen == nth:
      with open(written, 'r+b') as f:
        f.truncate(96)
      os.kill(os.getpid(), signal.SIGKILL)

real_replace, real_write_bytes = os.replace, pathlib.Path.write_bytes
def replace(src, dst, **kw):
  maybe_die(dst, src)
  return real_replace(src, dst, **kw)
def write_bytes(self, data):
  result = real_write_bytes(self, data)
  maybe_die(self, self)
  return result
os.replace, pathlib.Path.write_bytes = replace, write_bytes
module = sys.argv[1]
sys.argv = [module, *sys.argv[2:]]
runpy.run_module(module, run_name='__main__', alter_sys=True)
'''


def run_killed(module, args, kill_at, nth=1):
  """Runs `python -m module args` under KILLER; returns the CompletedProcess."""
  env = {**os.environ, 'KILL_AT': kill_at, 'KILL_NTH': str(nth)}
  return subprocess.run([sys.executable, '-c', KILLER, module, *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)


def train_args(data_dir, run_dir, epochs=4):
  return [f'--data_dir={data_dir}', f'--run_dir={run_dir}', f'--epochs={epochs}',
          '--steps_per_epoch=2', *TINY_FLAGS]


def history_epochs(run_dir):
  lines = (run_dir / 'history.csv').read_text().splitlines()[1:]
  return [int(line.split(',')[0]) for line in lines]


def assert_finished(run_dir):
  """Every final file of the run is there and loads; the resume state is gone."""
  model = keras.models.load_model(run_dir / 'inference.keras', compile=False)
  assert model.output_shape == (None, 5)
  assert (run_dir / 'preprocessing.json').stat().st_size > 0
  assert not (run_dir / 'backup').exists()
  assert not list(run_dir.rglob('.partial-*'))


def test_kill_while_the_first_backup_is_written_costs_one_epoch(tiny_data_dir, tmp_path):
  run_dir = tmp_path / 'run'
  args = train_args(tiny_data_dir, run_dir)
  killed = run_killed('trainer', args, r'backup/epoch-0001\.weights\.h5$')
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
  again = run_trainer(*args)
  assert again.returncode == 0, again.stderr[-3000:]
  assert 'a backup that a kill interrupted' in again.stdout
  assert_finished(run_dir)
  assert history_epochs(run_dir) == [0, 1, 2, 3]


def test_kill_while_a_later_backup_is_written_resumes_without_repeating_epochs(
    tiny_data_dir, tmp_path):
  run_dir = tmp_path / 'run'
  args = train_args(tiny_data_dir, run_dir)
  # Epoch 3's history row is written, its backup is not: the resume trains it again.
  killed = run_killed('trainer', args, r'backup/epoch-0003\.weights\.h5$')
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
  assert history_epochs(run_dir) == [0, 1, 2]
  again = run_trainer(*args)
  assert again.returncode == 0, again.stderr[-3000:]
  assert 'Resuming after epoch 2' in again.stdout
  assert_finished(run_dir)
  assert history_epochs(run_dir) == [0, 1, 2, 3]  # each epoch once


def test_a_damaged_backup_is_discarded_and_the_one_before_used(tiny_data_dir, tmp_path):
  run_dir = tmp_path / 'run'
  args = train_args(tiny_data_dir, run_dir)
  killed = run_killed('trainer', args, r'backup/epoch-0003\.weights\.h5$')
  assert killed.returncode == -signal.SIGKILL
  newest = run_dir / 'backup' / 'epoch-0002.weights.h5'
  newest.write_bytes(newest.read_bytes()[:96])  # damaged on disk after it was written
  again = run_trainer(*args)
  assert again.returncode == 0, again.stderr[-3000:]
  assert f'The backup {newest} is damaged' in again.stdout
  assert 'Resuming after epoch 1' in again.stdout
  assert_finished(run_dir)


def test_kill_while_the_final_model_is_saved_finishes_on_the_next_run(
    tiny_data_dir, tmp_path):
  run_dir = tmp_path / 'run'
  args = train_args(tiny_data_dir, run_dir, epochs=2)
  killed = run_killed('trainer', args, r'inference\.keras$')
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
  assert not (run_dir / 'inference.keras').exists()
  assert list((run_dir / 'backup').glob('epoch-*'))  # kept until the model is on disk
  evaluated = run_trainer(f'--run_dir={run_dir}', module='trainer.evaluate')
  assert evaluated.returncode != 0 and 'Traceback' not in evaluated.stderr
  assert 'inference.keras is missing' in evaluated.stderr
  again = run_trainer(*args)
  assert again.returncode == 0, again.stderr[-3000:]
  assert 'holds a finished run' not in again.stdout
  assert_finished(run_dir)
  assert (run_dir / 'reports' / 'metrics.json').is_file()


def test_non_finite_weights_are_never_checkpointed(tmp_path):
  from trainer import callbacks

  model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
  model.compile(optimizer='sgd', loss='mse')
  best = callbacks.BestCheckpoint(tmp_path / 'best.keras')
  backup = callbacks.ResumableBackup(tmp_path / 'backup')
  for callback in (best, backup):
    callback.set_model(model)
  model.layers[0].kernel.assign(np.full((2, 1), np.nan, np.float32))
  best.on_epoch_end(0, {'val_accuracy': 0.9})
  backup.on_epoch_end(0, {})
  assert not (tmp_path / 'best.keras').exists() and not backup.backups()
  model.layers[0].kernel.assign(np.ones((2, 1), np.float32))
  best.on_epoch_end(1, {'val_accuracy': 0.9})
  backup.on_epoch_end(1, {})
  assert (tmp_path / 'best.keras').is_file()
  [(epochs, path)] = backup.backups()
  assert epochs == 2
  with h5py.File(path) as f:
    assert f.keys()


@pytest.fixture
def exported_once(trained_run, tmp_path):
  """An export dir written by `python -m export` from trained_run."""
  out_dir = tmp_path / 'exports' / 'tiny'
  result = run_trainer(f'--run_dir={trained_run}', f'--out_dir={out_dir}',
                       '--calibration_samples=8', '--latency_runs=2', '--eval_limit=8',
                       module='export')
  assert result.returncode == 0, result.stderr[-3000:]
  return out_dir


def test_kill_during_an_overwriting_export_keeps_the_previous_export(
    trained_run, exported_once):
  out_dir = exported_once
  before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
  args = [f'--run_dir={trained_run}', f'--out_dir={out_dir}', '--overwrite',
          '--calibration_samples=8', '--latency_runs=2', '--eval_limit=8']
  killed = run_killed('export', args, r'dynamic\.tflite$')
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
  assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before
  assert list(out_dir.parent.glob('.partial-*'))  # what the kill left ...
  again = run_trainer(*args, module='export')
  assert again.returncode == 0, again.stderr[-3000:]
  assert 'left by an export that was interrupted' in again.stdout  # ... is cleaned
  assert not list(out_dir.parent.glob('.partial-*'))
  assert oct((out_dir).stat().st_mode & 0o777) == oct(0o755)


@pytest.mark.parametrize('where', ['the run dir', 'inside the run dir', 'above the run dir',
                                   'a folder export did not write'])
def test_export_never_deletes_what_it_did_not_write(trained_run, tmp_path, where):
  import shutil
  run_dir = tmp_path / 'parent' / 'run'
  shutil.copytree(trained_run, run_dir)
  out_dir = {'the run dir': run_dir, 'inside the run dir': run_dir / 'export',
             'above the run dir': tmp_path / 'parent',
             'a folder export did not write': tmp_path / 'mine'}[where]
  if where == 'a folder export did not write':
    out_dir.mkdir()
    (out_dir / 'notes.txt').write_text('mine')
  before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob('*'))
  result = run_trainer(f'--run_dir={run_dir}', f'--out_dir={out_dir}', '--overwrite',
                       module='export')
  assert result.returncode != 0
  assert result.stderr.strip().splitlines()[-1].startswith('error: --out_dir=')
  assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob('*')) == before
