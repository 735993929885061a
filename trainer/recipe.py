"""The training recipe the flags describe: augmentation, FERNet, optimiser and loss.

It uses Keras alone (no TensorFlow), so the same recipe trains under any Keras backend:
`trainer.train` feeds it tf.data, `trainer.array_fit` numpy arrays (e.g. under JAX).
"""

import functools
import pathlib

from absl import app
from absl import flags
import keras

from trainer import augment
from trainer import model
from trainer import preprocessing
from trainer import run_dir


def check_flags(values: flags.FlagValues) -> None:
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
  if not validation_held_out(values):
    for name in ('reduce_lr_patience', 'early_stopping_patience', 'teacher'):
      if values[name].value:
        raise app.UsageError(f'--{name} watches or needs the train split alone: it '
                             f'cannot be used with --train_split={values.train_split}.')


def check_init_from(values: flags.FlagValues) -> None:
  """Raises app.UsageError where --init_from names no finished run. Called before the
  run dir is written, so that the corrected command can still use it; apart from
  check_flags, which judges the flags alone, wherever the runs are."""
  if not values.init_from:
    return
  path = initial_model(values.init_from)
  if not path.is_file():
    raise app.UsageError(f'--init_from: {path} is missing: {values.init_from} is not a '
                         'finished trainer run.')


def validation_held_out(values: flags.FlagValues) -> bool:
  """Whether the run leaves the validation split out of training (--train_split=train),
  so that its best validation epoch can be kept."""
  return values.train_split == 'train'


def initial_model(init_from: str) -> pathlib.Path:
  """The inference model of the finished run that --init_from names."""
  return run_dir.RunDir(pathlib.Path(init_from)).inference_model


def augment_config(values: flags.FlagValues) -> augment.AugmentConfig:
  """The augmentation flags as an AugmentConfig."""
  low, high = (float(v) for v in values.brightness)
  return augment.AugmentConfig(rotation=values.rotation, brightness=(low, high),
                               zoom=values.zoom, flip=values.flip, shift=values.shift,
                               erasing=values.erasing)


def build_fernet(num_classes: int, values: flags.FlagValues,
                 dtype_policy: str | None = None) -> keras.Model:
  """FERNet with the flags' widths, kernel size and dropout."""
  return model.build_fernet(
      num_classes, [int(v) for v in values.filters], values.kernel_size, values.dropout,
      values.head_dropout, dtype_policy=dtype_policy)


def load_initial_weights(fernet: keras.Model, init_from: str) -> None:
  """Copies the weights of the finished run `init_from` (checked by check_init_from)
  into `fernet`.

  Raises:
    ValueError: naming the run, when its FERNet has other shapes.
  """
  try:
    fernet.set_weights(
        keras.models.load_model(initial_model(init_from), compile=False).get_weights())
  except ValueError as e:
    raise ValueError(f'--init_from={init_from} holds another model than this FERNet '
                     f'(its --filters, --kernel_size or classes differ): {e}') from None


def with_augmentation(fernet: keras.Model, augmenter: keras.Model) -> keras.Model:
  """The training model: the augmentation layers, then FERNet (both on the accelerator)."""
  inputs = keras.Input(preprocessing.IMAGE_SHAPE, name='image')
  return keras.Model(inputs, fernet(augmenter(inputs)), name='fernet_train')


def make_optimizer(steps_per_epoch: int,
                   values: flags.FlagValues) -> keras.optimizers.Optimizer:
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


def compile_for_training(training_model: keras.Model, steps_per_epoch: int,
                         values: flags.FlagValues) -> None:
  """Compiles with the flags' optimiser and label-smoothed cross-entropy, tracking
  accuracy, running --steps_per_execution steps per call."""
  training_model.compile(
      optimizer=make_optimizer(steps_per_epoch, values),
      loss=keras.losses.CategoricalCrossentropy(label_smoothing=values.label_smoothing),
      metrics=['accuracy'], steps_per_execution=values.steps_per_execution)


def save_inference_model(run: run_dir.RunDir, training_model: keras.Model,
                         fernet: keras.Model, class_names: list[str],
                         values: flags.FlagValues) -> keras.Model:
  """Ends a training run: loads the best checkpoint (if one was saved) into
  `training_model`, copies the weights of `fernet` (its FERNet) into a float32 FERNet
  without augmentation layers, and saves that and the preprocessing spec into `run`.
  Returns the float32 model."""
  if run.best.exists():
    training_model.load_weights(run.best)
  inference = build_fernet(len(class_names), values, dtype_policy='float32')
  inference.set_weights(fernet.get_weights())
  inference.save(run.inference_model)
  preprocessing.write(run.preprocessing, class_names)
  return inference
