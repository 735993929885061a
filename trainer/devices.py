"""Precision policy and tf.distribute strategy selection."""

import json
import os

import keras
import tensorflow as tf

from fer_common import contract


def resolve_precision(precision: str) -> str:
  """Returns the Keras dtype policy name for `precision` ('auto' resolved)."""
  if precision != 'auto':
    return precision
  return contract.auto_precision(bool(tf.config.list_physical_devices('GPU')))


def set_precision(precision: str) -> str:
  """Sets the global Keras dtype policy and returns its name."""
  policy = resolve_precision(precision)
  keras.mixed_precision.set_global_policy(policy)
  return policy


def make_strategy(distribution: str) -> tf.distribute.Strategy:
  """Returns the tf.distribute strategy named by `distribution` ('auto' resolved).

  Raises:
    ValueError: multi_worker without a TF_CONFIG environment variable.
  """
  gpus = tf.config.list_physical_devices('GPU')
  if distribution == 'auto':
    if 'TF_CONFIG' in os.environ:
      distribution = 'multi_worker'
    else:
      distribution = 'mirrored' if len(gpus) > 1 else 'one_device'
  if distribution == 'one_device':
    return tf.distribute.OneDeviceStrategy('/gpu:0' if gpus else '/cpu:0')
  if distribution == 'mirrored':
    return tf.distribute.MirroredStrategy()
  if 'TF_CONFIG' not in os.environ:
    raise ValueError('--distribution=multi_worker needs the TF_CONFIG environment '
                     'variable (cluster and task), see docs/scaling.md.')
  return tf.distribute.MultiWorkerMirroredStrategy()


def _tf_config() -> dict:
  return json.loads(os.environ.get('TF_CONFIG', '{}'))


def is_chief() -> bool:
  """True unless TF_CONFIG names this process a non-chief worker."""
  config = _tf_config()
  task = config.get('task')
  if not task:
    return True
  if 'chief' in config.get('cluster', {}):
    return task.get('type') == 'chief'
  return task.get('type') == 'worker' and task.get('index', 0) == 0


def worker_index() -> int:
  """This process's task index in TF_CONFIG (0 without one)."""
  return _tf_config().get('task', {}).get('index', 0)
