"""TFDS's own builder checks (features, splits, determinism) on fer_tfds/fer_emotions/dummy_data."""

import tensorflow_datasets as tfds

from fer_tfds.fer_emotions import dummy_data_generation as dummy
from fer_tfds.fer_emotions import fer_emotions_dataset_builder
from fer_tfds.fer_emotions import splits


def _expected_splits(classes_per_source: dict[int, int]) -> dict[str, int]:
  """Split sizes when `classes_per_source[n]` classes each have n images."""
  totals = [0, 0, 0]
  for n, n_classes in classes_per_source.items():
    for i, size in enumerate(splits.split_sizes(n)):
      totals[i] += n_classes * size
  return dict(zip(splits.SPLITS, totals))


_FER_N = sum(dummy.FER_PER_CLASS)
_CK_N = dummy.CKPLUS_PER_CLASS


class Fer5CkTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = fer_emotions_dataset_builder.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ['fer5_ck', 'fer5_ck_dedup']
  SPLITS = _expected_splits({_FER_N: 5, _CK_N: 4})


class Fer5Test(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = fer_emotions_dataset_builder.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ['fer5']
  SPLITS = _expected_splits({_FER_N: 5})


class Fer7CkTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = fer_emotions_dataset_builder.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ['fer7_ck']
  SPLITS = _expected_splits({_FER_N: 7, _CK_N: 6})


if __name__ == '__main__':
  tfds.testing.test_main()
