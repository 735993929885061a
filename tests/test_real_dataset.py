"""Integration: builds fer_emotions/fer5_ck from the real Kaggle archives in ../shared/data."""

import collections

import tensorflow_datasets as tfds

from conftest import requires_real_data
from conftest import SHARED_DATA
from fer_tfds import build

# The study's split of the FER-2013 part: class -> (train, validation, test).
STUDY_FER2013_SPLIT = {
    'angry': (3467, 742, 744),
    'fearful': (3584, 768, 769),
    'happy': (6292, 1348, 1349),
    'neutral': (4338, 929, 931),
    'sad': (4253, 911, 913),
}


def _file_names_by_split(builder):
  return {
      split: sorted(
          ex['file_name'] for ex in tfds.as_numpy(builder.as_dataset(
              split=split, decoders={'image': tfds.decode.SkipDecoding()})))
      for split in ('train', 'validation', 'test')
  }


@requires_real_data
def test_fer2013_part_reproduces_the_study_split_exactly(real_data_dir):
  builder = tfds.builder('fer_emotions/fer5_ck', data_dir=real_data_dir)
  names = builder.info.features['label'].names
  counts = collections.Counter()
  for i, split in enumerate(('train', 'validation', 'test')):
    for ex in tfds.as_numpy(builder.as_dataset(
        split=split, decoders={'image': tfds.decode.SkipDecoding()})):
      counts[names[ex['label']], ex['source'], i] += 1
  fer2013 = builder.info.features['source'].str2int('fer2013')
  got = {c: tuple(counts[c, fer2013, i] for i in range(3)) for c in names}
  assert got == STUDY_FER2013_SPLIT
  ckplus = builder.info.features['source'].str2int('ckplus')
  assert sum(counts[c, ckplus, i] for c in names for i in range(3)) == 135 + 75 + 207 + 84


@requires_real_data
def test_a_second_build_gives_the_identical_split(real_data_dir, tmp_path):
  first = tfds.builder('fer_emotions/fer5_ck', data_dir=real_data_dir)
  second = build.build('fer5_ck', str(SHARED_DATA), str(tmp_path))
  assert _file_names_by_split(first) == _file_names_by_split(second)
