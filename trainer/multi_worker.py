"""Training on several machines: fit()'s work as a custom step under
MultiWorkerMirroredStrategy.

Keras 3's fit() does not run under MultiWorkerMirroredStrategy (keras-team/keras#20585):
its build step and its metric reduction fail on values distributed across workers. This
loop does what fit() does with the same compiled model: each replica runs the forward
pass, `model.compute_loss` (the compiled loss, class weights as sample weights, scaled
for the replicas as fit() scales it), `optimizer.scale_loss` and `apply_gradients`, whose
all-reduce keeps every worker's weights identical; the epoch's metrics are reduced across
workers, so every worker hands the same logs to the same Keras callbacks and they take
the same decisions (learning-rate drops, early stopping).

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
import numpy as np
import tensorflow as tf

from trainer import callbacks as callbacks_lib
from trainer import recipe


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


class WorkerLostError(RuntimeError):
  """Another worker of the run stopped; every worker must be started again."""


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


def _sample_weights(labels: tf.Tensor, class_weight: dict[int, float] | None):
  """fit()'s class_weight as sample weights: the weight of each example's (argmax) class."""
  if not class_weight:
    return None
  table = tf.constant(recipe.class_weight_table(class_weight, labels.shape[-1]),
                      labels.dtype)
  return tf.gather(table, tf.argmax(labels, axis=-1))


def _correct(labels: tf.Tensor, predictions: tf.Tensor) -> tf.Tensor:
  return tf.reduce_sum(tf.cast(
      tf.equal(tf.argmax(labels, -1), tf.argmax(predictions, -1)), tf.float32))


class _Steps:
  """The compiled training and evaluation steps of `model` under `strategy`."""

  def __init__(self, strategy: tf.distribute.Strategy, model: keras.Model,
               class_weight: dict[int, float] | None):
    self._strategy, self._model, self._class_weight = strategy, model, class_weight

  def _replica_train_step(self, images, labels):
    model = self._model
    with tf.GradientTape() as tape:
      predictions = model(images, training=True)
      loss = model.compute_loss(images, labels, predictions,
                                _sample_weights(labels, self._class_weight))
      scaled = model.optimizer.scale_loss(loss)
    gradients = tape.gradient(scaled, model.trainable_variables)
    model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    # The loss is this replica's share of the global batch's mean: summed, the mean.
    return (tf.cast(loss, tf.float32), _correct(labels, predictions),
            tf.cast(tf.shape(labels)[0], tf.float32))

  @tf.function
  def train(self, iterator, steps: tf.Tensor):
    """Runs `steps` training steps; returns (the sum of their mean losses, correct
    predictions, examples)."""
    totals = (tf.constant(0.0),) * 3
    for _ in tf.range(steps):
      results = self._strategy.run(self._replica_train_step, args=next(iterator))
      totals = tuple(total + self._strategy.reduce('SUM', value, axis=None)
                     for total, value in zip(totals, results))
    return totals

  def _replica_evaluate_step(self, images, labels):
    count = tf.cast(tf.shape(labels)[0], tf.float32)

    def evaluate():
      predictions = self._model(images, training=False)
      # compute_loss is the batch's mean divided by the replicas.
      loss = self._model.compute_loss(images, labels, predictions, training=False)
      return (tf.cast(loss, tf.float32) * count * self._strategy.num_replicas_in_sync,
              _correct(labels, predictions))

    # A replica's share of the last batch may be empty; BatchNorm fails on it.
    loss, correct = tf.cond(count > 0, evaluate, lambda: (0.0, 0.0))
    return loss, correct, count

  @tf.function
  def evaluate(self, batch):
    """(summed loss, correct predictions, examples) of one distributed batch."""
    results = self._strategy.run(self._replica_evaluate_step, args=batch)
    return tuple(self._strategy.reduce('SUM', value, axis=None) for value in results)


def fit(strategy: tf.distribute.Strategy, model: keras.Model, train_data: tf.data.Dataset,
        validation_data: tf.data.Dataset, *, epochs: int, steps_per_epoch: int,
        steps_per_execution: int, callbacks: list[keras.callbacks.Callback],
        backup: CheckpointBackup, class_weight: dict[int, float] | None = None,
        verbose: int = 2) -> None:
  """Trains the compiled `model` (created under `strategy.scope()`) like
  `model.fit(train_data, validation_data=..., epochs=..., steps_per_epoch=...,
  class_weight=..., callbacks=...)`, resuming from `backup` and saving it every epoch.

  train_data and validation_data are batched with the global batch size; each worker
  takes its replicas' share of every batch (AutoShardPolicy.DATA), so every worker must
  build them identically, the training data in a deterministic order.
  """
  with strategy.scope():
    model.optimizer.build(model.trainable_variables)
  initial_epoch = backup.restore(model)
  steps = _Steps(strategy, model, class_weight)
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
      totals = np.zeros(3)  # summed mean losses, correct predictions, examples
      done = 0
      while done < steps_per_epoch and not model.stop_training:
        run = min(steps_per_execution, steps_per_epoch - done)
        callback_list.on_train_batch_begin(done)
        totals += [float(value) for value in steps.train(iterator, tf.constant(run))]
        done += run
        logs = {'loss': totals[0] / done, 'accuracy': totals[1] / totals[2]}
        callback_list.on_train_batch_end(done - 1, logs)
      logs.update(_evaluate(steps, validation))
      callback_list.on_epoch_end(epoch, logs)
      if callbacks_lib.weights_finite(model):
        backup.save(epoch + 1)
      if model.stop_training:
        break
    callback_list.on_train_end()
  except _PEER_ERRORS as e:
    raise WorkerLostError(
        f'another worker stopped or cannot be reached ({e.message.splitlines()[0]}). '
        'Start every worker again with the same command: they resume after the last '
        f'epoch that all of them finished (in {backup.chief_folder}).') from None


def _evaluate(steps: _Steps, validation) -> dict[str, float]:
  loss = correct = count = 0.0
  for batch in validation:
    batch_loss, batch_correct, batch_count = steps.evaluate(batch)
    loss, correct, count = (loss + float(batch_loss), correct + float(batch_correct),
                            count + float(batch_count))
  return {'val_loss': loss / count, 'val_accuracy': correct / count}
