"""Precision policy, tf.distribute strategy and this process's place in a cluster.

TensorFlow is imported only where a function needs it: training from numpy arrays under
JAX (no TensorFlow installed) uses `set_precision` alone.
"""

import os

import keras

from fer_common import machine


class WorkerLostError(RuntimeError):
  """Another worker of the run stopped; every worker must be started again."""


def _has_gpu() -> bool:
  if keras.config.backend() == 'tensorflow':
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    # Physical devices only: listing logical ones would start TensorFlow's runtime, after
    # which MultiWorkerMirroredStrategy can no longer be created.
    return bool(tf.config.list_physical_devices('GPU'))
  return any(d.lower().startswith(('gpu', 'cuda')) for d in keras.distribution.list_devices())


def auto_precision() -> str:
  """The dtype policy of --precision=auto: mixed_bfloat16 on a GPU (bfloat16 needs no loss
  scaling) and, under TensorFlow, on a CPU with AMX, whose bfloat16 tile unit trains
  faster at the same accuracy (BENCHMARKS.md); float32 on other CPUs, where mixed
  precision trained no faster, even with AVX512_BF16."""
  if _has_gpu():
    return 'mixed_bfloat16'
  amx = machine.cpu_flags(('amx_bf16',)) == 'amx_bf16'
  return 'mixed_bfloat16' if amx and keras.config.backend() == 'tensorflow' else 'float32'


def set_precision(precision: str) -> str:
  """Sets the global Keras dtype policy for `precision` ('auto': `auto_precision`) and
  returns its name."""
  policy = precision if precision != 'auto' else auto_precision()
  keras.mixed_precision.set_global_policy(policy)
  return policy


def make_strategy(distribution: str):
  """Returns the tf.distribute strategy named by `distribution` ('auto' resolved).

  Raises:
    ValueError: multi_worker without a TF_CONFIG environment variable.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
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


def _task() -> tuple[str | None, int, list[str]]:
  """(task type, task index, job names) that TF_CONFIG gives this process ((None, 0,
  []) without TF_CONFIG), read by TensorFlow's TFConfigClusterResolver."""
  if not os.environ.get('TF_CONFIG'):
    return None, 0, []
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
  return resolver.task_type, resolver.task_id or 0, resolver.cluster_spec().jobs


def is_chief() -> bool:
  """True unless TF_CONFIG names this process a non-chief worker (a cluster with a
  'chief' job: that task; else worker 0)."""
  task_type, index, jobs = _task()
  if task_type is None:
    return True
  if 'chief' in jobs:
    return task_type == 'chief'
  return task_type == 'worker' and index == 0


def worker_index() -> int:
  """This process's task index in TF_CONFIG (0 without one)."""
  return _task()[1]
