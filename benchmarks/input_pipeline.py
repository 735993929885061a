"""Input pipeline and training-step throughput, written to BENCHMARKS.md.

  python benchmarks/input_pipeline.py --manual_dir=../shared/data [--out=BENCHMARKS.md]

(a) the study's Keras ImageDataGenerator.flow_from_directory with its augmentations,
(b) our tf.data pipeline (cache -> shuffle -> batch -> augment -> prefetch) with the same
    augmentations, (c) FERNet training images/s fed by (b), with augmentation in the
    tf.data map or inside the model, vs. fed by the same real batches held in memory (its
    upper bound), and (d) float32 vs mixed_bfloat16 training, (e) training the study's
    model (its widths, 4x4 kernels) and (f) half our widths
    (docs/results/configs/fernet_small.cfg). Needs fer5_ck built.

The upper bound is real faces held in memory. The constant batch of uniform noise used
before stays as a row: it trains as fast as real faces; the gap it once showed came from
the machine's speed changing between single timings (BENCHMARKS.md), hence the rounds.
"""

from collections.abc import Iterator
import dataclasses
import os
import pathlib
import statistics
import tempfile
import time
import zipfile

from absl import app
from absl import flags
import keras
import tensorflow as tf

import markdown_section
from fer_common import contract
from fer_common import machine
from trainer import augment
from trainer import data
from trainer import model as fernet_model
from trainer.config import TrainConfig

_MANUAL_DIR = flags.DEFINE_string('manual_dir', '../shared/data', 'Folder with fer2013.zip.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data dir.')
_OUT = flags.DEFINE_string('out', 'BENCHMARKS.md', 'Markdown file to (re)write the '
                           'input-pipeline section of.')
_BATCHES = flags.DEFINE_integer('batches', 60, 'Batches timed per input pipeline.')
_STEPS = flags.DEFINE_integer('steps', 60, 'Training steps per timing of a training row.')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Timings of each training row (the table '
                                'gives their median and spread).')

BATCH = 64
RECIPE = TrainConfig()  # the recipe's defaults: configs/fernet.cfg
FILTERS = RECIPE.filters  # the study's widths
HALF_FILTERS = (16, 32, 64, 128, 256)  # docs/results/configs/fernet_small.cfg
KERNEL = RECIPE.kernel_size
STUDY_KERNEL = 4
SECTION = '<!-- input_pipeline.py -->'


def images_per_second(batches, n: int) -> float:
  """Images/s over `n` batches of an iterator, after 3 warm-up batches."""
  for _ in range(3):
    next(batches)
  start, images = time.perf_counter(), 0
  for _ in range(n):
    images += len(next(batches)[0])
  return images / (time.perf_counter() - start)


def image_data_generator(manual_dir: str, n: int) -> float:
  """(a) The study's augmenting ImageDataGenerator on the extracted FER-2013 train folder."""
  from keras.src.legacy.preprocessing.image import ImageDataGenerator  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as folder:
    with zipfile.ZipFile(pathlib.Path(manual_dir) / 'fer2013.zip') as archive:
      archive.extractall(folder, [m for m in archive.namelist() if m.startswith('train/')])
    generator = ImageDataGenerator(
        rescale=1 / 255, rotation_range=RECIPE.rotation, brightness_range=(0.9, 1.1),
        zoom_range=RECIPE.zoom, horizontal_flip=True, width_shift_range=RECIPE.shift,
        height_shift_range=RECIPE.shift)
    flow = generator.flow_from_directory(
        os.path.join(folder, 'train'), target_size=(48, 48), color_mode='grayscale',
        batch_size=BATCH, class_mode='categorical')
    return images_per_second(iter(flow), n)


