"""fer_tfds on generated archives: both archive forms, bad input, duplicates, the split rule."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import REPO
from fer_tfds import build
from fer_tfds.fer_emotions import archives
from fer_tfds.fer_emotions import dummy_data_generation as dummy
from fer_tfds.fer_emotions import splits


def _examples(builder, split):
  return {
      ex['file_name'].decode(): (ex['label'], ex['image'].tobytes())
      for ex in tfds.as_numpy(builder.as_dataset(split=split))
  }


def test_zip_and_folder_forms_give_the_same_dataset(tmp_path):
  from_zip = build.build('fer5_ck', str(dummy.write_archives(tmp_path / 'z', 'zip')),
                         str(tmp_path / 'tz'))
  from_folder = build.build('fer5_ck', str(dummy.write_archives(tmp_path / 'f', 'folder')),
                            str(tmp_path / 'tf'))
  for split in splits.SPLITS:
    assert _examples(from_zip, split) == _examples(from_folder, split)


def test_examples_trace_back_to_their_file(tiny_data_dir):
  builder = tfds.builder('fer_emotions/fer5_ck', data_dir=tiny_data_dir)
  contents = dummy.archive_contents()
  labels = builder.info.features['label'].names
  assert labels == ['angry', 'fearful', 'happy', 'neutral', 'sad']
  for name, (label, _) in _examples(builder, 'train').items():
    source, path = name.split('/', 1)
    assert path in contents[source]
    folder = path.split('/')[1]
    assert labels[label] == {'fear': 'fearful', 'anger': 'angry', 'sadness': 'sad'}.get(
        folder, folder)


def test_split_rule_is_stratified_deterministic_and_seeded():
  items = [(('fer2013', c), f'fer2013/train/{c}/{i}.jpg') for c in 'ab' for i in range(101)]
  first = splits.assign(items, seed=1)
  assert first == splits.assign(list(reversed(items)), seed=1)
  for c in 'ab':
    got = [first[p] for (_, cls), p in items if cls == c]
    assert [got.count(s) for s in splits.SPLITS] == [70, 15, 16]
  assert first != splits.assign(items, seed=2)


def test_missing_archive_names_the_searched_paths(tmp_path):
  contents = dummy.archive_contents()
  del contents['fer2013']
  manual = dummy.write_archives(tmp_path / 'manual', 'zip', contents)
  with pytest.raises(archives.ArchiveError) as error:
    build.build('fer5', str(manual), str(tmp_path / 'tfds'))
  assert str(manual / 'fer2013.zip') in str(error.value)
  assert 'kaggle.com/datasets/msambare/fer2013' in str(error.value)


@pytest.mark.parametrize('manual', ['nowhere', 'empty'])
def test_missing_or_empty_manual_dir_is_one_line_naming_the_paths(tmp_path, manual):
  (tmp_path / 'empty').mkdir()
  result = subprocess.run(
      [sys.executable, '-m', 'fer_tfds.build', f'--manual_dir={tmp_path / manual}',
       '--config=fer5', f'--data_dir={tmp_path / "tfds"}'],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert 'Traceback' not in result.stderr and '--manual_dir' not in result.stderr
  (line,) = [l for l in result.stderr.splitlines() if l.startswith('error:')]
  assert str(tmp_path / manual / 'fer2013.zip') in line
  assert str(tmp_path / manual / 'fer2013') in line


def test_an_interrupted_build_is_cleaned_up_by_the_next(tmp_path):
  manual = dummy.write_archives(tmp_path / 'manual', 'zip')
  leftover = tmp_path / 'tfds' / 'fer_emotions' / 'fer5' / 'incomplete.ABC123_1.0.0'
  leftover.mkdir(parents=True)
  (leftover / 'fer_emotions-train.tfrecord-00000-of-00001').write_bytes(b'half')
  build.build('fer5', str(manual), str(tmp_path / 'tfds'))
  assert not leftover.exists()


def test_wrong_layout_says_which_folders_were_expected(tmp_path):
  contents = dummy.archive_contents()
  contents['fer2013'] = {f'images/{p}': d for p, d in contents['fer2013'].items()}
  manual = dummy.write_archives(tmp_path / 'manual', 'zip', contents)
  with pytest.raises(archives.ArchiveError, match=r'\{train,test\}/<class>/.*found images/'):
    build.build('fer5', str(manual), str(tmp_path / 'tfds'))


def test_corrupt_image_fails_the_build_naming_it_and_leaves_nothing_loadable(tmp_path):
  contents = dummy.archive_contents()
  contents['fer2013']['train/happy/Training_00001.jpg'] = b'not a jpeg'
  manual = dummy.write_archives(tmp_path / 'manual', 'folder', contents)
  with pytest.raises(archives.CorruptImageError, match='train/happy/Training_00001.jpg'):
    build.build('fer5', str(manual), str(tmp_path / 'tfds'))
  builder = tfds.builder('fer_emotions/fer5', data_dir=tmp_path / 'tfds')
  assert not builder.is_prepared()
  with pytest.raises(AssertionError, match='not built|not found|download_and_prepare'):
    builder.as_dataset(split='train')


def test_corrupt_image_is_skipped_and_counted_only_when_asked(tmp_path):
  contents = dummy.archive_contents()
  contents['fer2013']['train/happy/Training_00001.jpg'] = b'not a jpeg'
  manual = dummy.write_archives(tmp_path / 'manual', 'zip', contents)
  builder = build.build('fer5', str(manual), str(tmp_path / 'tfds'), skip_corrupt_images=True)
  assert builder.info.metadata['skipped_corrupt_images'] == 1
  total = sum(split.num_examples for split in builder.info.splits.values())
  assert total == 5 * sum(dummy.FER_PER_CLASS) - 1


def test_cross_split_duplicates_are_counted_and_dropped_only_by_the_dedup_config(tmp_path):
  contents = dummy.archive_contents()
  copy = contents['fer2013']['train/sad/Training_00000.jpg']
  for i in range(10):
    contents['fer2013'][f'test/sad/PrivateTest_copy{i}.jpg'] = copy
  manual = str(dummy.write_archives(tmp_path / 'manual', 'zip', contents))
  kept = build.build('fer5_ck', manual, str(tmp_path / 'tfds'))
  dropped = build.build('fer5_ck_dedup', manual, str(tmp_path / 'tfds'))
  n_duplicates = kept.info.metadata['cross_split_duplicates']
  assert n_duplicates > 0
  size = lambda b: sum(s.num_examples for s in b.info.splits.values())
  assert size(dropped) == size(kept) - n_duplicates
  seen = set()
  for split in splits.SPLITS:
    digests = {hashlib.sha1(img).digest() for _, img in _examples(dropped, split).values()}
    assert not digests & seen
    seen |= digests


def test_decode_rejects_images_that_are_not_48x48():
  big = dummy.encode(np.zeros((64, 64), np.uint8), 'PNG')
  with pytest.raises(archives.CorruptImageError, match='64x64, expected 48x48'):
    archives.decode(archives.ArchiveFile('ckplus', 'CK+48/happy/x.png', 'happy', big))


def test_the_tfds_command_line_tool_builds_it_too(tmp_path):
  """`tfds build fer_tfds/fer_emotions --manual_dir=...` (the tfds-cli extra)."""
  manual = dummy.write_archives(tmp_path / 'manual', 'zip')
  result = subprocess.run(
      [sys.executable, '-m', 'tensorflow_datasets.scripts.cli.main', 'build',
       'fer_tfds/fer_emotions', f'--manual_dir={manual}', f'--data_dir={tmp_path / "tfds"}',
       '--config=fer5'], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  builder = tfds.builder('fer_emotions/fer5', data_dir=tmp_path / 'tfds')
  assert builder.info.splits['train'].num_examples == 5 * splits.split_sizes(
      sum(dummy.FER_PER_CLASS))[0]
