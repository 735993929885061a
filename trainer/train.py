"""`python -m trainer --flagfile=configs/<name>.cfg`: trains FERNet, writes a run dir.

Running the same command again after an interruption resumes from the last finished
epoch (BackupAndRestore); a finished run is left alone.
"""

import datetime
import pathlib
import sys

from absl import app
from absl import flags
from absl import logging
import keras

from edge import machine
from trainer import augment
from trainer import callbacks
from trainer import data
from trainer import dead_relus
from trainer import devices
from trainer import distill
from trainer import flags_def
from trainer import recipe
from trainer import reports
from trainer import run_dir

FLAGS = flags.FLAGS


def train() -> dict | None:
  """Runs training as the flags say; returns the test metrics (None off the chief)."""
  chief = devices.is_chief()
  root = pathlib.Path(FLAGS.run_dir)
  run = run_dir.RunDir(root if chief else root / 'workers' / str(devices.worker_index()))
  started = run_dir.start(
      run, run_dir.serialize_flags(flags_def), flags_def.default_values(),
      f'{datetime.datetime.now().isoformat(timespec="seconds")} {machine.describe()}')
  if not started:
    print(f'{run.root} holds a finished run; its reports are in {run.reports}. '
          f'Re-evaluate with: python -m trainer.evaluate --run_dir={run.root}')
    return None

  keras.utils.set_random_seed(FLAGS.seed)
  policy = devices.set_precision(FLAGS.precision)
  strategy = devices.make_strategy(FLAGS.distribution)
  logging.info('Precision %s, strategy %s with %d replica(s).', policy,
               type(strategy).__name__, strategy.num_replicas_in_sync)

  dataset = data.builder(FLAGS.dataset, FLAGS.data_dir)
  class_names = data.class_names(dataset)
  augmenter = augment.build_augmenter(recipe.augment_config(FLAGS), seed=FLAGS.seed)
  in_dataset = FLAGS.augment_on == 'dataset'
  targets = distill.teacher_targets(FLAGS.teacher, dataset, FLAGS.dataset,
                                    FLAGS.teacher_weight) if FLAGS.teacher else None
  train_data = data.pipeline(
      dataset, FLAGS.train_split, FLAGS.batch_size, training=True, seed=FLAGS.seed,
      shuffle_buffer=FLAGS.shuffle_buffer,
      augment=(lambda x: augmenter(x, training=True)) if in_dataset else None,
      mix=augment.build_mixup(FLAGS.mixup, seed=FLAGS.seed) if FLAGS.mixup else None,
      targets=targets)
  evaluation = data.evaluation_pipelines(dataset, FLAGS.batch_size, FLAGS.eval_limit)
  steps_per_epoch = FLAGS.steps_per_epoch or (
      dataset.info.splits[FLAGS.train_split].num_examples // FLAGS.batch_size)

  with strategy.scope():
    fernet = recipe.build_fernet(len(class_names), FLAGS)
    if FLAGS.init_from:
      recipe.load_initial_weights(fernet, FLAGS.init_from)
    training_model = fernet if in_dataset else recipe.with_augmentation(fernet, augmenter)
    recipe.compile_for_training(training_model, steps_per_epoch, FLAGS)
  interactive = sys.stdout.isatty()  # else a log file: one line per epoch + ProgressLog
  callback_list, nan_guard = callbacks.build(
      run, chief=chief, reduce_lr_patience=FLAGS.reduce_lr_patience,
      reduce_lr_factor=FLAGS.reduce_lr_factor, min_learning_rate=FLAGS.min_learning_rate,
      early_stopping_patience=FLAGS.early_stopping_patience,
      progress_batch_size=None if interactive else FLAGS.batch_size,
      keep_best=recipe.validation_held_out(FLAGS))
  training_model.fit(
      train_data, validation_data=evaluation['validation'], epochs=FLAGS.epochs,
      steps_per_epoch=steps_per_epoch, callbacks=callback_list,
      verbose=1 if interactive else 2)
  nan_guard.check()

  inference = recipe.save_inference_model(run, training_model, fernet, class_names, FLAGS)
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
  recipe.check_flags(FLAGS)
  recipe.check_init_from(FLAGS)
  try:
    train()
  except (data.DatasetNotBuiltError, run_dir.RunDirMismatchError,
          callbacks.TrainingDivergedError, ValueError) as e:
    sys.exit(f'error: {e}')
