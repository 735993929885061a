"""`python -m trainer --flagfile=configs/<name>.cfg`: trains FERNet, writes a run dir.

Running the same command again after an interruption resumes from the last finished
epoch (BackupAndRestore); a finished run is left alone.
"""

import datetime
import os
import pathlib
import shutil
import sys

from absl import app
from absl import flags
import keras
import tensorflow as tf

from fer_common import files
from fer_common import locks
from fer_common import machine
from fer_common import signals
from fer_common.contract import RunDir
from trainer import augment
from trainer import callbacks
from trainer import data
from trainer import dead_relus
from trainer import devices
from trainer import distill
from trainer import flags_def
from trainer import multi_worker
from trainer import recipe
from trainer import reports
from trainer import run_dir
from trainer.config import ConfigError
from trainer.config import TrainConfig

FLAGS = flags.FLAGS


def train(config: TrainConfig, wait_for_lock: bool = False) -> dict | None:
  """Runs training as `config` says, holding the run dir's lock (fer_common.locks);
  returns the test metrics (None off the chief or for a run that had already
  finished).

  Raises:
    locks.LockedError: another process is training into the run dir (unless
      `wait_for_lock`: then this waits for it).
  """
  chief = devices.is_chief()
  root = pathlib.Path(config.run_dir)
  run = RunDir(root if chief else root / 'workers' / str(devices.worker_index()))
  with locks.held(run.root, 'the run dir', wait_for_lock):
    return _train_in(run, config, chief, root)


def _train_in(run: RunDir, config: TrainConfig, chief: bool, root: pathlib.Path
              ) -> dict | None:
  started = run_dir.start(
      run, run_dir.current_flags(flags_def), flags_def.default_values(),
      f'{datetime.datetime.now().isoformat(timespec="seconds")} {machine.describe()}')
  if not started:
    print(f'{run.root} holds a finished run; its reports are in {run.reports}. '
          f'Re-evaluate with: python -m trainer.evaluate --run_dir={run.root}')
    return None

  keras.utils.set_random_seed(config.seed)
  policy = devices.set_precision(config.precision)
  strategy = devices.make_strategy(config.distribution)
  several_workers = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
  print(f'Precision {policy}, {type(strategy).__name__} with '
        f'{strategy.num_replicas_in_sync} replica(s).', flush=True)

  dataset = data.builder(config.dataset, config.data_dir)
  class_names = data.class_names(dataset)
  augmenter = augment.build_augmenter(recipe.augment_config(config), seed=config.seed)
  in_dataset = config.augment_on == 'dataset'
  targets = distill.teacher_targets(config.teacher, dataset, config.dataset,
                                    config.teacher_weight) if config.teacher else None
  train_data = data.pipeline(
      dataset, config.train_split, config.batch_size, training=True, seed=config.seed,
      shuffle_buffer=config.shuffle_buffer,
      augment=(lambda x: augmenter(x, training=True)) if in_dataset else None,
      mix=augment.build_mixup(config.mixup, seed=config.seed) if config.mixup else None,
      targets=targets, keep_order=several_workers)
  evaluation = data.evaluation_pipelines(dataset, config.batch_size, config.eval_limit)
  steps_per_epoch = config.steps_per_epoch or (
      dataset.info.splits[config.train_split].num_examples // config.batch_size)

  with strategy.scope():
    fernet = recipe.build_fernet(len(class_names), config,
                                 replicas=strategy.num_replicas_in_sync)
    if config.init_from:
      recipe.load_initial_weights(fernet, config.init_from)
    training_model = fernet if in_dataset else recipe.with_augmentation(fernet, augmenter)
    recipe.compile_for_training(training_model, steps_per_epoch, config)
  interactive = sys.stdout.isatty()  # else a log file: one line per epoch + ProgressLog
  callback_list, nan_guard, backup = callbacks.build(
      run, chief=chief, reduce_lr_patience=config.reduce_lr_patience,
      reduce_lr_factor=config.reduce_lr_factor, min_learning_rate=config.min_learning_rate,
      early_stopping_patience=config.early_stopping_patience,
      progress_batch_size=None if interactive else config.batch_size,
      keep_best=config.validation_held_out)
  class_weight = recipe.class_weights(data.class_counts(
      dataset, config.train_split)) if config.balance_classes else None
  if several_workers:
    callback_list.remove(backup)  # TensorFlow's checkpoints resume a multi-worker run
    backup = multi_worker.CheckpointBackup(run.backup, RunDir(root).backup)
    multi_worker.fit(
        strategy, training_model, train_data, evaluation['validation'],
        epochs=config.epochs, steps_per_epoch=steps_per_epoch,
        steps_per_execution=config.steps_per_execution, callbacks=callback_list,
        backup=backup, class_weight=class_weight, verbose=1 if interactive else 2)
  else:
    training_model.fit(
        train_data, validation_data=evaluation['validation'], epochs=config.epochs,
        class_weight=class_weight, shuffle=False,  # the tf.data pipeline shuffles
        steps_per_epoch=steps_per_epoch, callbacks=callback_list,
        verbose=1 if interactive else 2)
  nan_guard.check()

  inference = recipe.save_inference_model(run, training_model, fernet, class_names,
                                          config)
  backup.delete()  # only now: everything it protected is on disk
  if not chief:
    return None
  results = reports.write_all(
      inference, evaluation, class_names, run.history,
      reports.augmented_batch(augmenter, evaluation['train']), run.reports)
  print(f"Run dir {run.root}: test accuracy {results['test']['accuracy']:.4f} "
        f"(flip-TTA {results['test_flip_tta']['accuracy']:.4f}), validation "
        f"{results['validation']['accuracy']:.4f}, train {results['train']['accuracy']:.4f}.")
  warning = dead_relus.collapse_warning(results['dead_relu_fraction'])
  if warning:
    print(warning)
  return results['test']


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    config = TrainConfig.from_flags(FLAGS)
    if config.members_at_once > 1:
      raise ConfigError('--members_at_once trains several FERNets at once with '
                        'python -m trainer.array_fit (on numpy arrays, e.g. on a GPU).')
    recipe.check_init_from(config)
    signals.sigterm_as_interrupt()
    files.quiet_when_disk_full()
    train(config, FLAGS.wait_for_lock)
  except (ConfigError, data.DatasetNotBuiltError, data.DatasetDamagedError,
          run_dir.RunDirMismatchError, callbacks.TrainingDivergedError,
          multi_worker.WorkerLostError, locks.LockedError, ValueError) as e:
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