def filled(dataset: tf.data.Dataset, builder) -> Iterator:
  """An iterator of `dataset` after one full pass of the train split: its cache is
  filled, as in every epoch after the first (later iterators of `dataset` share it)."""
  iterator = iter(dataset)
  for _ in range(builder.info.splits['train'].num_examples // BATCH + 1):
    next(iterator)
  return iterator


def tf_data(builder, n: int) -> float:
  """(b) Our pipeline with the same augmentations in the tf.data map."""
  augmenter = augment.build_augmenter(RECIPE, seed=0)
  dataset = data.pipeline(builder, 'train', BATCH, training=True,
                          augment=lambda x: augmenter(x, training=True))
  return images_per_second(filled(dataset, builder), n)


def in_memory(dataset: tf.data.Dataset, batches: int = 20) -> tf.data.Dataset:
  """The first `batches` batches of `dataset`, held in memory and cycled: the same faces
  (and augmentations, where `dataset` augments) as the pipeline gives, at no input cost.
  Training fed by it bounds training fed by `dataset` from above."""
  held = list(dataset.take(batches))
  return tf.data.Dataset.from_tensor_slices(
      tuple(tf.stack(parts) for parts in zip(*held))).repeat().prefetch(2)


@dataclasses.dataclass
class TrainingRow:
  """One timed training configuration: FERNet (default: configs/fernet.cfg's) fed by
  `feed`, with or without the augmentation layers in the model."""
  feed: tf.data.Dataset
  augment_in_model: bool
  policy: str = 'float32'
  filters: tuple[int, ...] = FILTERS
  kernel_size: int = KERNEL
  model: keras.Model | None = None

  def build(self) -> None:
    """Builds, compiles and warms the model up (6 steps: tracing, oneDNN's kernels)."""
    keras.mixed_precision.set_global_policy(self.policy)
    fernet = fernet_model.build_fernet(5, filters=self.filters,
                                       kernel_size=self.kernel_size,
                                       dropout=RECIPE.dropout, head_dropout=0.0)
    self.model = fernet
    if self.augment_in_model:
      inputs = keras.Input(contract.IMAGE_SHAPE)
      self.model = keras.Model(inputs,
                               fernet(augment.build_augmenter(RECIPE, seed=0)(inputs)))
    self.model.compile(optimizer=keras.optimizers.AdamW(1e-3),
                       loss='categorical_crossentropy')
    keras.mixed_precision.set_global_policy('float32')
    self.model.fit(self.feed, steps_per_epoch=6, epochs=1, verbose=0)

  def images_per_second(self, steps: int) -> float:
    """Training images/s over `steps` steps."""
    start = time.perf_counter()
    self.model.fit(self.feed, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * BATCH / (time.perf_counter() - start)


def time_rows(rows: dict[str, TrainingRow], steps: int, repeats: int
              ) -> dict[str, tuple[float, float]]:
  """{row: (median images/s, spread: (max - min) / median)} of `repeats` timings of each
  row, taken in rounds (every row once per round), so that a machine that speeds up or
  slows down during the benchmark affects every row alike."""
  for name, row in rows.items():
    print(f'  building {name} ...', flush=True)
    row.build()
  timings = {name: [] for name in rows}
  for round_ in range(repeats):
    for name, row in rows.items():
      timings[name].append(row.images_per_second(steps))
      print(f'  round {round_ + 1}: {name} {timings[name][-1]:.1f} images/s', flush=True)
  return {name: (statistics.median(values),
                 (max(values) - min(values)) / statistics.median(values))
          for name, values in timings.items()}


def main(argv):
  del argv
  builder = data.builder('fer5_ck', _DATA_DIR.value)
  augmenter = augment.build_augmenter(RECIPE, seed=0)
  n, steps = _BATCHES.value, _STEPS.value
  rows = {}
  print('(a) ImageDataGenerator ...', flush=True)
  rows['a'] = image_data_generator(_MANUAL_DIR.value, n)
  print('(b) tf.data ...', flush=True)
  rows['b'] = tf_data(builder, n)
  plain = data.pipeline(builder, 'train', BATCH, training=True)
  in_map = data.pipeline(builder, 'train', BATCH, training=True,
                         augment=lambda x: augmenter(x, training=True))
  for dataset in (plain, in_map):
    filled(dataset, builder)
  held_plain, held_augmented = in_memory(plain), in_memory(in_map)
  noise = tf.data.Dataset.from_tensors((
      tf.random.uniform((BATCH, *contract.IMAGE_SHAPE), seed=0),
      next(iter(held_plain))[1])).repeat()
  print('(c)-(f) training steps ...', flush=True)
  timed = time_rows({
      'noise_model': TrainingRow(noise, augment_in_model=True),
      'memory_model': TrainingRow(held_plain, augment_in_model=True),
      'pipeline_model': TrainingRow(plain, augment_in_model=True),
      'memory_map': TrainingRow(held_augmented, augment_in_model=False),
      'pipeline_map': TrainingRow(in_map, augment_in_model=False),
      'pipeline_model_bf16': TrainingRow(plain, augment_in_model=True,
                                         policy='mixed_bfloat16'),
      'study_model': TrainingRow(held_augmented, augment_in_model=False,
                                 kernel_size=STUDY_KERNEL),
      'half_widths': TrainingRow(held_augmented, augment_in_model=False,
                                 filters=HALF_FILTERS),
  }, steps, _REPEATS.value)

  def cell(row):
    median, spread = timed[row]
    return f'{median:.1f} ({100 * spread:.0f} %)'

  def ratio(a, b):
    return f'{100 * (timed[a][0] / timed[b][0] - 1):+.1f} %'

  gpus = len(tf.config.list_physical_devices('GPU'))
  gpu_text = f'{gpus} GPU(s)' if gpus else 'no GPU'
  table = '\n'.join([
      '## Input pipeline and training throughput (`python benchmarks/input_pipeline.py`)',
      '',
      f'Machine: {machine.describe()}, {gpu_text}; TensorFlow {tf.__version__}, '
      f'Keras {keras.__version__}. '
      f'Batch {BATCH}; augmentation: flip, ±{RECIPE.rotation:g}° rotation, '
      f'{RECIPE.zoom:g} zoom, {RECIPE.shift:g} shifts, ±{RECIPE.brightness[1]:g} '
      f'brightness; FERNet widths {"-".join(map(str, FILTERS))}, {KERNEL}x{KERNEL} kernels '
      f'unless a row says otherwise; {n} batches per input pipeline. Training rows: the '
      f'median of {_REPEATS.value} timings of {steps} steps each, taken in rounds (every '
      'row once a round) after 6 warm-up steps and a full pass that fills the pipelines\' '
      'caches, with the spread (max - min) / median. "In memory": 20 real batches from '
      'the same pipeline, held as tensors and cycled, so the model trains on the same '
      'faces at no input cost: the upper bound of the row below it.',
      '',
      '| measurement | images/s | vs. reference |',
      '|---|---:|---:|',
      f"| (a) ImageDataGenerator.flow_from_directory, augmenting | {rows['a']:.0f} | |",
      f"| (b) tf.data pipeline, same augmentation (after the first epoch) | "
      f"{rows['b']:.0f} | {rows['b'] / rows['a']:.1f}x (a) |",
      f"| (c) training, augmentation in the model, one batch of uniform noise repeated "
      f"(the former baseline) | {cell('noise_model')} | "
      f"{ratio('noise_model', 'memory_model')} vs. in memory |",
      f"| (c) training, augmentation in the model, in memory | {cell('memory_model')} | |",
      f"| (c) training, augmentation in the model, fed by tf.data | "
      f"{cell('pipeline_model')} | {ratio('pipeline_model', 'memory_model')} vs. "
      'in memory |',
      f"| (c) training, batches augmented by the tf.data map, in memory | "
      f"{cell('memory_map')} | |",
      f"| (c) training, augmentation in the tf.data map, fed by tf.data | "
      f"{cell('pipeline_map')} | {ratio('pipeline_map', 'memory_map')} vs. in memory |",
      f"| (d) training, mixed_bfloat16, augmentation in the model, fed by tf.data | "
      f"{cell('pipeline_model_bf16')} | {ratio('pipeline_model_bf16', 'pipeline_model')}"
      ' vs. float32 |',
      f"| (e) training, the study's model ({STUDY_KERNEL}x{STUDY_KERNEL} kernels), "
      f"augmented batches in memory | {cell('study_model')} | "
      f"{timed['memory_map'][0] / timed['study_model'][0]:.1f}x slower than ours |",
      f"| (f) training, half widths {'-'.join(map(str, HALF_FILTERS))}, augmented batches "
      f"in memory | {cell('half_widths')} | "
      f"{timed['half_widths'][0] / timed['memory_map'][0]:.1f}x faster than ours |",
      '',
  ])
  markdown_section.replace_section(_OUT.value, SECTION, table)
  print(table)


if __name__ == '__main__':
  app.run(main)
