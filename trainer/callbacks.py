"""The callbacks of a training run."""

import csv
import io
import math
import pathlib
import re
import shutil
import time

import keras
import numpy as np

from fer_common import files
from fer_common import signals
from fer_common.contract import RunDir

MONITOR = 'val_accuracy'


def weights_finite(model: keras.Model) -> bool:
  """Whether every weight of `model` is finite: nothing else may be checkpointed."""
  return all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in model.weights)


def save_model(model: keras.Model, path: pathlib.Path) -> None:
  """model.save(path), the file appearing whole or not at all."""
  with files.replaced(path, suffix='.keras') as temp:
    model.save(temp)


class BestCheckpoint(keras.callbacks.Callback):
  """Saves the model at each epoch that beats the best val_accuracy so far (the run's
  model), like ModelCheckpoint(save_best_only=True), but whole or not at all and never
  from non-finite weights."""

  def __init__(self, path: pathlib.Path, best: float = -math.inf):
    super().__init__()
    self._path, self.best = path, best

  def on_epoch_end(self, epoch, logs=None):
    value = (logs or {}).get(MONITOR)
    if value is None or not value > self.best or not weights_finite(self.model):
      return
    self.best = float(value)
    save_model(self.model, self._path)


class ResumableBackup(keras.callbacks.BackupAndRestore):
  """BackupAndRestore whose backups survive any kill: each epoch's state goes to its own
  file, written whole or not at all (the epoch in its name, no separate metadata), and
  the previous one is kept until the next is safely on disk. On start it resumes from the
  newest backup that loads; a damaged one is reported and discarded. Nothing is saved
  from non-finite weights, and nothing is deleted at the end of training: `delete()`
  does that once the run's final files are on disk."""

  _PATTERN = re.compile(r'epoch-(\d+)\.weights\.h5$')

  def __init__(self, backup_dir: pathlib.Path, log=print):
    super().__init__(str(backup_dir), delete_checkpoint=False)
    self._folder, self._log = pathlib.Path(backup_dir), log

  def backups(self) -> list[tuple[int, pathlib.Path]]:
    """(epochs done, file) of every backup, newest first."""
    found = ((self._PATTERN.search(p.name), p) for p in self._folder.glob('epoch-*'))
    return sorted(((int(m.group(1)), p) for m, p in found if m), reverse=True)

  def on_train_begin(self, logs=None):
    for left in files.clean_leftovers(self._folder):
      self._log(f'Removed {left}, a backup that a kill interrupted.')
    for epoch, path in self.backups():
      if self.model.optimizer is not None and not self.model.optimizer.built:
        self.model.optimizer.build(self.model.trainable_variables)
      try:
        self.model.load_weights(path)
      except Exception as e:  # h5py and Keras raise many types for a damaged file
        self._log(f'The backup {path} is damaged ({type(e).__name__}); discarded.')
        path.unlink()
        continue
      self.model._initial_epoch = epoch  # what BackupAndRestore sets: fit() resumes here
      self._log(f'Resuming after epoch {epoch} from {path}.')
      return
    if self._folder.exists() and not self.backups():
      self._log('No usable backup: training starts from epoch 1.')

  def _save_model(self):
    if not weights_finite(self.model):
      return
    path = self._folder / f'epoch-{self._current_epoch:04d}.weights.h5'
    with files.replaced(path, suffix='.weights.h5') as temp:
      self.model.save_weights(temp)
    for _, older in self.backups()[2:]:
      older.unlink()

  def delete(self) -> None:
    """Removes the backups (call once everything they protect is on disk)."""
    shutil.rmtree(self._folder, ignore_errors=True)


class EpochHistory(keras.callbacks.Callback):
  """history.csv, one row per epoch: an epoch trained again after a resume replaces its
  earlier row instead of adding a second, and the file is rewritten whole each epoch."""

  def __init__(self, path: pathlib.Path):
    super().__init__()
    self._path = path

  def on_epoch_end(self, epoch, logs=None):
    rows = {}
    if self._path.exists():
      with open(self._path) as f:
        rows = {int(row['epoch']): row for row in csv.DictReader(f)}
    rows = {e: row for e, row in rows.items() if e < epoch}
    rows[epoch] = {'epoch': epoch, **{k: float(v) for k, v in (logs or {}).items()}}
    columns = list(dict.fromkeys(k for row in rows.values() for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns)
    writer.writeheader()
    writer.writerows(rows[e] for e in sorted(rows))
    files.write_text(self._path, out.getvalue())


class TrainingDivergedError(RuntimeError):
  """The loss became NaN or infinite."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
  """Stops training at the first non-finite batch loss; check() after fit() then raises.
  Keras's TerminateOnNaN stops too, but leaves nothing to tell the stop from the end of
  the schedule.

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


class StopOnSignal(keras.callbacks.Callback):
  """Ends training at the next batch after SIGTERM or Ctrl-C whose KeyboardInterrupt
  Python swallowed (one that lands in a `__del__`; see fer_common.signals)."""

  def on_train_batch_end(self, batch, logs=None):
    signals.raise_if_stopped()


class LogLearningRate(keras.callbacks.Callback):
  """Adds the optimiser's current learning rate to each epoch's logs (history.csv). Keras
  logs it only from ReduceLROnPlateau, LearningRateScheduler and TensorBoard, so a
  cosine schedule without TensorBoard (--arrays) would leave it out."""

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
          ) -> tuple[list[keras.callbacks.Callback], StopOnNonFiniteLoss, ResumableBackup]:
  """Returns the callbacks, the NaN guard among them to check() after fit(), and the
  backup among them to delete() once the run's final files are on disk.

  progress_batch_size: add a ProgressLog for batches of this size (None: no log).
  tensorboard: write TensorBoard logs (the callback needs TensorFlow installed).
  keep_best: checkpoint the epoch of the best validation accuracy (the run's model);
    False where the validation split is trained on and the last epoch is the model.
  """
  nan_guard = StopOnNonFiniteLoss(
      (f'The best finite epoch so far is kept in {run.best}' if keep_best else
       'The run trains on the validation split, so it keeps no best-epoch model')
      + f', and the last finite epoch\'s resume state in {run.backup}/.')
  result = [nan_guard, StopOnSignal(), LogLearningRate()]
  if keep_best:
    result.append(BestCheckpoint(run.best, best_recorded(run.history)))
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
    result.append(EpochHistory(run.history))
  # Last, so that everything above has seen an epoch before it is saved for resumption.
  backup = ResumableBackup(run.backup)
  result.append(backup)
  return result, nan_guard, backup
