"""A dataset's splits as one .npz of numpy arrays, for training where TensorFlow is absent.

Keys: `<split>_images` (N, 48, 48, 1) uint8 and `<split>_labels` (N,) int64 for each
split written (train and validation at least), and `class_names`. A name ending in `.xz`
is LZMA-compressed (a third smaller than the .npz's own zlib compression: 45 MiB for
fer5_ck's train and validation splits). `python -m trainer.dump_arrays` writes it from the
built TFDS dataset; `python -m trainer.array_fit` trains from it.
"""

import lzma

import numpy as np

from fer_common import contract
from fer_common import files

NEEDED_SPLITS = ('train', 'validation')


class ArraysFileError(ValueError):
  """The file is missing or is not a dataset written by trainer.dump_arrays."""


def save(path, splits: dict[str, tuple[np.ndarray, np.ndarray]],
         class_names: list[str]) -> None:
  """Writes {split: (images, labels)} and the class names to a .npz (LZMA-compressed if
  `path` ends in .xz, else zlib)."""
  arrays = {'class_names': np.array(class_names)}
  for split, (images, labels) in splits.items():
    arrays[f'{split}_images'], arrays[f'{split}_labels'] = images, labels
  with files.replaced(path) as temp:
    if str(path).endswith('.xz'):
      with lzma.open(temp, 'wb') as f:
        np.savez(f, **arrays)
    else:
      with open(temp, 'wb') as f:
        np.savez_compressed(f, **arrays)


def load(path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
  """Reads what `save` wrote: ({split: (images, labels)} of the splits it holds, class
  names).

  Raises:
    ArraysFileError: naming the file and the command that writes it.
  """
  remedy = 'write it with: python -m trainer.dump_arrays --dataset=<config> --out=<file>'
  opener = lzma.open if str(path).endswith('.xz') else open
  try:
    with opener(path, 'rb') as f, np.load(f) as stored:
      contents = {key: stored[key] for key in stored.files}
  except FileNotFoundError:
    raise ArraysFileError(f'{path} does not exist; {remedy}') from None
  except (OSError, ValueError, EOFError, lzma.LZMAError) as e:
    raise ArraysFileError(f'{path} is no .npz file ({e}); {remedy}') from None
  wanted = ['class_names'] + [
      f'{s}_{k}' for s in NEEDED_SPLITS for k in ('images', 'labels')]
  missing = [key for key in wanted if key not in contents]
  if missing:
    raise ArraysFileError(f'{path} lacks {", ".join(missing)}; {remedy}')
  splits = {s: (contents[f'{s}_images'], contents[f'{s}_labels'])
            for s in contract.SPLITS if f'{s}_images' in contents}
  return splits, [str(name) for name in contents['class_names']]
