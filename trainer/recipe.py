"""The training recipe the flags describe: augmentation, FERNet, optimiser and loss.

It uses Keras alone (no TensorFlow), so the same recipe trains under any Keras backend:
`trainer.train` feeds it tf.data, `trainer.array_fit` numpy arrays (e.g. under JAX).
"""

import functools
import pathlib

import keras

from fer_common import contract
from fer_common.contract import RunDir
from trainer import augment
from trainer import callbacks
from trainer import model
from trainer.config import ConfigError
from trainer.config import TrainConfig


def check_init_from(config: TrainConfig) -> None:
  """Raises ConfigError where --init_from names no finished run. Called before the run
  dir is written, so that the corrected command can still use it; apart from
  TrainConfig.check, which judges the flags alone, wherever the runs are."""
  if not config.init_from:
    return
  reason = RunDir(pathlib.Path(config.init_from)).unfinished_reason()
  if reason:
    raise ConfigError(f'--init_from: {reason}: {config.init_from} is not a finished '
                      'trainer run.')


def initial_model(init_from: str) -> pathlib.Path:
  """The inference model of the finished run that --init_from names."""
  return RunDir(pathlib.Path(init_from)).inference_model


def augment_config(config: TrainConfig) -> augment.AugmentConfig:
  """The augmentation flags as an AugmentConfig."""
  return augment.AugmentConfig(rotation=config.rotation, brightness=config.brightness,
                               zoom=config.zoom, flip=config.flip, shift=config.shift,
                               erasing=config.erasing, blur=config.blur,
                               contrast=config.contrast, noise=config.noise,
                               gamma=config.gamma, jpeg_quality=config.jpeg_quality)


def class_weights(counts: list[int]) -> dict[int, float]:
  """Keras class_weight that makes every class weigh as much in total: examples / (classes
  x examples of the class)."""
  total = sum(counts)
  return {label: total / (len(counts) * n) for label, n in enumerate(counts) if n}


def class_weight_table(class_weight: dict[int, float], num_classes: int) -> list[float]:
  """`class_weight` as one weight per class index (1 for a class it leaves out, as Keras
  does): the table that turns labels into fit()'s sample weights."""
  return [class_weight.get(label, 1.0) for label in range(num_classes)]


def build_fernet(num_classes: int, config: TrainConfig, dtype_policy: str | None = None,
                 replicas: int = 1) -> keras.Model:
  """FERNet with the flags' widths, kernel size and dropout; over several `replicas` its
  BatchNorm statistics are those of the global batch, as on one device."""
  return model.build_fernet(
      num_classes, config.filters, config.kernel_size, config.dropout,
      config.head_dropout, dtype_policy=dtype_policy,
      synchronized_batch_norm=replicas > 1)


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
  inputs = keras.Input(contract.IMAGE_SHAPE, name='image')
  return keras.Model(inputs, fernet(augmenter(inputs)), name='fernet_train')


def make_optimizer(steps_per_epoch: int,
                   config: TrainConfig) -> keras.optimizers.Optimizer:
  """Adam, AdamW or SGD (Nesterov) with a constant or warm-up + cosine learning rate;
  weight decay spares BatchNorm and biases."""
  learning_rate = config.learning_rate
  if config.lr_schedule == 'cosine':
    warmup = int(config.warmup_epochs * steps_per_epoch)
    learning_rate = keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else config.learning_rate,
        decay_steps=max(config.epochs * steps_per_epoch - warmup, 1),
        warmup_target=config.learning_rate if warmup else None, warmup_steps=warmup)
  optimizer_class = {
      'adam': keras.optimizers.Adam,
      # AdamW without decay is Adam (Keras's AdamW refuses a weight decay of None).
      'adamw': keras.optimizers.AdamW if config.weight_decay else keras.optimizers.Adam,
      'sgd': functools.partial(keras.optimizers.SGD, momentum=config.momentum,
                               nesterov=True)}
  optimizer = optimizer_class[config.optimizer](
      learning_rate=learning_rate, weight_decay=config.weight_decay or None)
  if config.weight_decay:
    optimizer.exclude_from_weight_decay(var_names=['gamma', 'beta', 'bias'])
  return optimizer


def compile_for_training(training_model: keras.Model, steps_per_epoch: int,
                         config: TrainConfig) -> None:
  """Compiles with the flags' optimiser and label-smoothed cross-entropy (on each output
  of a model of several, summed), tracking accuracy, running --steps_per_execution steps
  per call."""
  outputs = len(training_model.outputs)
  training_model.compile(
      optimizer=make_optimizer(steps_per_epoch, config),
      loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
      metrics=['accuracy'] if outputs == 1 else [['accuracy']] * outputs,
      steps_per_execution=config.steps_per_execution)


def save_inference_model(run: RunDir, training_model: keras.Model,
                         fernet: keras.Model, class_names: list[str],
                         config: TrainConfig) -> keras.Model:
  """Ends a training run: loads the best checkpoint (if one was saved) into
  `training_model`, copies the weights of `fernet` (its FERNet) into a float32 FERNet
  without augmentation layers, and saves the preprocessing spec and then that model into
  `run`, each whole or not at all (the model last: its presence marks a finished run).
  Returns the float32 model."""
  if run.best.exists():
    training_model.load_weights(run.best)
  inference = build_fernet(len(class_names), config, dtype_policy='float32')
  inference.set_weights(fernet.get_weights())
  contract.write_preprocessing(run.preprocessing, class_names)
  callbacks.save_model(inference, run.inference_model)
  return inference
