"""The callbacks of a training run."""

import csv
import math
import time

import keras

from trainer.run_dir import RunDir

MONITOR = 'val_accuracy'


class TrainingDivergedError(RuntimeError):
  """The loss became NaN or infinite."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
  """Stops training at the first non-finite batch loss; check() after fit() then raises.

  kept: what of the run survives training stopped this way, for the error message.
  """

  def __init__(self, kept: str):
    super().__init__()
    self.diverged_at = None
    self._kept = kept

  def on_train_batch_end(self, batch, logs=None):
    loss = (logs or {}).get('loss')
    if loss is not None and not math.isfinite(float(loss)):
      self.diverged_at = batch
      self.model.stop_training = True

  def check(self) -> None:
    """Raises TrainingDivergedError if training stopped on a non-finite loss."""
    if self.diverged_at is not None:
      raise TrainingDivergedError(
          f'the loss became NaN/inf (batch {self.diverged_at}); training stopped. '
          f'{self._kept} Lower --learning_rate or raise --batch_size, with a new '
          '--run_dir.')


class LogLearningRate(keras.callbacks.Callback):
  """Adds the optimiser's current learning rate to each epoch's logs (history.csv)."""

  def on_epoch_end(self, epoch, logs=None):
    if logs is not None:
      logs['learning_rate'] = float(keras.ops.convert_to_numpy(
          self.model.optimizer.learning_rate))


class ProgressLog(keras.callbacks.Callback):
  """One log line about every `every` batches with throughput and the time the run has
  left: progress for a run whose output goes to a file (where Keras prints only one line
  per epoch). With several steps per execution Keras reports only each execution's last
  batch: the line comes at the first report past each multiple of `every`."""

  def __init__(self, batch_size: int, every: int = 50):
    super().__init__()
    self._batch_size, self._every = batch_size, every
    self._epoch, self._start, self._logged = 0, 0.0, 0
    self._last_epoch_s = None  # training and validation, once an epoch has ended

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch, self._start, self._logged = epoch, time.monotonic(), 0

  def on_epoch_end(self, epoch, logs=None):
    self._last_epoch_s = time.monotonic() - self._start

  def on_train_batch_end(self, batch, logs=None):
    done = batch + 1
    if done // self._every > self._logged:
      self._logged = done // self._every
      seconds = time.monotonic() - self._start
      rate = done * self._batch_size / seconds
      metrics = ' '.join(f'{k}={float(v):.4f}' for k, v in (logs or {}).items())
      print(f'epoch {self._epoch + 1}{self._of("epochs")} batch {done}{self._of("steps")}: '
            f'{rate:.0f} images/s{self._time_left(done, seconds)} {metrics}', flush=True)

  def _of(self, param: str) -> str:
    total = self.params.get(param)
    return f'/{total}' if total else ''

  def _time_left(self, done: int, seconds: float) -> str:
    """', about N min left' for the whole run, or '' where Keras does not know its steps."""
    steps, epochs = self.params.get('steps'), self.params.get('epochs')
    if not steps or not epochs:
      return ''
    seconds_per_step = seconds / done
    whole_epoch = self._last_epoch_s or steps * seconds_per_step
    left = ((steps - done) * seconds_per_step
            + (epochs - self._epoch - 1) * whole_epoch)
    return f', about {_duration(left)} left'


def _duration(seconds: float) -> str:
  if seconds < 90:
    return f'{seconds:.0f} s'
  if seconds < 90 * 60:
    return f'{seconds / 60:.0f} min'
  return f'{seconds / 3600:.1f} h'


class StopAtDeadline(keras.callbacks.Callback):
  """Ends training after the epoch that leaves no time for another before `deadline`
  (a time.monotonic() value): a guard for runs sized to a wall-clock budget."""

  def __init__(self, deadline: float):
    super().__init__()
    self._deadline, self._epoch_start = deadline, 0.0
    self.stopped_after = None

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch_start = time.monotonic()

  def on_epoch_end(self, epoch, logs=None):
    now = time.monotonic()
    if now + (now - self._epoch_start) > self._deadline:
      self.stopped_after = epoch + 1
      self.model.stop_training = True


def best_recorded(history_csv) -> float:
  """The best val_accuracy in a history.csv so far (-inf if none), so that a resumed run
  does not overwrite its best checkpoint with a worse epoch."""
  try:
    with open(history_csv) as f:
      values = [float(row[MONITOR]) for row in csv.DictReader(f) if row.get(MONITOR)]
  except FileNotFoundError:
    return -math.inf
  return max(values, default=-math.inf)


def build(run: RunDir, *, chief: bool, reduce_lr_patience: int, reduce_lr_factor: float,
          min_learning_rate: float, early_stopping_patience: int,
          progress_batch_size: int | None = None, tensorboard: bool = True,
          keep_best: bool = True
          ) -> tuple[list[keras.callbacks.Callback], StopOnNonFiniteLoss]:
  """Returns the callbacks, and the NaN guard among them to check() after fit().

  progress_batch_size: add a ProgressLog for batches of this size (None: no log).
  tensorboard: write TensorBoard logs (the callback needs TensorFlow installed).
  keep_best: checkpoint the epoch of the best validation accuracy (the run's model);
    False where the validation split is trained on and the last epoch is the model.
  """
  nan_guard = StopOnNonFiniteLoss(
      f'The best model so far is kept in {run.best}.' if keep_best else
      'The run trains on the validation split, so it keeps no best-epoch model.')
  result = [nan_guard, LogLearningRate()]
  if keep_best:
    best = keras.callbacks.ModelCheckpoint(
        run.best, monitor=MONITOR, mode='max', save_best_only=True)
    best.best = best_recorded(run.history)
    result.append(best)
  if progress_batch_size:
    result.append(ProgressLog(progress_batch_size))
  if reduce_lr_patience:
    result.append(keras.callbacks.ReduceLROnPlateau(
        monitor=MONITOR, mode='max', factor=reduce_lr_factor,
        patience=reduce_lr_patience, min_lr=min_learning_rate, verbose=1))
  if early_stopping_patience:
    result.append(keras.callbacks.EarlyStopping(
        monitor=MONITOR, mode='max', patience=early_stopping_patience,
        restore_best_weights=True, verbose=1))
  if chief and tensorboard:
    result.append(keras.callbacks.TensorBoard(run.tensorboard))
  if chief:
    result.append(keras.callbacks.CSVLogger(run.history, append=True))
  # Last, so that everything above has seen an epoch before it is saved for resumption.
  # double_checkpoint keeps the previous backup: a run killed while the backup is being
  # written resumes from the one before instead of failing on a truncated file.
  result.append(keras.callbacks.BackupAndRestore(run.backup, double_checkpoint=True))
  return result, nan_guard
