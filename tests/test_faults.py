"""Fault injection: the real commands on the tiny fixtures, killed with SIGKILL at named
moments, then run again as a user would. Nothing of the user's may be lost: the run
finishes with every file whole, and an export never deletes what it did not write.

A kill is placed by `KILLER`, which runs a command's module after wrapping the two ways
our code puts bytes on disk (os.replace of a finished temporary file, Path.write_bytes):
the N-th write to a path matching KILL_AT truncates what was written to 96 bytes and
SIGKILLs the process, exactly as a power cut in the middle of that write would.
"""

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

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
def exported_once(exported, tmp_path):
  """A copy of the session's export of trained_run, to be overwritten."""
  out_dir = tmp_path / 'exports' / 'tiny'
  shutil.copytree(exported[0], out_dir)
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


# Faults a user's machine produces besides a kill: a second command on the same output,
# SIGTERM, a damaged dataset, a full disk.

def start_trainer(args):
  """`python -m trainer args` started in the background."""
  return subprocess.Popen([sys.executable, '-m', 'trainer', *args], cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path, process, seconds=120):
  """Waits until `path` exists (while `process` runs)."""
  deadline = time.monotonic() + seconds
  while not path.exists():
    assert process.poll() is None, process.communicate()[1][-3000:]
    assert time.monotonic() < deadline, f'{path} did not appear'
    time.sleep(0.2)


def test_a_second_training_on_one_run_dir_refuses_and_a_killed_one_leaves_no_lock(
    tiny_data_dir, tmp_path):
  run_dir = tmp_path / 'run'
  args = train_args(tiny_data_dir, run_dir, epochs=200)
  first = start_trainer(args)
  wait_for(run_dir / 'flags.txt', first)
  second = run_trainer(*args)
  assert second.returncode == 1
  last = second.stderr.strip().splitlines()[-1]
  assert last.startswith(f'error: the run dir {run_dir} is in use by process {first.pid}')
  assert first.poll() is None  # the first goes on, untouched
  first.send_signal(signal.SIGKILL)
  first.wait()
  again = run_trainer(*train_args(tiny_data_dir, run_dir, epochs=2))
  assert again.returncode == 0, again.stderr[-3000:]
  assert_finished(run_dir)


def test_wait_for_lock_waits_for_the_run_that_holds_it(tiny_data_dir, tmp_path):
  run_dir = tmp_path / 'run'
  args = train_args(tiny_data_dir, run_dir, epochs=3)
  first = start_trainer(args)
  wait_for(run_dir / 'flags.txt', first)
  second = run_trainer(*args, '--wait_for_lock')
  assert first.wait(timeout=300) == 0
  assert second.returncode == 0, second.stderr[-3000:]
  assert f'Waiting for process {first.pid}' in second.stdout
  assert 'holds a finished run' in second.stdout
  assert history_epochs(run_dir) == [0, 1, 2]
  assert not (tmp_path / '.run.lock').exists()  # each removed its lock as it ended


def test_sigterm_stops_training_with_one_line_and_the_same_command_resumes(
    tiny_data_dir, tmp_path):
  run_dir = tmp_path / 'run'
  args = train_args(tiny_data_dir, run_dir, epochs=60)
  first = start_trainer(args)
  wait_for(run_dir / 'backup' / 'epoch-0002.weights.h5', first)
  first.send_signal(signal.SIGTERM)
  _, err = first.communicate(timeout=60)
  assert first.returncode == 130, err[-3000:]
  assert 'Traceback' not in err
  last = err.strip().splitlines()[-1]
  assert last.startswith('stopped:') and 'run the same command again' in last
  again = run_trainer(*train_args(tiny_data_dir, run_dir, epochs=4))
  assert again.returncode == 0, again.stderr[-3000:]
  assert 'Resuming after epoch' in again.stdout
  assert history_epochs(run_dir) == [0, 1, 2, 3]
  assert_finished(run_dir)


def test_a_damaged_dataset_file_is_named_before_training_with_the_rebuild_command(
    tiny_data_dir, tmp_path):
  data_dir = tmp_path / 'tfds'
  shutil.copytree(tiny_data_dir, data_dir)
  shard = sorted(data_dir.rglob('*train.tfrecord*'))[0]
  data = bytearray(shard.read_bytes())
  for i in range(len(data) // 2, len(data) // 2 + 32):
    data[i] ^= 0xFF
  shard.write_bytes(bytes(data))
  result = run_trainer(*train_args(data_dir, tmp_path / 'run', epochs=1))
  assert result.returncode == 1 and 'Traceback' not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('error: the dataset fer_emotions/fer5_ck is damaged')
  assert str(shard) in last and 'python -m fer_tfds.build' in last and 'rm -r' in last


@pytest.fixture
def small_disk(tmp_path):
  """A 300 KB tmpfs, as a nearly full disk (mounting needs root; CI runs as root)."""
  folder = tmp_path / 'small'
  folder.mkdir()
  if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=300k', 'tmpfs', str(folder)],
                    capture_output=True).returncode != 0:
    pytest.skip('cannot mount a small tmpfs here (needs root): the full-disk test is '
                'skipped')
  yield folder
  subprocess.run(['umount', str(folder)], check=True)


