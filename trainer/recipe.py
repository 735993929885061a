"""The training recipe the config describes, assembled once for every engine: the
augmentation layers, K >= 1 FERNets, the compiled training model, the per-example
weights, the callbacks, and the saved inference model(s) at the end.

It uses Keras alone (no TensorFlow), so the same recipe trains under any Keras backend:
fed by tf.data or by numpy arrays (trainer.sources; e.g. under JAX on a GPU machine).

Several members (--members_at_once=K): one Keras model holds K members, each its own
augmentation layers (seeded --seed + k) followed by its own FERNet, all fed the same
batches; it has one output per member, and its loss is the sum of the members' losses.
The gradient of each member's weights is then that member's own, and an element-wise
optimiser (Adam, AdamW, SGD) updates each member as if it trained alone on these
batches: for an accelerator that one small FERNet leaves mostly idle. Each member is
saved as a finished run dir of its own, `<run_dir>/member_<k>/`, that `trainer.evaluate`,
`trainer.ensemble` and `export` take like any other.
"""

import dataclasses
import functools
import pathlib

import keras
import numpy as np

from fer_common import contract
from fer_common import files
from fer_common.contract import RunDir
from trainer import augment
from trainer import callbacks as callbacks_lib
from trainer import model
from trainer import run_dir
from trainer.config import ConfigError
from trainer.config import TrainConfig


@dataclasses.dataclass
class Recipe:
  """What `assemble` builds.

  Attributes:
    fernets: the K members' FERNets, in the global dtype policy.
    augmenters: their augmentation layers.
    training_model: the compiled model that trains them: augmentation then FERNet (the
      FERNet alone with --augment_on=dataset), one output per member.
    class_weights: one weight per class (--balance_classes), else None; every engine
      turns it into per-example weights with `example_weights`.
  """

  fernets: list[keras.Model]
  augmenters: list[keras.Sequential]
  training_model: keras.Model
  class_weights: np.ndarray | None


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


def class_weights(counts: list[int]) -> np.ndarray:
  """One weight per class that makes every class weigh as much in total: examples /
  (classes x examples of the class); 1 for a class without examples."""
  total, counts = sum(counts), np.asarray(counts, np.float64)
  return np.where(counts > 0, total / (len(counts) * np.maximum(counts, 1)),
                  1.0).astype(np.float32)


def example_weights(weights: np.ndarray, one_hot):
  """The weight of each example's class (the argmax of `one_hot`): fit()'s
  sample_weight. `one_hot` may be a numpy array or a backend tensor (a tf.data map)."""
  return keras.ops.take(keras.ops.convert_to_tensor(weights),
                        keras.ops.argmax(one_hot, -1))


def targets(labels, members: int):
  """The training targets of `members` members: the labels for one, a tuple for more."""
  return labels if members == 1 else (labels,) * members


def build_fernet(num_classes: int, config: TrainConfig, dtype_policy: str | None = None,
                 replicas: int = 1) -> keras.Model:
  """FERNet with the config's widths, kernel size and dropout; over several `replicas`
  its BatchNorm statistics are those of the global batch, as on one device."""
  return model.build_fernet(
      num_classes, filters=config.filters, kernel_size=config.kernel_size,
      dropout=config.dropout, head_dropout=config.head_dropout, dtype_policy=dtype_policy,
      synchronized_batch_norm=replicas > 1)


def load_initial_weights(fernet: keras.Model, init_from: str) -> None:
  """Copies the weights of the finished run `init_from` (checked by check_init_from)
  into `fernet`.

  Raises:
    ValueError: naming the run, when its FERNet has other shapes.
  """
  try:
    fernet.set_weights(keras.models.load_model(
        RunDir(pathlib.Path(init_from)).inference_model, compile=False).get_weights())
  except ValueError as e:
    raise ValueError(f'--init_from={init_from} holds another model than this FERNet '
                     f'(its --filters, --kernel_size or classes differ): {e}') from None


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


