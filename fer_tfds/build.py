"""Builds the fer_emotions dataset without the `tfds` command-line tool.

  python -m fer_tfds.build --manual_dir=../shared/data [--config=fer5_ck] [--data_dir=...]

Same result as `tfds build fer_tfds/fer_emotions --manual_dir=...`, but needs no
apache_beam and exposes the builder's own options.
"""

from absl import app
from absl import flags
import tensorflow_datasets as tfds

from fer_tfds import fer_emotions
from fer_tfds.fer_emotions import archives

_CONFIG_NAMES = [config.name for config in fer_emotions.Builder.BUILDER_CONFIGS]

_MANUAL_DIR = flags.DEFINE_string(
    'manual_dir', None, 'Folder holding fer2013.zip and ckplus.zip (or their extracted '
    'folders fer2013/ and ckplus/).', required=True)
_CONFIGS = flags.DEFINE_multi_enum(
    'config', ['fer5_ck'], _CONFIG_NAMES, 'Config(s) to build; repeat the flag for several.')
_DATA_DIR = flags.DEFINE_string(
    'data_dir', None, 'TFDS data dir (default: $TFDS_DATA_DIR or ~/tensorflow_datasets).')
_SKIP_CORRUPT = flags.DEFINE_bool(
    'skip_corrupt_images', False, 'Skip and count undecodable images instead of failing.')


def build(config: str, manual_dir: str, data_dir: str | None = None,
          skip_corrupt_images: bool = False) -> tfds.core.DatasetBuilder:
  """Builds one config of fer_emotions (a no-op if it is already built) and returns it."""
  builder = fer_emotions.Builder(
      config=config, data_dir=data_dir, skip_corrupt_images=skip_corrupt_images)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder


def main(argv):
  del argv
  for config in _CONFIGS.value:
    try:
      builder = build(config, _MANUAL_DIR.value, _DATA_DIR.value, _SKIP_CORRUPT.value)
    except (archives.ArchiveError, archives.CorruptImageError) as e:
      raise app.UsageError(str(e)) from None
    print(f'{builder.info.full_name} ready in {builder.data_path}')
    for split, info in builder.info.splits.items():
      print(f'  {split:<10} {info.num_examples:>6} examples')


if __name__ == '__main__':
  app.run(main)
