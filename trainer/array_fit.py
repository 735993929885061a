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

import dataclasses
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

from fer_common import contract
from fer_common import machine
from fer_common.contract import RunDir
from trainer import arrays
from trainer import augment
from trainer import callbacks
from trainer import flags_def
from trainer import members
from trainer import recipe
from trainer import run_dir
from trainer.config import ConfigError
from trainer.config import TrainConfig

FLAGS = flags.FLAGS
# Share of the measured epoch time added for jitter between epochs: with 5 %, runs that
# went 2-4 % slower than their probe on a shared GPU were stopped short of their plan.
EPOCH_OVERHEAD = 0.10
_START = time.monotonic()


def define_flags() -> None:
  """The trainer's flags, and the two of this command."""
  flags_def.define_flags()
  flags.DEFINE_string('arrays', None, 'The dataset as a .npz[.xz] written by '
                      'python -m trainer.dump_arrays.', required=True)
  flags.DEFINE_float('time_budget_s', 0.0, 'Wall-clock seconds for training: cuts '
                     '--epochs to what fits (measured); 0: no budget.', lower_bound=0.0)


def model_inputs(images: np.ndarray, labels: np.ndarray, num_classes: int
                 ) -> tuple[np.ndarray, np.ndarray]:
  """(normalised float32 images, one-hot float32 labels) from uint8 images, int labels."""
  return (contract.normalise(images.astype(np.float32)),
          keras.utils.to_categorical(labels, num_classes).astype(np.float32))


def training_arrays(splits: dict[str, tuple[np.ndarray, np.ndarray]], train_split: str
                    ) -> tuple[np.ndarray, np.ndarray]:
  """(images, labels) of the splits `train_split` names ('train', 'train+validation')."""
  parts = [splits[name] for name in train_split.split('+')]
  return tuple(np.concatenate(arrays) for arrays in zip(*parts))


def resolve_precision(precision: str) -> str:
  """The Keras dtype policy for `precision` ('auto' as contract.auto_precision rules,
  for the GPUs the active backend sees)."""
  if precision != 'auto':
    return precision
  return contract.auto_precision(any(d.lower().startswith(('gpu', 'cuda'))
                                     for d in keras.distribution.list_devices()))


def fitting_epochs(epoch_s: float, budget_s: float, max_epochs: int) -> int:
  """The epochs (at least 1, at most `max_epochs`) of `epoch_s` seconds each that fit
  `budget_s`."""
  return max(1, min(max_epochs, math.floor(budget_s / (epoch_s * (1 + EPOCH_OVERHEAD)))))


def run_callbacks(run: RunDir, config: TrainConfig, progress: bool):
  """The run's (callbacks, NaN guard, backup) as trainer.callbacks.build makes them."""
  return callbacks.build(
      run, chief=True, reduce_lr_patience=config.reduce_lr_patience,
      reduce_lr_factor=config.reduce_lr_factor, min_learning_rate=config.min_learning_rate,
      early_stopping_patience=config.early_stopping_patience,
      progress_batch_size=config.batch_size if progress else None, tensorboard=False,
      keep_best=config.validation_held_out and config.members_at_once == 1)


def time_epoch(training_model: keras.Model, train: tuple[np.ndarray, np.ndarray],
               validation: tuple[np.ndarray, np.ndarray], config: TrainConfig
               ) -> tuple[float, float]:
  """(seconds to compile, seconds per epoch) of training the compiled `training_model`:
  one whole epoch as the real run trains it, validation and the run's checkpoint
  callbacks (into a scratch dir) included. It trains the model: rebuild it before the
  real run.

  A probe of 100 steps alone over-planned by half: it left out validation, checkpoints
  and the wait for the device that per-batch callback hooks cause.
  """
  batch = config.batch_size
  start = time.monotonic()
  # Compiles training and the validation shapes (the last batch is often smaller).
  training_model.fit(*keras.tree.map_structure(lambda a: a[:batch], train),
                     batch_size=batch, verbose=0, validation_data=validation)
  compiled = time.monotonic()
  with tempfile.TemporaryDirectory() as scratch:
    callback_list, _, _ = run_callbacks(RunDir(pathlib.Path(scratch)), config,
                                        progress=False)
    training_model.fit(*train, batch_size=batch, validation_data=validation,
                       callbacks=callback_list, verbose=0)
  return compiled - start, time.monotonic() - compiled


def build_training_model(num_classes: int, steps_per_epoch: int, config: TrainConfig
                         ) -> tuple[list[keras.Model], keras.Model]:
  """([FERNet], the compiled training model: augmentation then FERNet), XLA-compilable
  under JAX; with --members_at_once, the members' FERNets and their model
  (trainer.members)."""
  if config.members_at_once > 1:
    return members.build_training_model(num_classes, steps_per_epoch, config)
  augmenter = augment.build_augmenter(recipe.augment_config(config), seed=config.seed)
  augment.allow_xla(augmenter)
  fernet = recipe.build_fernet(num_classes, config)
  training_model = recipe.with_augmentation(fernet, augmenter)
  recipe.compile_for_training(training_model, steps_per_epoch, config)
  return [fernet], training_model


