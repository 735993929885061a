"""`python -m trainer.array_fit --arrays=<file.npz[.xz]> --flagfile=configs/<name>.cfg`

Trains the recipe of `python -m trainer` (same flags, FERNet, augmentation layers in the
model, optimiser, loss and callbacks) from numpy arrays (trainer.arrays) with whatever
Keras backend is active, and writes the same run dir, minus TensorBoard logs and reports.
It needs neither TensorFlow nor TFDS, so it trains on a GPU machine that has only JAX:

  KERAS_BACKEND=jax python -m trainer.array_fit --arrays=... --flagfile=... \\
      --precision=mixed_bfloat16 --time_budget_s=400

`--time_budget_s` sizes the run to a wall-clock budget from the program's start: it times
one training epoch and cuts --epochs to what fits, so that a cosine schedule still
decays to its end; should the steps slow down later (other work on the GPU), training
stops at the last epoch that fits, and says so. Afterwards,
where TensorFlow is, `python -m trainer.evaluate --run_dir=...` writes the reports from
the TFDS splits, and `python -m export` exports the run as any other.
"""

import datetime
import math
import pathlib
import sys
import tempfile
import time

from absl import app
from absl import flags
import keras
import numpy as np

from edge import machine
from trainer import arrays
from trainer import augment
from trainer import callbacks
from trainer import flags_def
from trainer import preprocessing
from trainer import recipe
from trainer import run_dir

FLAGS = flags.FLAGS
_ARRAYS = flags.DEFINE_string('arrays', None, 'The dataset as a .npz[.xz] written by '
                              'python -m trainer.dump_arrays.', required=True)
_TIME_BUDGET = flags.DEFINE_float('time_budget_s', 0.0, 'Wall-clock seconds for training: '
                                  'cuts --epochs to what fits (measured); 0: no budget.',
                                  lower_bound=0.0)
# Share of the measured epoch time added for jitter between epochs. With 5 %, two of four
# runs on an H200 (2026-11-27) ran 2 and 4 % slower than their probe and were stopped
# short of their planned epochs.
EPOCH_OVERHEAD = 0.10
_START = time.monotonic()


def model_inputs(images: np.ndarray, labels: np.ndarray, num_classes: int
                 ) -> tuple[np.ndarray, np.ndarray]:
  """(normalised float32 images, one-hot float32 labels) from uint8 images, int labels."""
  return (preprocessing.normalise(images.astype(np.float32)),
          keras.utils.to_categorical(labels, num_classes).astype(np.float32))


def training_arrays(splits: dict[str, tuple[np.ndarray, np.ndarray]], train_split: str
                    ) -> tuple[np.ndarray, np.ndarray]:
  """(images, labels) of the splits `train_split` names ('train', 'train+validation')."""
  parts = [splits[name] for name in train_split.split('+')]
  return tuple(np.concatenate(arrays) for arrays in zip(*parts))


def resolve_precision(precision: str) -> str:
  """The Keras dtype policy for `precision`: 'auto' is mixed_bfloat16 where the backend
  sees a GPU (no loss scaling needed), else float32."""
  if precision != 'auto':
    return precision
  gpus = [d for d in keras.distribution.list_devices()
          if d.lower().startswith(('gpu', 'cuda'))]
  return 'mixed_bfloat16' if gpus else 'float32'


def allow_xla(augmenter: keras.Sequential) -> None:
  """Lets Keras XLA-compile a model holding `augmenter` where the backend is JAX.

  Keras marks its geometric augmentation layers (RandomRotation, RandomZoom,
  RandomTranslation) as not XLA-compilable under every backend, which turns compilation
  off for the whole model. Under JAX their image transform (map_coordinates) compiles;
  left uncompiled, FERNet's training step took 1.7 s on an H200.
  """
  if keras.config.backend() == 'jax':
    for layer in augmenter.layers:
      layer.supports_jit = True


def fitting_epochs(epoch_s: float, budget_s: float, max_epochs: int) -> int:
  """The epochs (at least 1, at most `max_epochs`) of `epoch_s` seconds each that fit
  `budget_s`."""
  return max(1, min(max_epochs, math.floor(budget_s / (epoch_s * (1 + EPOCH_OVERHEAD)))))


