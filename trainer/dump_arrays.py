"""Writes a built fer_emotions config as one .npz of numpy arrays (trainer.arrays):

  python -m trainer.dump_arrays --dataset=fer5_ck --out=arrays/fer5_ck.npz.xz \
      [--splits=train,validation]

for `python -m trainer --arrays=...` on a machine without TensorFlow (docs/scaling.md).
"""

import pathlib
import sys

from absl import app
from absl import flags

from fer_common import contract
from trainer import arrays
from fer_tfds import built
from trainer import data

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags of the dump."""
  flags.DEFINE_enum('dataset', contract.DEFAULT_CONFIG, contract.DATASET_CONFIGS,
                    f'{contract.DATASET} config to write.')
  flags.DEFINE_string('data_dir', None, 'TFDS data dir (default: $TFDS_DATA_DIR or '
                      '~/tensorflow_datasets).')
  flags.DEFINE_string('out', None, 'The .npz file to write; a name ending in .xz is '
                      'LZMA-compressed (smaller, slower to write).', required=True)
  flags.DEFINE_list('splits', list(contract.SPLITS), 'Splits to write, of '
                    f'{",".join(contract.SPLITS)} (train and validation at least).')


def dump(dataset: str, data_dir: str | None, out: pathlib.Path,
         split_names: tuple[str, ...] = contract.SPLITS) -> dict[str, int]:
  """Writes `split_names` of `dataset` to `out`; returns {split: examples}."""
  by_split = {split: built.split_arrays(dataset, split, data_dir) for split in split_names}
  out.parent.mkdir(parents=True, exist_ok=True)
  arrays.save(out, by_split, data.class_names(data.builder(dataset, data_dir)), dataset)
  return {split: len(labels) for split, (_, labels, _) in by_split.items()}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  unknown = set(FLAGS.splits) - set(contract.SPLITS)
  missing = set(arrays.NEEDED_SPLITS) - set(FLAGS.splits)
  if unknown or missing:
    raise app.UsageError(f'--splits takes some of {",".join(contract.SPLITS)}, train and '
                         f'validation among them; got {",".join(FLAGS.splits)}.')
  out = pathlib.Path(FLAGS.out)
  try:
    counts = dump(FLAGS.dataset, FLAGS.data_dir, out, tuple(FLAGS.splits))
  except contract.DatasetNotBuiltError as e:
    sys.exit(f'error: {e}')
  print(f'Wrote {out} ({out.stat().st_size / 2**20:.1f} MiB): '
        + ', '.join(f'{split} {n}' for split, n in counts.items()) + ' examples.')


if __name__ == '__main__':
  define_flags()
  app.run(main)
