"""The built fer_emotions dataset: its builder, and a split as numpy arrays (the one
loader of the trainer's numpy path, trainer.dump_arrays, the export and the yardstick)."""

import numpy as np
import tensorflow_datasets as tfds

from fer_common import contract


def builder(dataset: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
  """The built fer_emotions/<dataset> builder.

  Raises:
    contract.DatasetNotBuiltError: with the command that builds it.
  """
  result = tfds.builder(f'{contract.DATASET}/{dataset}', data_dir=data_dir)
  if not result.is_prepared():
    raise contract.DatasetNotBuiltError(
        contract.not_built_message(dataset, result.data_dir, data_dir))
  return result


def split_arrays(dataset: str, split: str, data_dir: str | None = None,
                 source: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(uint8 images (N, 48, 48, 1), integer labels, source archive names) of a built
  split (TFDS split syntax: 'train', 'train+validation', 'test[:100]'), of one
  `source` archive if given.

  Raises:
    contract.DatasetNotBuiltError: with the command that builds it.
  """
  prepared = builder(dataset, data_dir)
  examples = tfds.as_numpy(prepared.as_dataset(split=split, batch_size=-1))
  names = np.array(prepared.info.features['source'].names)[examples['source']]
  keep = slice(None) if source is None else names == source
  return examples['image'][keep], examples['label'][keep], names[keep]
