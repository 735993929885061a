"""The trainer's flags as one typed, frozen value, built once and checked once.

`recipe`, `train` and `array_fit` read this instead of absl's global FLAGS, so the recipe
can be built and tested from plain Python.
"""

from __future__ import annotations

import dataclasses
import pathlib

from absl import flags

from fer_common import contract
from fer_common.contract import RunDir


class ConfigError(ValueError):
  """Flag values that cannot work together; the message names the flags."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Every trainer flag (trainer/flags_def.py documents each), typed."""

  dataset: str
  data_dir: str | None
  run_dir: str
  train_split: str
  shuffle_buffer: int
  seed: int
  filters: tuple[int, ...]
  kernel_size: int
  dropout: float
  head_dropout: float
  init_from: str | None
  optimizer: str
  momentum: float
  learning_rate: float
  weight_decay: float
  lr_schedule: str
  warmup_epochs: float
  label_smoothing: float
  batch_size: int
  epochs: int
  members_at_once: int
  steps_per_epoch: int | None
  steps_per_execution: int
  eval_limit: int | None
  reduce_lr_patience: int
  reduce_lr_factor: float
  min_learning_rate: float
  early_stopping_patience: int
  rotation: float
  brightness: tuple[float, float]
  zoom: float
  flip: bool
  shift: float
  erasing: float
  blur: float
  contrast: float
  noise: float
  gamma: float
  jpeg_quality: int
  balance_classes: bool
  mixup: float
  teacher: str | None
  teacher_weight: float
  augment_on: str
  precision: str
  distribution: str

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

  @property
  def validation_held_out(self) -> bool:
    """Whether the run leaves the validation split out of training
    (--train_split=train), so that its best validation epoch can be kept."""
    return self.train_split == contract.TRAIN_SPLITS[0]

  @property
  def run(self) -> RunDir:
    """The run dir's layout."""
    return RunDir(pathlib.Path(self.run_dir))
