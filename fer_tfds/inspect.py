"""Prints the per-split, per-class, per-source counts of a built fer_emotions config and
writes a PNG grid of examples per class.

  python -m fer_tfds.inspect [--config=fer5_ck] [--grid=docs/dataset_grid.png]
"""

import collections
import sys

from absl import app
from absl import flags
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import tensorflow_datasets as tfds

from fer_common import contract
from fer_common import files
import fer_tfds  # noqa: F401  (registers fer_emotions with TFDS)

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags of the inspection."""
  flags.DEFINE_enum('config', contract.DEFAULT_CONFIG, contract.DATASET_CONFIGS,
                    'Config to inspect (it must be built).')
  flags.DEFINE_string('data_dir', None, 'TFDS data dir.')
  flags.DEFINE_string('grid', None, 'Also write a PNG grid of examples per class here.')
  flags.DEFINE_integer('per_class', 8, 'Examples per class in the grid.', lower_bound=1)


def count_table(builder: tfds.core.DatasetBuilder) -> str:
  """Returns a Markdown table of example counts per class, split and source."""
  info = builder.info
  classes, sources = info.features['label'].names, info.features['source'].names
  counts = collections.Counter()
  for split in contract.SPLITS:
    dataset = builder.as_dataset(split=split, decoders={'image': tfds.decode.SkipDecoding()})
    for example in tfds.as_numpy(dataset):
      counts[split, example['label'], example['source']] += 1
  columns = [(split, s) for split in contract.SPLITS for s in range(len(sources))]
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
  with files.replaced(path, suffix='.png') as temp:
    fig.savefig(temp, dpi=100)
  plt.close(fig)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  builder = tfds.builder(f'{contract.DATASET}/{FLAGS.config}', data_dir=FLAGS.data_dir)
  if not builder.is_prepared():
    sys.exit('error: ' + contract.not_built_message(FLAGS.config, builder.data_dir,
                                                   FLAGS.data_dir))
  print(count_table(builder))
  metadata = builder.info.metadata or {}
  print(f"\nImages whose exact pixels already occur in an earlier split: "
        f"{metadata.get('cross_split_duplicates', 'unknown')}")
  if FLAGS.grid:
    write_grid(builder, FLAGS.grid, FLAGS.per_class)
    print(f'Wrote {FLAGS.grid}')


if __name__ == '__main__':
  define_flags()
  app.run(main)
