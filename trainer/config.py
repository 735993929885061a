"""Every option of the trainer, declared once: its type, default, help and bounds.

`TrainConfig` is the declaration. The command-line flags (`python -m trainer --help`),
their defaults in flags.txt and the typed, frozen value the trainer reads are all made
from it, so adding an option touches its field here and the code that uses it.

The defaults are our recommended recipe, the one `configs/fernet.cfg` spells out: FERNet
at the study's widths with 3x3 kernels, AdamW with warm-up and cosine decay over 40
epochs, label smoothing, mild augmentation and light dropout.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import pathlib
import types
import typing

from absl import flags

from fer_common import contract
from fer_common.contract import RunDir

PRECISIONS = ('auto', 'float32', 'mixed_float16', 'mixed_bfloat16')
DISTRIBUTIONS = ('auto', 'one_device', 'mirrored', 'multi_worker')


class ConfigError(ValueError):
  """Flag values that cannot work together; the message names the flags."""


def option(default, help_text: str, *, choices: Sequence[str] | None = None,
           lower: float | None = None, upper: float | None = None,
           required: bool = False):
  """A TrainConfig field: its default, its --help text, its allowed values (choices, or
  the bounds lower and upper) and whether the command line must give it."""
  return dataclasses.field(default=default, metadata={
      'help': help_text, 'choices': choices, 'lower': lower, 'upper': upper,
      'required': required})


POSITIVE = {'lower': 1}
FRACTION = {'lower': 0.0, 'upper': 1.0}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """The trainer's options, typed; `python -m trainer --help` prints each one's help."""

  # Data.
  dataset: str = option(contract.DEFAULT_CONFIG, f'{contract.DATASET} config to train on.',
                        choices=list(contract.DATASET_CONFIGS))
  data_dir: str | None = option(None, 'TFDS data dir (default: $TFDS_DATA_DIR or '
                                '~/tensorflow_datasets).')
  arrays: str | None = option(None, 'Train from this .npz[.xz] of numpy arrays (python -m '
                              'trainer.dump_arrays writes it) instead of the TFDS dataset: '
                              'where only Keras and JAX are installed, e.g. a GPU machine.')
  run_dir: str | None = option(None, 'Output folder: flags, checkpoints, models, reports. '
                               'Running the same command again resumes it.', required=True)
  train_split: str = option('train', 'What to train on. train+validation refits on both '
                            'once the choices the validation split guided are made: its '
                            'validation metrics are then not held out, so the last epoch '
                            'is kept, not the best.', choices=list(contract.TRAIN_SPLITS))
  shuffle_buffer: int = option(25_000, 'Shuffle buffer (>= train size: a full shuffle).',
                               **POSITIVE)
  seed: int = option(42, 'Seed of shuffling, augmentation and initialisation.', lower=0)
  # Model.
  filters: tuple[int, ...] = option((32, 64, 128, 256, 512), 'Conv filters of each FERNet '
                                    'block (2 convs per block).')
  kernel_size: int = option(3, 'Conv kernel size (the study: 4).', **POSITIVE)
  dropout: float = option(0.1, 'Dropout after each block.', lower=0.0, upper=0.95)
  head_dropout: float = option(0.3, 'Dropout before the softmax layer.', lower=0.0,
                               upper=0.95)
  init_from: str | None = option(None, 'A finished run dir whose FERNet (same --filters, '
                                 '--kernel_size and classes) starts training instead of '
                                 'Glorot initialisation: fine-tuning; default: none.')
  members_at_once: int = option(1, 'FERNets trained at once in one program, each with its '
                                'own initialisation and augmentation seed, on the same '
                                'batches; each is saved as a run dir of its own, '
                                '<run_dir>/member_<k>.', **POSITIVE)
  # Optimisation.
  optimizer: str = option('adamw', 'Optimiser; sgd uses Nesterov momentum (--momentum).',
                          choices=['adam', 'adamw', 'sgd'])
  momentum: float = option(0.9, 'Nesterov momentum of --optimizer=sgd.', **FRACTION)
  learning_rate: float = option(2e-3, 'Learning rate (the peak with a schedule).',
                                lower=0.0)
  weight_decay: float = option(0.01, 'Decoupled weight decay of the optimiser (BatchNorm '
                               'and bias excluded); 0 disables.', **FRACTION)
  lr_schedule: str = option('cosine', 'constant (with --reduce_lr_patience) or cosine '
                            'decay with warm-up.', choices=['constant', 'cosine'])
  warmup_epochs: float = option(1.0, 'Linear warm-up with --lr_schedule=cosine.',
                                lower=0.0)
  label_smoothing: float = option(0.1, 'Label smoothing of the cross-entropy.', **FRACTION)
  batch_size: int = option(64, 'Global batch size.', **POSITIVE)
  epochs: int = option(40, 'Maximum epochs.', **POSITIVE)
  time_budget_s: float = option(0.0, 'Wall-clock seconds for the whole command: times one '
                                'epoch and cuts --epochs to what fits, so that a schedule '
                                'still decays to its end; 0: no budget.', lower=0.0)
  steps_per_epoch: int | None = option(None, 'Limit steps per epoch (smoke runs); default: '
                                       'one pass over the train split.', **POSITIVE)
  steps_per_execution: int = option(1, 'Training steps per compiled call (Keras '
                                    'compile()); more keeps a fast accelerator from '
                                    'waiting for the host between steps. Per-batch '
                                    'callbacks see every Nth batch.', **POSITIVE)
  eval_limit: int | None = option(None, 'Use only this many examples of each split for '
                                  'validation and reports (smoke runs); default: all.',
                                  **POSITIVE)
  # Callbacks.
  reduce_lr_patience: int = option(0, 'ReduceLROnPlateau patience in epochs on '
                                   'val_accuracy; 0 disables.', lower=0)
  reduce_lr_factor: float = option(0.1, 'ReduceLROnPlateau factor.', lower=1e-6,
                                   upper=0.999)
  min_learning_rate: float = option(1e-6, 'ReduceLROnPlateau floor.', lower=0.0)
  early_stopping_patience: int = option(0, 'EarlyStopping patience on val_accuracy '
                                        '(restores the best weights); 0 disables.',
                                        lower=0)
  # Augmentation (Keras preprocessing layers, training only; trainer.augment).
  rotation: float = option(10.0, 'RandomRotation: max degrees either way.', lower=0.0,
                           upper=180.0)
  brightness: tuple[float, float] = option((-0.1, 0.1), 'RandomBrightness delta range '
                                           'lo,hi as a fraction of the value range, e.g. '
                                           '-0.2,0.2; 0,0 disables.')
  zoom: float = option(0.1, 'RandomZoom: max fraction in or out.', lower=0.0, upper=0.9)
  flip: bool = option(True, 'RandomFlip horizontal.')
  shift: float = option(0.1, 'RandomTranslation: max fraction of width/height.',
                        lower=0.0, upper=0.9)
  erasing: float = option(0.0, 'RandomErasing: probability of blanking a random '
                          'rectangle of 2-33 % of the image with noise; 0 disables.',
                          **FRACTION)
  blur: float = option(0.0, 'RandomGaussianBlur: largest sigma in pixels, drawn per image '
                       'from [0, blur]; 0 disables.', lower=0.0, upper=5.0)
  contrast: float = option(0.0, 'RandomContrast: contrast factor drawn from [1 - c, 1 + '
                           'c]; 0 disables.', **FRACTION)
  noise: float = option(0.0, 'GaussianNoise: standard deviation of added pixel noise as a '
                        'fraction of the value range; 0 disables.', lower=0.0, upper=0.5)
  gamma: float = option(0.0, 'RandomGamma: gamma drawn log-uniformly from [1/(1+g), 1+g]; '
                        '0 disables.', lower=0.0, upper=2.0)
  jpeg_quality: int = option(0, 'RandomJpegQuality: JPEG compression at a quality drawn '
                             'from [q, 100]; 0 disables.', lower=0, upper=100)
  balance_classes: bool = option(False, 'Weight each training example by the inverse of '
                                 'its class\'s share of the train split, so rare classes '
                                 '(angry, fearful) count as much as happy.')
  mixup: float = option(0.0, 'MixUp alpha: blend each training image and its label with '
                        'another of the batch (in the tf.data map); 0 disables.',
                        lower=0.0)
  # Distillation.
  teacher: str | None = option(None, 'A finished run or ensemble dir (same dataset) whose '
                               'probabilities on the train split become part of the '
                               'training targets (knowledge distillation); default: none.')
  teacher_weight: float = option(0.5, 'With --teacher: targets are this share of the '
                                 'teacher\'s probabilities plus the rest of the one-hot '
                                 'label.', **FRACTION)
  augment_on: str = option('model', 'Where augmentation runs: inside the training model '
                           '(on the accelerator) or in the tf.data map after batch().',
                           choices=['model', 'dataset'])
  # Devices.
  precision: str = option('auto', 'auto: mixed_bfloat16 on a GPU and on a CPU with AMX, '
                          'float32 on other CPUs (measured, see BENCHMARKS.md).',
                          choices=list(PRECISIONS))
  distribution: str = option('auto', 'auto: multi_worker if TF_CONFIG is set, mirrored '
                             'with several GPUs, else one_device.',
                             choices=list(DISTRIBUTIONS))

  @classmethod
  def from_flags(cls, values: flags.FlagValues = flags.FLAGS) -> TrainConfig:
    """The config of parsed trainer flags, checked (`check`).

    Raises:
      ConfigError: naming the flag whose value cannot work.
    """
    raw = {field.name: values[field.name].value for field in dataclasses.fields(cls)}
    try:
      raw['filters'] = tuple(int(v) for v in raw['filters'])
      raw['brightness'] = tuple(float(v) for v in raw['brightness'])
    except ValueError:
      raise ConfigError('--filters takes positive integers (e.g. 32,64,128,256,512) and '
                        '--brightness two numbers (e.g. -0.2,0.2).') from None
    config = cls(**raw)
    config.check()
    return config

  @classmethod
  def from_args(cls, args: Sequence[str]) -> TrainConfig:
    """The config of command-line arguments (`--name=value`, `--flagfile=...`), parsed
    in their own FlagValues, as `python -m trainer args...` would see them.

    Raises:
      flags.Error: a flag absl refuses (unknown, out of its bounds, not a number).
      ConfigError: values that cannot work together.
    """
    values = flags.FlagValues()
    define_flags(values)
    values(['trainer', *args])
    return cls.from_flags(values)

  def check(self) -> None:
    """Raises ConfigError for values that cannot work together."""
    if len(self.brightness) != 2 or not all(-1 <= v <= 1 for v in self.brightness):
      raise ConfigError('--brightness takes two numbers in [-1, 1], e.g. -0.2,0.2.')
    if not self.filters or not all(v > 0 for v in self.filters):
      raise ConfigError('--filters takes positive integers, e.g. 32,64,128,256,512.')
    if len(self.filters) > 5:
      raise ConfigError('--filters: at most 5 blocks fit a 48x48 input (5 poolings).')
    if self.reduce_lr_patience and self.lr_schedule != 'constant':
      raise ConfigError('--reduce_lr_patience needs --lr_schedule=constant.')
    if not self.validation_held_out:
      for name in ('reduce_lr_patience', 'early_stopping_patience', 'teacher'):
        if getattr(self, name):
          raise ConfigError(f'--{name} watches or needs the train split alone: it '
                            f'cannot be used with --train_split={self.train_split}.')
    if self.members_at_once > 1:
      for name in ('reduce_lr_patience', 'early_stopping_patience'):
        if getattr(self, name):
          raise ConfigError(f'--{name} watches one validation accuracy; the '
                            f'--members_at_once={self.members_at_once} members each have '
                            f'their own and train to the end of their schedule: set '
                            f'--{name}=0.')
    if self.arrays:
      needs_tf_data = [name for name, used in (
          ('teacher', self.teacher), ('mixup', self.mixup),
          ('augment_on=dataset', self.augment_on == 'dataset'),
          ('distribution=multi_worker', self.distribution == 'multi_worker')) if used]
      if needs_tf_data:
        raise ConfigError(f'--arrays trains without --{", --".join(needs_tf_data)} (they '
                          'need tf.data): leave --arrays out to train from the TFDS '
                          'dataset.')

  @property
  def validation_held_out(self) -> bool:
    """Whether the run leaves the validation split out of training
    (--train_split=train), so that its best validation epoch can be kept."""
    return self.train_split == contract.TRAIN_SPLITS[0]

  @property
  def run(self) -> RunDir:
    """The run dir's layout."""
    return RunDir(pathlib.Path(self.run_dir))