def run_callbacks(run: run_dir.RunDir, progress: bool
                  ) -> tuple[list[keras.callbacks.Callback], callbacks.StopOnNonFiniteLoss]:
  """The run's callbacks (trainer.callbacks.build) as the flags configure them."""
  return callbacks.build(
      run, chief=True, reduce_lr_patience=FLAGS.reduce_lr_patience,
      reduce_lr_factor=FLAGS.reduce_lr_factor, min_learning_rate=FLAGS.min_learning_rate,
      early_stopping_patience=FLAGS.early_stopping_patience,
      progress_batch_size=FLAGS.batch_size if progress else None, tensorboard=False,
      keep_best=recipe.validation_held_out(FLAGS))


def time_epoch(training_model: keras.Model, train: tuple[np.ndarray, np.ndarray],
               validation: tuple[np.ndarray, np.ndarray]) -> tuple[float, float]:
  """(seconds to compile, seconds per epoch) of training the compiled `training_model`:
  one whole epoch as the real run trains it, validation and the run's checkpoint
  callbacks (into a scratch dir) included. It trains the model: rebuild it before the
  real run.

  A probe of 100 steps alone planned 81 epochs where 53 fit (an H200, 2026-11-27): it
  left out validation, checkpoints and the wait for the device that per-batch callback
  hooks cause.
  """
  batch = FLAGS.batch_size
  start = time.monotonic()
  # Compiles training and the validation shapes (the last batch is often smaller).
  training_model.fit(*(a[:batch] for a in train), batch_size=batch, verbose=0,
                     validation_data=validation)
  compiled = time.monotonic()
  with tempfile.TemporaryDirectory() as scratch:
    callback_list, _ = run_callbacks(run_dir.RunDir(pathlib.Path(scratch)), progress=False)
    training_model.fit(*train, batch_size=batch, validation_data=validation,
                       callbacks=callback_list, verbose=0)
  return compiled - start, time.monotonic() - compiled


def build_training_model(num_classes: int, steps_per_epoch: int
                         ) -> tuple[keras.Model, keras.Model]:
  """(FERNet, the compiled training model: augmentation then FERNet), XLA-compilable
  under JAX."""
  augmenter = augment.build_augmenter(recipe.augment_config(FLAGS), seed=FLAGS.seed)
  allow_xla(augmenter)
  fernet = recipe.build_fernet(num_classes, FLAGS)
  training_model = recipe.with_augmentation(fernet, augmenter)
  recipe.compile_for_training(training_model, steps_per_epoch, FLAGS)
  return fernet, training_model


def fit(run: run_dir.RunDir, train: tuple[np.ndarray, np.ndarray],
        validation: tuple[np.ndarray, np.ndarray], steps_per_epoch: int,
        class_names: list[str]) -> keras.Model:
  """Trains on the model inputs `train` (steps_per_epoch whole batches) as the flags say
  into `run`; saves and returns the float32 inference model."""
  keras.utils.set_random_seed(FLAGS.seed)
  fernet, trained = build_training_model(len(class_names), steps_per_epoch)
  if FLAGS.init_from:
    recipe.load_initial_weights(fernet, FLAGS.init_from)
  interactive = sys.stdout.isatty()
  callback_list, nan_guard = run_callbacks(run, progress=not interactive)
  deadline = None
  if _TIME_BUDGET.value:
    deadline = callbacks.StopAtDeadline(_START + _TIME_BUDGET.value)
    callback_list.insert(0, deadline)  # before BackupAndRestore, which must stay last
  # Shuffled each epoch by Keras.
  trained.fit(*train, batch_size=FLAGS.batch_size, epochs=FLAGS.epochs,
              validation_data=validation, callbacks=callback_list,
              verbose=1 if interactive else 2)
  nan_guard.check()
  if deadline and deadline.stopped_after and deadline.stopped_after < FLAGS.epochs:
    print(f'The time budget ran out: training stopped after epoch '
          f'{deadline.stopped_after} of {FLAGS.epochs}.', flush=True)
  return recipe.save_inference_model(run, trained, fernet, class_names, FLAGS)


