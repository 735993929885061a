"""`python -m trainer --flagfile=configs/<name>.cfg`: trains FERNet, writes a run dir.

Running the same command again after an interruption resumes from the last finished
epoch (BackupAndRestore); a finished run is left alone.
"""

import datetime
import functools
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
from trainer import model
from trainer import preprocessing
from trainer import reports
from trainer import run_dir

FLAGS = flags.FLAGS


def augment_config() -> augment.AugmentConfig:
  """The augmentation flags as an AugmentConfig."""
  low, high = (float(v) for v in FLAGS.brightness)
  return augment.AugmentConfig(rotation=FLAGS.rotation, brightness=(low, high),
                               zoom=FLAGS.zoom, flip=FLAGS.flip, shift=FLAGS.shift,
                               erasing=FLAGS.erasing)


def check_flags(values: flags.FlagValues = FLAGS) -> None:
  """Raises app.UsageError for flag values that cannot work together."""
  if len(values.brightness) != 2 or not all(
      -1 <= float(v) <= 1 for v in values.brightness):
    raise app.UsageError('--brightness takes two numbers in [-1, 1], e.g. -0.2,0.2.')
  if not values.filters or not all(v.isdigit() and int(v) > 0 for v in values.filters):
    raise app.UsageError('--filters takes positive integers, e.g. 32,64,128,256,512.')
  if len(values.filters) > 5:
    raise app.UsageError('--filters: at most 5 blocks fit a 48x48 input (5 poolings).')
  if values.reduce_lr_patience and values.lr_schedule != 'constant':
    raise app.UsageError('--reduce_lr_patience needs --lr_schedule=constant.')
  for name in ('batch_size', 'epochs'):
    if values[name].value < 1:
      raise app.UsageError(f'--{name} must be at least 1.')


def make_optimizer(steps_per_epoch: int,
                   values: flags.FlagValues = FLAGS) -> keras.optimizers.Optimizer:
  """Adam, AdamW or SGD (Nesterov) with a constant or warm-up + cosine learning rate;
  weight decay spares BatchNorm and biases."""
  learning_rate = values.learning_rate
  if values.lr_schedule == 'cosine':
    warmup = int(values.warmup_epochs * steps_per_epoch)
    learning_rate = keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else values.learning_rate,
        decay_steps=max(values.epochs * steps_per_epoch - warmup, 1),
        warmup_target=values.learning_rate if warmup else None, warmup_steps=warmup)
  optimizer_class = {
      'adam': keras.optimizers.Adam, 'adamw': keras.optimizers.AdamW,
      'sgd': functools.partial(keras.optimizers.SGD, momentum=values.momentum,
                               nesterov=True)}
  optimizer = optimizer_class[values.optimizer](
      learning_rate=learning_rate, weight_decay=values.weight_decay or None)
  if values.weight_decay:
    optimizer.exclude_from_weight_decay(var_names=['gamma', 'beta', 'bias'])
  return optimizer


def train() -> dict | None:
  """Runs training as the flags say; returns the test metrics (None off the chief)."""
  chief = devices.is_chief()
  root = pathlib.Path(FLAGS.run_dir)
  run = run_dir.RunDir(root if chief else root / 'workers' / str(devices.worker_index()))
  current_flags = run_dir.serialize_flags(flags_def)
  if run.flags.exists():
    run_dir.check_resumable(run.flags.read_text(), current_flags, flags_def.default_values())
  if run.inference_model.exists():
    print(f'{run.root} holds a finished run; its reports are in {run.reports}. '
          f'Re-evaluate with: python -m trainer.evaluate --run_dir={run.root}')
    return None
  run.make()
  run.flags.write_text(current_flags)
  with run.machine.open('a') as log:  # one line per (re)start: epoch times depend on it
    log.write(f'{datetime.datetime.now().isoformat(timespec="seconds")} '
              f'{machine.describe()}\n')

  keras.utils.set_random_seed(FLAGS.seed)
  policy = devices.set_precision(FLAGS.precision)
  strategy = devices.make_strategy(FLAGS.distribution)
  logging.info('Precision %s, strategy %s with %d replica(s).', policy,
               type(strategy).__name__, strategy.num_replicas_in_sync)

  dataset = data.builder(FLAGS.dataset, FLAGS.data_dir)
  class_names = data.class_names(dataset)
  augmenter = augment.build_augmenter(augment_config(), seed=FLAGS.seed)
  in_dataset = FLAGS.augment_on == 'dataset'
  targets = distill.teacher_targets(FLAGS.teacher, dataset, FLAGS.dataset,
                                    FLAGS.teacher_weight) if FLAGS.teacher else None
  train_data = data.pipeline(
      dataset, 'train', FLAGS.batch_size, training=True, seed=FLAGS.seed,
      shuffle_buffer=FLAGS.shuffle_buffer,
      augment=(lambda x: augmenter(x, training=True)) if in_dataset else None,
      mix=augment.build_mixup(FLAGS.mixup, seed=FLAGS.seed) if FLAGS.mixup else None,
      targets=targets)
  evaluation = data.evaluation_pipelines(dataset, FLAGS.batch_size, FLAGS.eval_limit)
  steps_per_epoch = FLAGS.steps_per_epoch or (
      dataset.info.splits['train'].num_examples // FLAGS.batch_size)

  def build_fernet(dtype_policy=None):
    return model.build_fernet(
        len(class_names), [int(v) for v in FLAGS.filters], FLAGS.kernel_size,
        FLAGS.dropout, FLAGS.head_dropout, dtype_policy=dtype_policy)

  with strategy.scope():
    fernet = build_fernet()
    if in_dataset:
      training_model = fernet
    else:
      inputs = keras.Input(preprocessing.IMAGE_SHAPE, name='image')
      training_model = keras.Model(inputs, fernet(augmenter(inputs)), name='fernet_train')
    training_model.compile(
        optimizer=make_optimizer(steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=FLAGS.label_smoothing),
        metrics=['accuracy'])
  interactive = sys.stdout.isatty()  # else a log file: one line per epoch + ProgressLog
  callback_list, nan_guard = callbacks.build(
      run, chief=chief, reduce_lr_patience=FLAGS.reduce_lr_patience,
      reduce_lr_factor=FLAGS.reduce_lr_factor, min_learning_rate=FLAGS.min_learning_rate,
      early_stopping_patience=FLAGS.early_stopping_patience,
      progress_batch_size=None if interactive else FLAGS.batch_size)
  training_model.fit(
      train_data, validation_data=evaluation['validation'], epochs=FLAGS.epochs,
      steps_per_epoch=steps_per_epoch, callbacks=callback_list,
      verbose=1 if interactive else 2)
  if nan_guard.diverged_at is not None:
    raise callbacks.TrainingDivergedError(
        f'the loss became NaN/inf (batch {nan_guard.diverged_at}); training stopped. '
        f'The best model so far is kept in {run.best} and the resume state in '
        f'{run.backup}. Lower --learning_rate or raise --batch_size, with a new --run_dir.')

  if run.best.exists():
    training_model.load_weights(run.best)
  inference = build_fernet(dtype_policy='float32')
  inference.set_weights(fernet.get_weights())
  inference.save(run.inference_model)
  preprocessing.write(run.preprocessing, class_names)
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
  check_flags()
  try:
    train()
  except (data.DatasetNotBuiltError, run_dir.RunDirMismatchError,
          callbacks.TrainingDivergedError, ValueError) as e:
    sys.exit(f'error: {e}')
