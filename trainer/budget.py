"""--time_budget_s: the epochs that fit a wall-clock budget, from one epoch timed as the
real run trains it, so that a cosine schedule still decays to its end."""

import math
import pathlib
import tempfile
import time

from fer_common.contract import RunDir
from trainer import recipe as recipe_lib
from trainer.config import TrainConfig

# Share of the measured epoch time added for jitter between epochs: with 5 %, runs that
# went 2-4 % slower than their probe on a shared GPU were stopped short of their plan.
EPOCH_OVERHEAD = 0.10


def fitting_epochs(epoch_s: float, budget_s: float, max_epochs: int) -> int:
  """The epochs (at least 1, at most `max_epochs`) of `epoch_s` seconds each that fit
  `budget_s`."""
  return max(1, min(max_epochs, math.floor(budget_s / (epoch_s * (1 + EPOCH_OVERHEAD)))))


def time_epoch(probe: recipe_lib.Recipe, inputs: dict, config: TrainConfig
               ) -> tuple[float, float]:
  """(seconds to compile, seconds per epoch) of training `probe` (assembled for this):
  one whole epoch as the real run trains it, validation and the run's checkpoint
  callbacks (into a scratch dir) included. A probe of 100 steps alone over-planned by
  half: it left out validation, checkpoints and the wait for the device that per-batch
  callback hooks cause."""
  start = time.monotonic()
  # One step and validation: compiles training and the validation shapes.
  probe.training_model.fit(**{**inputs, 'steps_per_epoch': 1}, verbose=0)
  compiled = time.monotonic()
  with tempfile.TemporaryDirectory() as scratch:
    callback_list, _, _ = recipe_lib.callbacks(RunDir(pathlib.Path(scratch)), config,
                                               chief=True, progress=False,
                                               tensorboard=False)
    probe.training_model.fit(**inputs, callbacks=callback_list, verbose=0)
  return compiled - start, time.monotonic() - compiled


def planned_epochs(probe: recipe_lib.Recipe, inputs: dict, steps_per_epoch: int,
                   config: TrainConfig, started: float) -> int:
  """--epochs cut to --time_budget_s (counted from `started`, time.monotonic()) from the
  measured time of one epoch of `probe`, which this trains: build another for the run."""
  compile_s, epoch_s = time_epoch(probe, inputs, config)
  # The real run compiles again before its first step.
  left = config.time_budget_s - (time.monotonic() - started) - compile_s
  epochs = fitting_epochs(epoch_s, left, config.epochs)
  print(f'{epoch_s:.2f} s an epoch ({steps_per_epoch} steps and validation): {epochs} '
        f'epochs fit the {config.time_budget_s:.0f} s budget.', flush=True)
  return epochs
