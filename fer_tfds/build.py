"""Builds the fer_emotions dataset without the `tfds` command-line tool.

  python -m fer_tfds.build --manual_dir=../shared/data [--config=fer5_ck] [--data_dir=...]

Same result as `tfds build fer_tfds/fer_emotions --manual_dir=...`, but needs no
apache_beam, exposes the builder's own options, checks the archives before TFDS starts
and removes what an interrupted build left behind.
"""

import shutil
import sys

from absl import app
from absl import flags
from etils import epath
import tensorflow_datasets as tfds

from fer_common import contract
from fer_common import files
from fer_common import locks
from fer_common import signals
from fer_tfds import fer_emotions
from fer_tfds.fer_emotions import archives

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags of the build."""
  flags.DEFINE_string('manual_dir', None, 'Folder holding fer2013.zip and ckplus.zip (or '
                      'their extracted folders fer2013/ and ckplus/).', required=True)
  flags.DEFINE_multi_enum('config', [contract.DEFAULT_CONFIG], contract.DATASET_CONFIGS,
                          'Config(s) to build; repeat the flag for several.')
  flags.DEFINE_string('data_dir', None, 'TFDS data dir (default: $TFDS_DATA_DIR or '
                      '~/tensorflow_datasets).')
  flags.DEFINE_bool('skip_corrupt_images', False, 'Skip and count undecodable images '
                    'instead of failing.')


def remove_interrupted(builder: tfds.core.DatasetBuilder) -> list[str]:
  """Removes the `incomplete.*` folders that a killed build of `builder` left (TFDS
  renames its folder only when every split is written) and returns them."""
  parent = epath.Path(builder.data_dir).parent
  if not parent.exists():
    return []
  removed = [str(p) for p in parent.glob('incomplete.*') if p.is_dir()]
  for folder in removed:
    shutil.rmtree(folder)
  return removed


def build(config: str, manual_dir: str, data_dir: str | None = None,
          skip_corrupt_images: bool = False) -> tfds.core.DatasetBuilder:
  """Builds one config of fer_emotions (a no-op if it is already built) and returns it.

  Raises:
    archives.ArchiveError: an archive the config needs is not in `manual_dir`; the
      message names the paths searched.
  """
  builder = fer_emotions.Builder(
      config=config, data_dir=data_dir, skip_corrupt_images=skip_corrupt_images)
  if builder.is_prepared():
    return builder
  for spec in builder.archives_needed():
    archives.locate(epath.Path(manual_dir), spec)
  for folder in remove_interrupted(builder):
    print(f'Removed {folder}, left by an interrupted build.')
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  signals.sigterm_as_interrupt()
  for config in FLAGS.config:
    where = tfds.builder(f'{contract.DATASET}/{config}', data_dir=FLAGS.data_dir).data_dir
    try:
      with locks.held(where, 'the dataset', FLAGS.wait_for_lock):
        builder = build(config, FLAGS.manual_dir, FLAGS.data_dir, FLAGS.skip_corrupt_images)
    except (archives.ArchiveError, archives.CorruptImageError, locks.LockedError) as e:
      sys.exit(f'error: {e}')
    except Exception as e:  # pylint: disable=broad-except  (only a full disk is expected)
      if not files.is_disk_full(e):
        raise
      sys.exit(f'error: no space left on the disk of {where}: free some space and run the '
               'same command again (it removes what this build left).')
    except KeyboardInterrupt:
      signals.stopped('the next build of the same config removes what this one left: '
                      'run the same command again.')
    print(f'{builder.info.full_name} ready in {builder.data_path}')
    for split, info in builder.info.splits.items():
      print(f'  {split:<10} {info.num_examples:>6} examples')


if __name__ == '__main__':
  define_flags()
  locks.define_wait_flag()
  flags.adopt_module_key_flags(locks)  # --help lists --wait_for_lock
  app.run(main)