def budget_epochs(train: tuple[np.ndarray, np.ndarray],
                  validation: tuple[np.ndarray, np.ndarray], steps_per_epoch: int,
                  num_classes: int) -> int:
  """--epochs cut to --time_budget_s, from the measured time of one epoch."""
  _, probe = build_training_model(num_classes, steps_per_epoch)
  compile_s, epoch_s = time_epoch(probe, train, validation)
  # The real run compiles again before its first step.
  left = _TIME_BUDGET.value - (time.monotonic() - _START) - compile_s
  epochs = fitting_epochs(epoch_s, left, FLAGS.epochs)
  print(f'{epoch_s:.2f} s an epoch ({steps_per_epoch} steps and validation): {epochs} '
        f'epochs fit the {_TIME_BUDGET.value:.0f} s budget.', flush=True)
  return epochs


def flip_averaged_accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray,
                           num_classes: int) -> tuple[float, float]:
  """(accuracy, accuracy averaging the image and its mirror image) on one split."""
  x, _ = model_inputs(images, labels, num_classes)
  probabilities = model.predict(x, batch_size=256, verbose=0)
  averaged = probabilities + model.predict(x[:, :, ::-1], batch_size=256, verbose=0)
  return (float(np.mean(probabilities.argmax(-1) == labels)),
          float(np.mean(averaged.argmax(-1) == labels)))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  recipe.check_flags(FLAGS)
  recipe.check_init_from(FLAGS)
  if FLAGS.teacher or FLAGS.mixup or FLAGS.augment_on != 'model':
    raise app.UsageError('trainer.array_fit trains without --teacher, --mixup and '
                         '--augment_on=dataset (they need tf.data): use python -m trainer.')
  try:
    splits, class_names = arrays.load(_ARRAYS.value)
  except arrays.ArraysFileError as e:
    sys.exit(f'error: {e}')
  run = run_dir.RunDir(pathlib.Path(FLAGS.run_dir))
  policy = resolve_precision(FLAGS.precision)
  keras.mixed_precision.set_global_policy(policy)
  train = model_inputs(*training_arrays(splits, FLAGS.train_split), len(class_names))
  validation = model_inputs(*splits['validation'], len(class_names))
  steps_per_epoch = FLAGS.steps_per_epoch or len(train[0]) // FLAGS.batch_size
  # Whole batches only: an epoch is steps_per_epoch steps.
  train = tuple(a[:steps_per_epoch * FLAGS.batch_size] for a in train)
  if _TIME_BUDGET.value and run.flags.exists():
    # A resumed run keeps the epochs its learning-rate schedule was made for.
    FLAGS.epochs = int(run_dir.parse_flags(run.flags.read_text())['epochs'])
  elif _TIME_BUDGET.value:
    FLAGS.epochs = budget_epochs(train, validation, steps_per_epoch, len(class_names))
  try:
    started = run_dir.start(
        run, run_dir.serialize_flags(flags_def), flags_def.default_values(),
        f'{datetime.datetime.now().isoformat(timespec="seconds")} {machine.describe()}; '
        f'trainer.array_fit, Keras backend {keras.config.backend()} on '
        f'{", ".join(keras.distribution.list_devices())}, {policy}')
  except run_dir.RunDirMismatchError as e:
    sys.exit(f'error: {e}')
  if not started:
    print(f'{run.root} holds a finished run; evaluate it with: '
          f'python -m trainer.evaluate --run_dir={run.root}')
    return
  try:
    inference = fit(run, train, validation, steps_per_epoch, class_names)
  except (callbacks.TrainingDivergedError, ValueError) as e:
    sys.exit(f'error: {e}')
  for split, (images, labels) in splits.items():
    plain, flipped = flip_averaged_accuracy(inference, images, labels, len(class_names))
    print(f'{split}: accuracy {plain:.4f} (flip-averaged {flipped:.4f})', flush=True)
  print(f'Wrote {run.root}. Reports (where TensorFlow is): '
        f'python -m trainer.evaluate --run_dir={run.root}')


if __name__ == '__main__':
  flags_def.define_flags()
  app.run(main)
