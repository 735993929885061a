"""Writes a built fer_emotions config as one .npz of numpy arrays (trainer.arrays):

  python -m trainer.dump_arrays --dataset=fer5_ck --out=arrays/fer5_ck.npz.xz \
      [--splits=train,validation]

for `python -m trainer.array_fit` on a machine without TensorFlow (see README, "Training
on a GPU machine without TensorFlow").
"""

import pathlib
import sys

from absl import app
from absl import flags
import tensorflow_datasets as tfds

from fer_common import contract
from trainer import arrays
from trainer import data

_DATASET = flags.DEFINE_string('dataset', 'fer5_ck', 'fer_emotions config to write.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data dir (default: '
                                '$TFDS_DATA_DIR or ~/tensorflow_datasets).')
_OUT = flags.DEFINE_string('out', None, 'The .npz file to write; a name ending in .xz '
                           'is LZMA-compressed (smaller, slower to write).', required=True)
_SPLITS = flags.DEFINE_list('splits', list(contract.SPLITS), 'Splits to write, of '
                            f'{",".join(contract.SPLITS)} (train and validation at least).')


def dump(dataset: str, data_dir: str | None, out: pathlib.Path,
         splits: tuple[str, ...] = contract.SPLITS) -> dict[str, int]:
  """Writes `splits` of `dataset` to `out`; returns {split: examples}."""
  builder = data.builder(dataset, data_dir)
  by_split = {split: tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1,
                                                      as_supervised=True))
              for split in splits}
  out.parent.mkdir(parents=True, exist_ok=True)
  arrays.save(out, by_split, data.class_names(builder))
  return {split: len(labels) for split, (_, labels) in by_split.items()}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  unknown = set(_SPLITS.value) - set(contract.SPLITS)
  missing = set(arrays.NEEDED_SPLITS) - set(_SPLITS.value)
  if unknown or missing:
    raise app.UsageError(f'--splits takes some of {",".join(contract.SPLITS)}, train and '
                         f'validation among them; got {",".join(_SPLITS.value)}.')
  out = pathlib.Path(_OUT.value)
  try:
    counts = dump(_DATASET.value, _DATA_DIR.value, out, tuple(_SPLITS.value))
  except data.DatasetNotBuiltError as e:
    sys.exit(f'error: {e}')
  print(f'Wrote {out} ({out.stat().st_size / 2**20:.1f} MiB): '
        + ', '.join(f'{split} {n}' for split, n in counts.items()) + ' examples.')


if __name__ == '__main__':
  app.run(main)