def _define(field: dataclasses.Field, kind, flag_values: flags.FlagValues) -> None:
  meta, name, default = field.metadata, field.name, field.default
  kw = {'flag_values': flag_values, 'required': meta['required']}
  bounds = {'lower_bound': meta['lower'], 'upper_bound': meta['upper']}
  if kind is bool:
    flags.DEFINE_bool(name, default, meta['help'], **kw)
  elif kind is int:
    flags.DEFINE_integer(name, default, meta['help'], **bounds, **kw)
  elif kind is float:
    flags.DEFINE_float(name, default, meta['help'], **bounds, **kw)
  elif kind is tuple:
    flags.DEFINE_list(name, [str(v) for v in default], meta['help'], **kw)
  elif meta['choices']:
    flags.DEFINE_enum(name, default, meta['choices'], meta['help'], **kw)
  else:
    flags.DEFINE_string(name, default, meta['help'], **kw)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines one flag per TrainConfig field in `flag_values` (the global FLAGS: once per
  process)."""
  hints = typing.get_type_hints(TrainConfig)
  for field in dataclasses.fields(TrainConfig):
    hint = hints[field.name]
    kind = typing.get_origin(hint) or hint
    if kind in (typing.Union, types.UnionType):  # X | None: a flag of type X
      kind = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    _define(field, kind, flag_values)


def recorded(config: TrainConfig) -> dict[str, str]:
  """{name: value} of `config` as flags.txt records it (absl's spelling; options that
  are None left out)."""
  def spelled(value):
    if isinstance(value, bool):
      return str(value).lower()
    return ','.join(map(str, value)) if isinstance(value, tuple) else str(value)
  return {field.name: spelled(getattr(config, field.name))
          for field in dataclasses.fields(config) if getattr(config, field.name) is not None}


def default_values() -> dict[str, str]:
  """The options' defaults as flags.txt spells them: a run dir written before an option
  existed trained with its default."""
  return recorded(TrainConfig())
