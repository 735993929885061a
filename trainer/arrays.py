"""A dataset's splits as one .npz of numpy arrays, for training where TensorFlow is absent.

Keys: `<split>_images` (N, 48, 48, 1) uint8, `<split>_labels` (N,) int64 and
`<split>_sources` (N,) source archive names for each split written (train and validation
at least), `class_names` and `dataset` (the fer_emotions config). A name ending in `.xz`
is LZMA-compressed (a third smaller than the .npz's own zlib compression: 45 MiB for
fer5_ck's train and validation splits). `python -m trainer.dump_arrays` writes it from the
built TFDS dataset; `python -m trainer --arrays` trains from it. A file of a `<name>_ck`
config also serves `<name>` (its FER-2013 faces: the split is made per source, so they
are split as in `<name>`), so one file carries both to a GPU machine.
"""

import lzma

import numpy as np

from fer_common import contract
from fer_common import files

NEEDED_SPLITS = ('train', 'validation')
FER2013 = 'fer2013'  # the source name of FER-2013's faces
WITH_CK = '_ck'  # the suffix of a config that adds CK+ to another


class ArraysFileError(ValueError):
  """The file is missing or is not a dataset written by trainer.dump_arrays."""


def save(path, splits: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
         class_names: list[str], dataset: str) -> None:
  """Writes {split: (images, labels, source names)}, the class names and the dataset's
  name to a .npz (LZMA-compressed if `path` ends in .xz, else zlib)."""
  arrays = {'class_names': np.array(class_names), 'dataset': np.array(dataset)}
  for split, (images, labels, sources) in splits.items():
    arrays.update({f'{split}_images': images, f'{split}_labels': labels,
                   f'{split}_sources': np.asarray(sources, dtype=str)})
  with files.replaced(path) as temp:
    if str(path).endswith('.xz'):
      with lzma.open(temp, 'wb') as f:
        np.savez(f, **arrays)
    else:
      with open(temp, 'wb') as f:
        np.savez_compressed(f, **arrays)


def load(path, dataset: str) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
  """Reads what `save` wrote: ({split: (images, labels)} of the splits it holds, class
  names), of `dataset`: the file's own, or its FER-2013 faces where the file holds
  `dataset` + '_ck'.

  Raises:
    ArraysFileError: naming the file and the command that writes it.
  """
  remedy = ('write it with: python -m trainer.dump_arrays '
            f'--dataset={dataset} --out={path}')
  opener = lzma.open if str(path).endswith('.xz') else open
  try:
    with opener(path, 'rb') as f, np.load(f) as stored:
      contents = {key: stored[key] for key in stored.files}
  except FileNotFoundError:
    raise ArraysFileError(f'{path} does not exist; {remedy}') from None
  except (OSError, ValueError, EOFError, lzma.LZMAError) as e:
    raise ArraysFileError(f'{path} is no .npz file ({e}); {remedy}') from None
  wanted = ['class_names', 'dataset'] + [
      f'{s}_{k}' for s in NEEDED_SPLITS for k in ('images', 'labels', 'sources')]
  missing = [key for key in wanted if key not in contents]
  if missing:
    raise ArraysFileError(f'{path} lacks {", ".join(missing)}; {remedy}')
  held = str(contents['dataset'])
  if dataset not in (held, held.removesuffix(WITH_CK)):
    raise ArraysFileError(f'{path} holds {held}, not {dataset}; {remedy}')
  splits = {}
  for split in contract.SPLITS:
    if f'{split}_images' in contents:
      keep = (slice(None) if dataset == held
              else contents[f'{split}_sources'] == FER2013)
      splits[split] = (contents[f'{split}_images'][keep],
                       contents[f'{split}_labels'][keep])
  return splits, [str(name) for name in contents['class_names']]
