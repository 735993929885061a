"""`python -m trainer --flagfile=configs/<name>.cfg`: trains the recipe (trainer.recipe)
on the config's examples (trainer.sources) and writes a run dir.

One driver, two engines, chosen from the config: Keras `fit()` (on one device, on the
GPUs of one machine under MirroredStrategy, or from numpy arrays under any Keras backend
with --arrays), or, on several machines (TF_CONFIG), the compiled model's own steps
under MultiWorkerMirroredStrategy (trainer.multi_worker), since Keras 3's fit() does not
run there.

Running the same command again after an interruption resumes from the last finished
epoch; a finished run is left alone.
"""

import contextlib
import dataclasses
import datetime
import os
import pathlib
import shutil
import sys
import time

from absl import app
from absl import flags
import keras

from fer_common import contract
from fer_common import files
from fer_common import locks
from fer_common import machine
from fer_common import signals
from fer_common.contract import RunDir
from trainer import arrays
from trainer import budget
from trainer import callbacks
from trainer import config as config_lib
from trainer import devices
from trainer import recipe as recipe_lib
from trainer import run_dir
from trainer import sources
from trainer.config import ConfigError
from trainer.config import TrainConfig

FLAGS = flags.FLAGS
_START = time.monotonic()  # --time_budget_s counts from here


def train(config: TrainConfig, wait_for_lock: bool = False) -> None:
  """Runs training as `config` says, holding the run dir's lock (fer_common.locks).

  Raises:
    locks.LockedError: another process is training into the run dir (unless
      `wait_for_lock`: then this waits for it).
  """
  chief = config.arrays is not None or devices.is_chief()
  root = pathlib.Path(config.run_dir)
  run = RunDir(root if chief else root / 'workers' / str(devices.worker_index()))
  with locks.held(run.root, 'the run dir', wait_for_lock):
    _train_in(run, config, chief, root)


def _engine(config: TrainConfig):
  """(the tf.distribute strategy or None for --arrays, whether it spans several
  workers, a line describing both)."""
  policy = devices.set_precision(config.precision)
  if config.arrays:
    return None, False, (f'Keras {keras.config.backend()} on '
                         f'{", ".join(keras.distribution.list_devices())}, {policy}')
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  strategy = devices.make_strategy(config.distribution)
  several = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
  if several and config.time_budget_s:
    raise ConfigError('--time_budget_s times one process alone: leave it out with '
                      'several workers.')
  return strategy, several, (f'{type(strategy).__name__} with '
                             f'{strategy.num_replicas_in_sync} replica(s), {policy}')


def _train_in(run: RunDir, config: TrainConfig, chief: bool, root: pathlib.Path) -> None:
  strategy, several_workers, engine = _engine(config)
  print(f'Training with {engine}.', flush=True)
  source = sources.open_source(config)
  steps_per_epoch = config.steps_per_epoch or source.train_examples // config.batch_size
  counts = source.class_counts() if config.balance_classes else None
  replicas = strategy.num_replicas_in_sync if strategy else 1

  def assemble() -> recipe_lib.Recipe:  # of `config` as it is then (epochs planned)
    keras.utils.set_random_seed(config.seed)
    with strategy.scope() if strategy else contextlib.nullcontext():
      return recipe_lib.assemble(config, len(source.class_names), steps_per_epoch, counts,
                                 replicas)

  if config.time_budget_s and run.flags.exists():
    # A resumed run keeps the epochs its learning-rate schedule was made for.
    config = dataclasses.replace(config,
                                 epochs=int(contract.read_flags(run.flags)['epochs']))
  elif config.time_budget_s:
    probe = assemble()
    config = dataclasses.replace(config, epochs=budget.planned_epochs(
        probe, source.fit_inputs(probe, steps_per_epoch), steps_per_epoch, config, _START))

  started = run_dir.start(
      run, config_lib.recorded(config), config_lib.default_values(),
      f'{datetime.datetime.now().isoformat(timespec="seconds")} {machine.describe()}; '
      f'{engine}', members=config.members_at_once)
  if not started:
    print(f'{run.root} holds a finished run; its reports are in {run.reports} (write '
          f'them again: python -m trainer.evaluate --run_dir='
          f'{run_dir.member_runs(run, config.members_at_once)[0].root}).')
    return

  recipe = assemble()
  interactive = sys.stdout.isatty()  # else a log file: one line per epoch + ProgressLog
  callback_list, nan_guard, backup = recipe_lib.callbacks(
      run, config, chief=chief, progress=not interactive,
      tensorboard=config.arrays is None,
      deadline=_START + config.time_budget_s if config.time_budget_s else None)
  inputs = source.fit_inputs(recipe, steps_per_epoch, keep_order=several_workers)
  if several_workers:
    from trainer import multi_worker  # pylint: disable=g-import-not-at-top
    callback_list.remove(backup)  # TensorFlow's checkpoints resume a multi-worker run
    backup = multi_worker.CheckpointBackup(run.backup, RunDir(root).backup)
    multi_worker.fit(strategy, recipe.training_model, inputs['x'],
                     inputs['validation_data'],
                     epochs=config.epochs, steps_per_epoch=steps_per_epoch,
                     steps_per_execution=config.steps_per_execution,
                     callbacks=callback_list, backup=backup,
                     verbose=1 if interactive else 2)
  else:
    recipe.training_model.fit(**inputs, epochs=config.epochs, callbacks=callback_list,
                              verbose=1 if interactive else 2)
  nan_guard.check()
  deadline = next((c for c in callback_list if isinstance(c, callbacks.StopAtDeadline)),
                  None)
  if deadline and deadline.stopped_after and deadline.stopped_after < config.epochs:
    print(f'The time budget ran out: training stopped after epoch '
          f'{deadline.stopped_after} of {config.epochs}.', flush=True)
  inference_models = recipe_lib.save(run, recipe, source.class_names, config)
  backup.delete()  # only now: everything it protected is on disk
  if chief:
    print(source.report(run, inference_models, recipe.augmenters[0]), flush=True)


# The errors that end a run with one `error:` line: each names what to change.
ONE_LINE_ERRORS = (ConfigError, contract.DatasetNotBuiltError, contract.DatasetDamagedError,
                   arrays.ArraysFileError, run_dir.RunDirMismatchError,
                   callbacks.TrainingDivergedError, devices.WorkerLostError,
                   locks.LockedError, ValueError)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    config = TrainConfig.from_flags(FLAGS)
    recipe_lib.check_init_from(config)
    signals.sigterm_as_interrupt()
    files.quiet_when_disk_full()
    train(config, FLAGS.wait_for_lock)
  except ONE_LINE_ERRORS as e:
    sys.exit(f'error: {e}')
  except KeyboardInterrupt:
    signals.stopped(f'every finished epoch is in {FLAGS.run_dir}: run the same command '
                    'again to go on from the last one.')
  except Exception as e:  # pylint: disable=broad-except  (only a full disk is expected)
    if not files.is_disk_full(e):
      raise
    free = shutil.disk_usage(FLAGS.run_dir).free / 1e6
    print(f'error: no space left on the disk of {FLAGS.run_dir} ({free:.1f} MB free). '
          'The epochs finished before are in its backups and every file there is whole: '
          'free some space and run the same command again.', file=sys.stderr, flush=True)
    sys.stdout.flush()
    # Not sys.exit: at interpreter exit h5py closes the half-written (already unlinked)
    # backup and crashes on the full disk.
    os._exit(1)
