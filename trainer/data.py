"""The tf.data input pipeline: tfds.load -> cache -> shuffle -> batch -> [augment] -> prefetch.

No Python runs per example: decoding, normalisation and augmentation are TensorFlow ops.
"""

from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from fer_common import contract
from fer_tfds import built

AUTOTUNE = tf.data.AUTOTUNE


def builder(dataset: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
  """Returns the built fer_emotions/<dataset> builder, every record of it checked.

  Raises:
    contract.DatasetNotBuiltError: with the command that builds it.
    contract.DatasetDamagedError: naming the damaged file, with the commands that
      rebuild it.
  """
  result = built.builder(dataset, data_dir)
  check_intact(result, dataset, data_dir)
  return result


def check_intact(dataset_builder: tfds.core.DatasetBuilder, dataset: str,
                 data_dir: str | None) -> None:
  """Reads every record of the built dataset once, so that TFRecord's checksums name a
  damaged file before training starts (a second or two for fer5_ck) rather than in the
  middle of an epoch.

  Raises:
    contract.DatasetDamagedError: naming the file, with the commands that rebuild the
      dataset.
  """
  for path in sorted(str(p) for p in dataset_builder.data_path.glob('*.tfrecord*')):
    try:
      for _ in tf.data.TFRecordDataset(path).batch(4096):
        pass
    except tf.errors.DataLossError as e:
      raise contract.DatasetDamagedError(
          f'the dataset {contract.DATASET}/{dataset} is damaged: {path} does not read '
          f'back as written ({e.message.splitlines()[0][:120]}). Build it again: rm -r '
          f'{dataset_builder.data_path} && {contract.build_command(dataset, data_dir)}'
      ) from None


def class_counts(dataset_builder: tfds.core.DatasetBuilder, split: str) -> list[int]:
  """Examples of each class in `split`, in label order (the images are not decoded)."""
  ds = dataset_builder.as_dataset(split=split,
                                  decoders={'image': tfds.decode.SkipDecoding()})
  labels = np.fromiter((example['label'] for example in tfds.as_numpy(ds)), np.int64)
  return np.bincount(labels, minlength=len(class_names(dataset_builder))).tolist()


def class_names(dataset_builder: tfds.core.DatasetBuilder) -> list[str]:
  """Label names in output order, as the dataset defines them."""
  return list(dataset_builder.info.features['label'].names)


def pipeline(
    dataset_builder: tfds.core.DatasetBuilder,
    split: str,
    batch_size: int,
    training: bool,
    seed: int = 0,
    shuffle_buffer: int = 25_000,
    augment: Callable[[tf.Tensor], tf.Tensor] | None = None,
    mix: Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]] | None = None,
    limit: int | None = None,
    targets: np.ndarray | None = None,
    keep_order: bool = False,
) -> tf.data.Dataset:
  """Batches of (normalised float32 images, one-hot labels or `targets`) from one split.

  Args:
    dataset_builder: a built fer_emotions builder.
    split: 'train', 'validation', 'test' or several joined by '+' (TFDS split syntax).
    batch_size: global batch size; training drops the last partial batch.
    training: cache, repeat forever (fit() needs steps_per_epoch), shuffle, and drop
      the remainder.
    seed: shuffle seed.
    shuffle_buffer: shuffle buffer size.
    augment: applied to each batch after batch(), before prefetch; cache() comes first,
      so every epoch sees fresh augmentations.
    mix: applied to (images, one-hot labels or targets) batches after `augment` (MixUp).
    limit: keep only the first `limit` examples.
    targets: (examples of the split, classes) rows of class probabilities, in split
      order, used instead of the one-hot labels (distillation); None: one-hot labels.
    keep_order: training batches keep their seeded order, as every worker of a
      multi-worker run needs (each takes its share of the same global batch).
  """
  num_classes = dataset_builder.info.features['label'].num_classes
  # TFDS would cache small splits itself; the cache below is ours, placed where a
  # partial read (take(limit), a smoke run's few steps) cannot truncate it.
  ds = dataset_builder.as_dataset(split=split, as_supervised=True,
                                  read_config=tfds.ReadConfig(try_autocache=False))
  if targets is not None:
    expected = (dataset_builder.info.splits[split].num_examples, num_classes)
    if targets.shape != expected:
      raise ValueError(f'targets for the {split} split must have shape {expected}, '
                       f'not {targets.shape}.')
    ds = tf.data.Dataset.zip(ds.map(lambda image, _: image),
                             tf.data.Dataset.from_tensor_slices(targets))
  if limit:
    ds = ds.take(limit)
  if training:
    # Only the training split is cached, and repeated right after: the cache is complete
    # once the first pass ends, whether or not an epoch stops mid-way through the data.
    # An evaluation pass that stopped early could leave a truncated cache behind.
    ds = ds.cache().repeat()
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
  ds = ds.batch(batch_size, drop_remainder=training)

  def to_model_input(images, labels):
    images = contract.normalise(tf.cast(images, tf.float32))
    if augment is not None:
      images = augment(images)
    if targets is None:
      labels = tf.one_hot(labels, num_classes)
    return mix(images, labels) if mix is not None else (images, labels)

  ds = ds.map(to_model_input, num_parallel_calls=AUTOTUNE)
  options = tf.data.Options()
  # The TFRecords are a single file per split: shard by example across workers.
  options.experimental_distribute.auto_shard_policy = (
      tf.data.experimental.AutoShardPolicy.DATA)
  # Targets are paired with images by position, which only holds if the reads and the
  # parallel decoding keep the split's order; training otherwise trades order for speed.
  options.deterministic = not training or targets is not None or keep_order
  return ds.with_options(options).prefetch(AUTOTUNE)


def evaluation_pipelines(dataset_builder: tfds.core.DatasetBuilder, batch_size: int,
                         limit: int | None = None) -> dict[str, tf.data.Dataset]:
  """Un-augmented, unshuffled pipelines of every split, for validation and reports."""
  return {split: pipeline(dataset_builder, split, batch_size, training=False, limit=limit)
          for split in contract.SPLITS}
