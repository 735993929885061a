"""Training on several machines: fit()'s work as a custom step under
MultiWorkerMirroredStrategy.

Keras 3's fit() does not run under MultiWorkerMirroredStrategy (keras-team/keras#20585):
its build step and its metric reduction fail on values distributed across workers. This
loop runs the compiled model's own `train_step` and `test_step` on every replica (the
compiled loss and metrics, the example weights, the optimiser's all-reduce, which keeps
every worker's weights identical) and reads the compiled metrics across workers, so that
every worker hands the same logs to the same Keras callbacks and they take the same
decisions (learning-rate drops, early stopping). A metric added to the compiled model
is in the logs here as in fit().

Resumption uses TensorFlow's checkpoints (`tf.train.CheckpointManager`, written whole or
not at all): every worker saves after every epoch, the chief into the run dir and the
others into their own folders, and on a restart every worker restores the chief's latest
checkpoint, so that all of them start from the same state.
"""

import json
import pathlib
import shutil
import socket

import keras
import tensorflow as tf

from trainer import callbacks as callbacks_lib
from trainer import devices


# What a worker sees when another worker of the run stopped or cannot be reached.
_PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.AbortedError,
                tf.errors.DeadlineExceededError)


def local_cluster(workers: int) -> list[str]:
  """TF_CONFIG values for `workers` worker processes on this machine (127.0.0.1, ports
  free now), index 0 the chief: multi-worker training tried on one machine."""
  sockets = [socket.socket() for _ in range(workers)]
  for s in sockets:
    s.bind(('127.0.0.1', 0))
  addresses = [f'127.0.0.1:{s.getsockname()[1]}' for s in sockets]
  for s in sockets:
    s.close()
  return [json.dumps({'cluster': {'worker': addresses},
                      'task': {'type': 'worker', 'index': index}})
          for index in range(workers)]


class CheckpointBackup:
  """The resume state of a multi-worker run: model, optimiser and epochs done.

  Args:
    folder: where this worker writes its checkpoints.
    chief_folder: the chief's folder, which every worker restores from (the run dir must
      be on storage that every worker reaches).
  """

  def __init__(self, folder: pathlib.Path, chief_folder: pathlib.Path):
    self._folder, self._chief_folder = pathlib.Path(folder), pathlib.Path(chief_folder)
    self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name='epochs_done')
    self._manager = None

  @property
  def chief_folder(self) -> pathlib.Path:
    """The checkpoints that every worker resumes from."""
    return self._chief_folder

  def restore(self, model: keras.Model, log=print) -> int:
    """Tracks `model` and its (built) optimiser, restores the chief's latest checkpoint if
    there is one, and returns the number of epochs it had done (0 without one)."""
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer,
                                     epochs_done=self._epoch)
    self._manager = tf.train.CheckpointManager(checkpoint, str(self._folder),
                                               max_to_keep=2)
    latest = tf.train.latest_checkpoint(str(self._chief_folder))
    if latest is None:
      return 0
    checkpoint.restore(latest).assert_existing_objects_matched()
    log(f'Resuming after epoch {int(self._epoch.numpy())} from {latest}.')
    return int(self._epoch.numpy())

  def save(self, epochs_done: int) -> None:
    """Saves the state after `epochs_done` epochs; every worker must call it."""
    self._epoch.assign(epochs_done)
    self._manager.save(checkpoint_number=epochs_done)

  def delete(self) -> None:
    """Removes the checkpoints (call once everything they protect is on disk)."""
    shutil.rmtree(self._folder, ignore_errors=True)


class _Steps:
  """Keras's own train_step and test_step of `model`, run on every replica of
  `strategy`; the compiled metrics (Keras keeps them as variables summed across
  replicas on read) read in cross-replica context, so every worker reads the same."""

  def __init__(self, strategy: tf.distribute.Strategy, model: keras.Model):
    self._strategy, self._model = strategy, model

  @tf.function
  def train(self, iterator, steps: tf.Tensor) -> None:
    """Runs `steps` training steps."""
    for _ in tf.range(steps):
      self._strategy.run(self._model.train_step, args=(next(iterator),))

  def _replica_test_step(self, batch):
    def test():
      self._model.test_step(batch)
      return tf.constant(True)

    # A replica's share of the last batch may be empty; BatchNorm fails on it.
    return tf.cond(tf.shape(tf.nest.flatten(batch)[0])[0] > 0, test,
                   lambda: tf.constant(False))

  @tf.function
  def evaluate(self, batch) -> None:
    """Adds one distributed batch to the compiled metrics."""
    self._strategy.run(self._replica_test_step, args=(batch,))

  @tf.function
  def results(self) -> dict:
    """The compiled metrics (loss, accuracy, ...) over every replica of every worker."""
    return self._model.get_metrics_result()


def fit(strategy: tf.distribute.Strategy, model: keras.Model, train_data: tf.data.Dataset,
        validation_data: tf.data.Dataset, *, epochs: int, steps_per_epoch: int,
        steps_per_execution: int, callbacks: list[keras.callbacks.Callback],
        backup: CheckpointBackup, verbose: int = 2) -> None:
  """Trains the compiled `model` (created under `strategy.scope()`) like
  `model.fit(train_data, validation_data=..., epochs=..., steps_per_epoch=...,
  callbacks=...)`, resuming from `backup` and saving it every epoch.

  train_data and validation_data are batched with the global batch size, as (images,
  targets) or (images, targets, example weights); each worker takes its replicas' share
  of every batch (AutoShardPolicy.DATA), so every worker must build them identically,
  the training data in a deterministic order.
  """
  with strategy.scope():
    model.optimizer.build(model.trainable_variables)
  initial_epoch = backup.restore(model)
  steps = _Steps(strategy, model)
  # The batches of the epochs done are skipped, so that a resumed run sees the batches
  # an uninterrupted one would have seen.
  iterator = iter(strategy.experimental_distribute_dataset(
      train_data.skip(initial_epoch * steps_per_epoch)))
  validation = strategy.experimental_distribute_dataset(validation_data)
  callback_list = keras.callbacks.CallbackList(
      callbacks, add_progbar=verbose != 0, model=model, verbose=verbose, epochs=epochs,
      steps=steps_per_epoch)
  model.stop_training = False
  try:
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
      callback_list.on_epoch_begin(epoch)
      model.reset_metrics()
      done = 0
      while done < steps_per_epoch and not model.stop_training:
        run = min(steps_per_execution, steps_per_epoch - done)
        callback_list.on_train_batch_begin(done)
        steps.train(iterator, tf.constant(run))
        done += run
        logs = _floats(steps.results())
        callback_list.on_train_batch_end(done - 1, logs)
      model.reset_metrics()
      for batch in validation:
        steps.evaluate(batch)
      logs.update({f'val_{name}': value for name, value in _floats(steps.results()).items()})
      callback_list.on_epoch_end(epoch, logs)
      if callbacks_lib.weights_finite(model):
        backup.save(epoch + 1)
      if model.stop_training:
        break
    callback_list.on_train_end()
  except _PEER_ERRORS as e:
    raise devices.WorkerLostError(
        f'another worker stopped or cannot be reached ({e.message.splitlines()[0]}). '
        'Start every worker again with the same command: they resume after the last '
        f'epoch that all of them finished (in {backup.chief_folder}).') from None


def _floats(results: dict) -> dict[str, float]:
  return {name: float(value) for name, value in results.items()}