def test_an_export_onto_a_full_disk_ends_in_one_line_and_leaves_nothing(
    trained_run, small_disk):
  out_dir = small_disk / 'exports' / 'tiny'
  result = run_trainer(f'--run_dir={trained_run}', f'--out_dir={out_dir}',
                       '--calibration_samples=8', '--latency_runs=2', '--eval_limit=8',
                       module='export')
  assert result.returncode == 1 and 'Traceback' not in result.stderr, result.stderr[-3000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(f'error: no space left on the disk of {out_dir.parent}')
  assert 'the export needs about' in last
  assert not out_dir.exists()
  assert not list(small_disk.rglob('.partial-*'))  # nothing half-written left


def test_two_exports_into_one_folder_the_second_refuses(trained_run, tmp_path):
  out_dir = tmp_path / 'exports' / 'tiny'
  args = [f'--run_dir={trained_run}', f'--out_dir={out_dir}', '--calibration_samples=8',
          '--latency_runs=2', '--eval_limit=8']
  first = subprocess.Popen([sys.executable, '-m', 'export', *args], cwd=REPO, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  lock = out_dir.parent / f'.{out_dir.name}.lock'
  wait_for(lock, first)
  time.sleep(0.5)  # the lock file is created just before it is locked
  second = run_trainer(*args, module='export')
  assert first.wait(timeout=300) == 0, first.communicate()[1][-3000:]
  assert second.returncode == 1
  assert second.stderr.strip().splitlines()[-1].startswith(
      f'error: the export folder {out_dir} is in use by process {first.pid}')


def test_training_onto_a_full_disk_ends_in_one_line_and_resumes_elsewhere(
    tiny_data_dir, small_disk, tmp_path):
  run_dir = small_disk / 'run'
  result = run_trainer(*train_args(tiny_data_dir, run_dir, epochs=30))
  assert result.returncode == 1 and 'Traceback' not in result.stderr, result.stderr[-3000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(f'error: no space left on the disk of {run_dir}')
  assert not list(run_dir.rglob('.partial-*'))  # nothing half-written left
  # What it wrote is whole: moved to a disk with room, the run goes on from there.
  moved = tmp_path / 'run'
  shutil.copytree(run_dir, moved)
  again = run_trainer(*train_args(tiny_data_dir, moved, epochs=3))
  assert again.returncode == 0, again.stderr[-3000:]
  assert_finished(moved)


@pytest.mark.parametrize('damaged', ['inference.keras', 'preprocessing.json', 'flags.txt'])
def test_an_export_of_a_run_with_a_damaged_file_ends_in_one_line_naming_it(
    trained_run, tmp_path, damaged):
  run_dir = tmp_path / 'run'
  shutil.copytree(trained_run, run_dir)
  path = run_dir / damaged
  path.write_bytes(path.read_bytes()[:20])  # cut short, as a full disk or a bad copy does
  result = run_trainer(f'--run_dir={run_dir}', f'--out_dir={tmp_path / "out"}',
                       '--calibration_samples=8', '--latency_runs=2', '--eval_limit=8',
                       module='export')
  assert result.returncode == 1 and 'Traceback' not in result.stderr, result.stderr[-3000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('error:') and damaged in last, last
  assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('damage', ['garbage', 'cut short'])
def test_a_damaged_video_ends_in_one_line_or_with_the_frames_it_holds(tmp_path, damage):
  from conftest import moving_heads_video
  video = tmp_path / 'clip.avi'
  moving_heads_video(video, frames=20)
  data = video.read_bytes()
  video.write_bytes(os.urandom(len(data)) if damage == 'garbage' else data[:len(data) // 2])
  result = subprocess.run([sys.executable, '-m', 'edge', 'video', str(video), '--model',
                           'fast'], cwd=REPO, capture_output=True, text=True, timeout=120)
  assert 'Traceback' not in result.stderr
  if damage == 'garbage':
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith('error:')
  else:  # the frames before the cut are classified, then the file ends
    assert result.returncode == 0, result.stderr[-2000:]
    assert 0 < len(result.stdout.splitlines()) < 20


def test_a_damaged_model_json_is_one_line(tmp_path):
  from edge import cli
  folder = tmp_path / 'model'
  shutil.copytree(cli.shipped_model('fast').parent, folder)
  (folder / 'model.json').write_text('{"labels": [')
  result = subprocess.run([sys.executable, '-m', 'edge', 'bench', '--model',
                           str(folder / 'int8.tflite'), '--runs', '2'], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('error:') and 'model.json is not a valid model.json' in last


@pytest.mark.long
def test_every_command_refuses_an_output_another_process_holds(
    trained_run, exported, tiny_data_dir, tmp_path):
  from fer_common import contract
  from fer_common import locks
  from fer_tfds.fer_emotions import dummy_data_generation
  import tensorflow_datasets as tfds
  out_dir, _ = exported
  manual = dummy_data_generation.write_archives(tmp_path / 'manual')
  new_data = tmp_path / 'tfds'
  dataset = tfds.builder(f'{contract.DATASET}/fer5', data_dir=str(new_data)).data_dir
  commands = {  # each with the output it writes
      'trainer': (train_args(tiny_data_dir, tmp_path / 'run'), tmp_path / 'run'),
      'trainer.ensemble': ([f'--members={trained_run},{trained_run}',
                            f'--run_dir={tmp_path / "ensemble"}',
                            f'--data_dir={tiny_data_dir}'], tmp_path / 'ensemble'),
      'export': ([f'--run_dir={trained_run}', f'--out_dir={tmp_path / "export"}'],
                 tmp_path / 'export'),
      'export.ship': ([f'--export_dir={out_dir}', f'--to={tmp_path / "shipped"}'],
                      tmp_path / 'shipped'),
      'fer_tfds.build': ([f'--manual_dir={manual}', '--config=fer5',
                          f'--data_dir={new_data}'], pathlib.Path(dataset)),
  }
  for module, (args, output) in commands.items():
    with locks.held(output, 'the output'):  # held by this process
      result = run_trainer(*args, module=module)
    assert result.returncode == 1, (module, result.stderr[-2000:])
    last = result.stderr.strip().splitlines()[-1]
    assert f'is in use by process {os.getpid()}' in last, (module, last)
    assert not output.exists() or module == 'fer_tfds.build', module  # nothing written


def test_sigterm_stops_an_export_and_leaves_the_previous_one(trained_run, exported_once):
  out_dir = exported_once
  before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
  process = subprocess.Popen(
      [sys.executable, '-m', 'export', f'--run_dir={trained_run}', f'--out_dir={out_dir}',
       '--overwrite', '--calibration_samples=8', '--latency_runs=2', '--eval_limit=8'],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  wait_for(out_dir.parent / f'.{out_dir.name}.lock', process)
  time.sleep(2)  # into the conversion
  process.send_signal(signal.SIGTERM)
  _, err = process.communicate(timeout=120)
  assert process.returncode == 130 and 'Traceback' not in err, err[-3000:]
  assert err.strip().splitlines()[-1].startswith(f'stopped: {out_dir} is as it was before')
  assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before


def test_shipping_onto_a_full_disk_ends_in_one_line(exported, small_disk):
  out_dir, _ = exported
  (small_disk / 'filler').write_bytes(bytes(shutil.disk_usage(small_disk).free - 8192))
  result = run_trainer(f'--export_dir={out_dir}', f'--to={small_disk / "models" / "fast"}',
                       module='export.ship')
  assert result.returncode == 1 and 'Traceback' not in result.stderr, result.stderr[-3000:]
  assert result.stderr.strip().splitlines()[-1].startswith('error: no space left on the disk')
  assert not (small_disk / 'models' / 'fast').exists()
  assert not list(small_disk.rglob('.partial-*'))


LOST_INTERRUPT = '''
import os, pathlib, signal, sys
from fer_common import files, signals
signals.sigterm_as_interrupt()

class Collected:
  def __del__(self):  # as TensorFlow's function collector: where Python drops exceptions
    os.kill(os.getpid(), signal.SIGTERM)
    sum(range(10_000))  # the handler runs here, inside __del__

Collected()
staging, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
try:
  files.replace_folder(staging, out)
except KeyboardInterrupt:
  signals.stopped('kept')
'''


def test_a_signal_that_lands_where_python_drops_it_still_stops_before_publishing(tmp_path):
  staging, out = tmp_path / 'staging', tmp_path / 'out'
  staging.mkdir(), out.mkdir()
  (out / 'model.tflite').write_text('previous')
  result = subprocess.run([sys.executable, '-c', LOST_INTERRUPT, staging, out], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
  assert (result.returncode, result.stderr) == (130, 'stopped: kept\n')
  assert (out / 'model.tflite').read_text() == 'previous' and staging.exists()