def fit(run: RunDir, train: tuple[np.ndarray, np.ndarray],
        validation: tuple[np.ndarray, np.ndarray], steps_per_epoch: int,
        class_names: list[str], config: TrainConfig, time_budget_s: float
        ) -> list[keras.Model]:
  """Trains on the model inputs `train` (steps_per_epoch whole batches; the targets as
  members.targets gives them) as `config` says into `run`; saves and returns the float32
  inference model of each member (one without --members_at_once)."""
  keras.utils.set_random_seed(config.seed)
  fernets, trained = build_training_model(len(class_names), steps_per_epoch, config)
  if config.init_from:
    for fernet in fernets:
      recipe.load_initial_weights(fernet, config.init_from)
  interactive = sys.stdout.isatty()
  callback_list, nan_guard, backup = run_callbacks(run, config, progress=not interactive)
  deadline = None
  if time_budget_s:
    deadline = callbacks.StopAtDeadline(_START + time_budget_s)
    callback_list.insert(0, deadline)  # before the backup, which must stay last
  sample_weight = None
  if config.balance_classes:
    # fit()'s class_weight as sample weights, which a model of several outputs takes too.
    labels = keras.tree.flatten(train[1])[0].argmax(-1)
    weights = recipe.class_weights(np.bincount(labels, minlength=len(class_names)).tolist())
    sample_weight = np.array(recipe.class_weight_table(weights, len(class_names)),
                             np.float32)[labels]
  # Shuffled each epoch by Keras.
  trained.fit(*train, batch_size=config.batch_size, epochs=config.epochs,
              validation_data=validation, callbacks=callback_list,
              sample_weight=sample_weight, verbose=1 if interactive else 2)
  nan_guard.check()
  if deadline and deadline.stopped_after and deadline.stopped_after < config.epochs:
    print(f'The time budget ran out: training stopped after epoch '
          f'{deadline.stopped_after} of {config.epochs}.', flush=True)
  if config.members_at_once > 1:
    inference_models = members.save_members(run, fernets, class_names, config)
  else:
    inference_models = [recipe.save_inference_model(run, trained, fernets[0], class_names,
                                                     config)]
  backup.delete()  # only now: everything it protected is on disk
  return inference_models


def budget_epochs(train: tuple[np.ndarray, np.ndarray],
                  validation: tuple[np.ndarray, np.ndarray], steps_per_epoch: int,
                  num_classes: int, config: TrainConfig, time_budget_s: float) -> int:
  """--epochs cut to --time_budget_s, from the measured time of one epoch."""
  _, probe = build_training_model(num_classes, steps_per_epoch, config)
  compile_s, epoch_s = time_epoch(probe, train, validation, config)
  # The real run compiles again before its first step.
  left = time_budget_s - (time.monotonic() - _START) - compile_s
  epochs = fitting_epochs(epoch_s, left, config.epochs)
  print(f'{epoch_s:.2f} s an epoch ({steps_per_epoch} steps and validation): {epochs} '
        f'epochs fit the {time_budget_s:.0f} s budget.', flush=True)
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
  try:
    config = TrainConfig.from_flags(FLAGS)
    recipe.check_init_from(config)
    if config.teacher or config.mixup or config.augment_on != 'model':
      raise ConfigError('trainer.array_fit trains without --teacher, --mixup and '
                        '--augment_on=dataset (they need tf.data): use python -m trainer.')
    splits, class_names = arrays.load(FLAGS.arrays, config.dataset)
  except (ConfigError, arrays.ArraysFileError) as e:
    sys.exit(f'error: {e}')
  run = config.run
  budget = FLAGS.time_budget_s
  policy = resolve_precision(config.precision)
  keras.mixed_precision.set_global_policy(policy)
  if config.members_at_once > 1 and members.finished(run, config.members_at_once):
    print(f'{run.root} holds a finished run of {config.members_at_once} members, each '
          f'in {run.root}/member_<k>; evaluate one with: python -m trainer.evaluate '
          f'--run_dir={run.root}/member_0')
    return
  images, labels = model_inputs(*training_arrays(splits, config.train_split),
                                len(class_names))
  steps_per_epoch = config.steps_per_epoch or len(images) // config.batch_size
  # Whole batches only: an epoch is steps_per_epoch steps.
  kept = steps_per_epoch * config.batch_size
  train = images[:kept], members.targets(labels[:kept], config.members_at_once)
  images, labels = model_inputs(*splits['validation'], len(class_names))
  validation = images, members.targets(labels, config.members_at_once)
  if budget and run.flags.exists():
    # A resumed run keeps the epochs its learning-rate schedule was made for.
    config = dataclasses.replace(config,
                                 epochs=int(contract.read_flags(run.flags)['epochs']))
  elif budget:
    config = dataclasses.replace(config, epochs=budget_epochs(
        train, validation, steps_per_epoch, len(class_names), config, budget))
  try:
    started = run_dir.start(
        run, {**run_dir.current_flags(flags_def), 'epochs': str(config.epochs)},
        flags_def.default_values(),
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
    inference_models = fit(run, train, validation, steps_per_epoch, class_names, config,
                           budget)
  except (callbacks.TrainingDivergedError, ValueError) as e:
    sys.exit(f'error: {e}')
  for k, inference in enumerate(inference_models):
    member = f'member {k} ' if config.members_at_once > 1 else ''
    for split, (images, labels) in splits.items():
      plain, flipped = flip_averaged_accuracy(inference, images, labels, len(class_names))
      print(f'{member}{split}: accuracy {plain:.4f} (flip-averaged {flipped:.4f})',
            flush=True)
  evaluated = run.root / 'member_0' if config.members_at_once > 1 else run.root
  print(f'Wrote {run.root}. Reports (where TensorFlow is): '
        f'python -m trainer.evaluate --run_dir={evaluated}')


if __name__ == '__main__':
  define_flags()
  app.run(main)