def assemble(config: TrainConfig, num_classes: int, steps_per_epoch: int,
             class_counts: list[int] | None = None, replicas: int = 1) -> Recipe:
  """Builds the config's members (initialised from --init_from if given) and their
  training model, compiled with the config's optimiser and label-smoothed cross-entropy
  (each member's output its own loss, summed), tracking accuracy, running
  --steps_per_execution steps per call. Under the strategy scope of a distributed run,
  call it inside `strategy.scope()` with its `replicas`.

  class_counts: the train split's examples of each class, for --balance_classes.
  """
  members = config.members_at_once
  augmenters = [augment.build_augmenter(config, seed=config.seed + k)
                for k in range(members)]
  fernets = [build_fernet(num_classes, config, replicas=replicas) for _ in range(members)]
  for augmenter, fernet in zip(augmenters, fernets):
    augment.allow_xla(augmenter)
    if config.init_from:
      load_initial_weights(fernet, config.init_from)
  inputs = keras.Input(contract.IMAGE_SHAPE, name='image')
  if members > 1:
    outputs = [keras.Sequential([a, f], name=f'member_{k}')(inputs)
               for k, (a, f) in enumerate(zip(augmenters, fernets))]
    training_model = keras.Model(inputs, outputs, name='fernet_members')
  elif config.augment_on == 'dataset':  # tf.data augments: the model is FERNet alone
    training_model = fernets[0]
  else:
    training_model = keras.Model(inputs, fernets[0](augmenters[0](inputs)),
                                 name='fernet_train')
  training_model.compile(
      optimizer=make_optimizer(steps_per_epoch, config),
      loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
      metrics=['accuracy'] if members == 1 else [['accuracy']] * members,
      steps_per_execution=config.steps_per_execution)
  weights = None
  if config.balance_classes:
    if class_counts is None:
      raise ValueError('--balance_classes needs the class counts of the train split')
    weights = class_weights(class_counts)
  return Recipe(fernets, augmenters, training_model, weights)


def callbacks(run: RunDir, config: TrainConfig, *, chief: bool, progress: bool,
              tensorboard: bool, deadline: float | None = None):
  """The run's (callbacks, NaN guard, backup) as trainer.callbacks.build makes them from
  the config; with `deadline` (time.monotonic() seconds) a StopAtDeadline first."""
  callback_list, nan_guard, backup = callbacks_lib.build(
      run, chief=chief, reduce_lr_patience=config.reduce_lr_patience,
      reduce_lr_factor=config.reduce_lr_factor, min_learning_rate=config.min_learning_rate,
      early_stopping_patience=config.early_stopping_patience,
      progress_batch_size=config.batch_size if progress else None,
      tensorboard=tensorboard,
      keep_best=config.validation_held_out and config.members_at_once == 1)
  if deadline is not None:
    callback_list.insert(0, callbacks_lib.StopAtDeadline(deadline))
  return callback_list, nan_guard, backup


def save(run: RunDir, recipe: Recipe, class_names: list[str],
         config: TrainConfig) -> list[keras.Model]:
  """Ends a training run: loads the best checkpoint (if one was saved) into the training
  model, copies each member's weights into a float32 FERNet without augmentation, and
  saves for each member its flags (members only), the preprocessing spec and then that
  model, each whole or not at all (the model last: its presence marks a finished run).
  Returns the float32 models."""
  if run.best.exists():
    recipe.training_model.load_weights(run.best)
  saved_flags = contract.read_flags(run.flags)
  inference_models = []
  for member, fernet in zip(run_dir.member_runs(run, len(recipe.fernets)), recipe.fernets):
    if member != run:
      member.root.mkdir(parents=True, exist_ok=True)
      files.write_text(member.flags, contract.flags_text(
          {**saved_flags, 'run_dir': str(member.root), 'members_at_once': '1'}))
    inference = build_fernet(len(class_names), config, dtype_policy='float32')
    inference.set_weights(fernet.get_weights())
    contract.write_preprocessing(member.preprocessing, class_names)
    callbacks_lib.save_model(inference, member.inference_model)
    inference_models.append(inference)
  return inference_models
