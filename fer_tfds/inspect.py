"""Prints the per-split, per-class, per-source counts of a built fer_emotions config and
writes a PNG grid of examples per class.

  python -m fer_tfds.inspect [--config=fer5_ck] [--grid=reports/dataset_grid.png]
"""

import collections

from absl import app
from absl import flags
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import tensorflow_datasets as tfds

from fer_tfds import fer_emotions
from fer_tfds.fer_emotions import splits

_CONFIG = flags.DEFINE_enum(
    'config', 'fer5_ck', [c.name for c in fer_emotions.Builder.BUILDER_CONFIGS],
    'Config to inspect (it must be built).')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data dir.')
_GRID = flags.DEFINE_string('grid', 'dataset_grid.png', 'Where to write the PNG grid.')
_PER_CLASS = flags.DEFINE_integer('per_class', 8, 'Examples per class in the grid.')


def count_table(builder: tfds.core.DatasetBuilder) -> str:
  """Returns a Markdown table of example counts per class, split and source."""
  info = builder.info
  classes, sources = info.features['label'].names, info.features['source'].names
  counts = collections.Counter()
  for split in splits.SPLITS:
    dataset = builder.as_dataset(split=split, decoders={'image': tfds.decode.SkipDecoding()})
    for example in tfds.as_numpy(dataset):
      counts[split, example['label'], example['source']] += 1
  columns = [(split, s) for split in splits.SPLITS for s in range(len(sources))]
  header = '| class | ' + ' | '.join(f'{split} {sources[s]}' for split, s in columns) + ' |'
  rows = [header, '|---' * (len(columns) + 1) + '|']
  for label, name in enumerate(classes + ['total']):
    if name == 'total':
      cells = [sum(counts[split, c, s] for c in range(len(classes))) for split, s in columns]
    else:
      cells = [counts[split, label, s] for split, s in columns]
    rows.append(f'| {name} | ' + ' | '.join(str(n) for n in cells) + ' |')
  return '\n'.join(rows)


def write_grid(builder: tfds.core.DatasetBuilder, path: str, per_class: int) -> None:
  """Saves `per_class` training images of every class, one row per class, to `path`."""
  classes = builder.info.features['label'].names
  picked = collections.defaultdict(list)
  for example in tfds.as_numpy(builder.as_dataset(split='train')):
    if len(picked[example['label']]) < per_class:
      picked[example['label']].append(example['image'][..., 0])
    if all(len(picked[c]) == per_class for c in range(len(classes))):
      break
  fig, axes = plt.subplots(len(classes), per_class, figsize=(per_class, len(classes) * 1.1))
  for c, name in enumerate(classes):
    for i, ax in enumerate(axes[c]):
      ax.axis('off')
      if i < len(picked[c]):
        ax.imshow(picked[c][i], cmap='gray', vmin=0, vmax=255)
    axes[c][0].set_title(name, loc='left', fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main(argv):
  del argv
  builder = tfds.builder(f'fer_emotions/{_CONFIG.value}', data_dir=_DATA_DIR.value)
  if not builder.is_prepared():
    raise app.UsageError(
        f'fer_emotions/{_CONFIG.value} is not built in {builder.data_dir}; build it with '
        f'python -m fer_tfds.build --manual_dir=<dir with the Kaggle zips> '
        f'--config={_CONFIG.value}')
  print(count_table(builder))
  metadata = builder.info.metadata or {}
  print(f"\nImages whose exact pixels already occur in an earlier split: "
        f"{metadata.get('cross_split_duplicates', 'unknown')}")
  write_grid(builder, _GRID.value, _PER_CLASS.value)
  print(f'Wrote {_GRID.value}')


if __name__ == '__main__':
  app.run(main)
