"""Input pipeline and training-step throughput, written to BENCHMARKS.md.

  python benchmarks/input_pipeline.py --manual_dir=../shared/data [--out=BENCHMARKS.md]

(a) the study's Keras ImageDataGenerator.flow_from_directory with its augmentations,
(b) our tf.data pipeline (cache -> shuffle -> batch -> augment -> prefetch) with the same
    augmentations, (c) FERNet training steps/s fed by (b), with augmentation in the tf.data
    map or inside the model, vs. fed by in-memory synthetic tensors, and (d) float32 vs
    mixed_bfloat16 training, (e) training the study's model (its widths, 4x4 kernels)
    and (f) half our widths (configs/experiments/fernet_small.cfg). Needs fer5_ck built.
"""

import os
import pathlib
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

_MANUAL_DIR = flags.DEFINE_string('manual_dir', '../shared/data', 'Folder with fer2013.zip.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data dir.')
_OUT = flags.DEFINE_string('out', 'BENCHMARKS.md', 'Markdown file to (re)write the '
                           'input-pipeline section of.')
_BATCHES = flags.DEFINE_integer('batches', 60, 'Batches timed per input pipeline.')
_STEPS = flags.DEFINE_integer('steps', 36, 'Training steps timed per float32 '
                              'configuration (a third of that for the slow ones).')

BATCH = 64
FILTERS = fernet_model.DEFAULT_FILTERS  # configs/fernet.cfg: the study's widths
HALF_FILTERS = (16, 32, 64, 128, 256)  # configs/experiments/fernet_small.cfg
KERNEL = 3  # configs/fernet.cfg
STUDY_KERNEL = 4
AUGMENT = augment.AugmentConfig(rotation=10, brightness=(-0.1, 0.1), zoom=0.1, flip=True,
                                shift=0.1)
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
        rescale=1 / 255, rotation_range=AUGMENT.rotation, brightness_range=(0.9, 1.1),
        zoom_range=AUGMENT.zoom, horizontal_flip=True, width_shift_range=AUGMENT.shift,
        height_shift_range=AUGMENT.shift)
    flow = generator.flow_from_directory(
        os.path.join(folder, 'train'), target_size=(48, 48), color_mode='grayscale',
        batch_size=BATCH, class_mode='categorical')
    return images_per_second(iter(flow), n)


def tf_data(builder, n: int) -> float:
  """(b) Our pipeline with the same augmentations in the tf.data map."""
  augmenter = augment.build_augmenter(AUGMENT, seed=0)
  dataset = data.pipeline(builder, 'train', BATCH, training=True,
                          augment=lambda x: augmenter(x, training=True))
  iterator = iter(dataset)
  for _ in range(builder.info.splits['train'].num_examples // BATCH + 1):
    next(iterator)  # one full pass: the cache is filled, as in every epoch after the first
  return images_per_second(iterator, n)


def training_steps(dataset, augment_in_model: bool, policy: str, steps: int,
                   filters=FILTERS, kernel_size: int = KERNEL) -> float:
  """(c)-(f) Training images/s of FERNet (default: configs/fernet.cfg's model)."""
  keras.mixed_precision.set_global_policy(policy)
  fernet = fernet_model.build_fernet(5, filters, kernel_size=kernel_size, dropout=0.1)
  model = fernet
  if augment_in_model:
    inputs = keras.Input(contract.IMAGE_SHAPE)
    model = keras.Model(inputs, fernet(augment.build_augmenter(AUGMENT, seed=0)(inputs)))
  model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss='categorical_crossentropy')
  model.fit(dataset, steps_per_epoch=6, epochs=1, verbose=0)  # trace and warm up
  start = time.perf_counter()
  model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
  keras.mixed_precision.set_global_policy('float32')
  return steps * BATCH / (time.perf_counter() - start)


def main(argv):
  del argv
  builder = data.builder('fer5_ck', _DATA_DIR.value)
  augmenter = augment.build_augmenter(AUGMENT, seed=0)
  n, steps = _BATCHES.value, _STEPS.value
  rows = {}
  print('(a) ImageDataGenerator ...', flush=True)
  rows['a'] = image_data_generator(_MANUAL_DIR.value, n)
  print('(b) tf.data ...', flush=True)
  rows['b'] = tf_data(builder, n)
  plain = data.pipeline(builder, 'train', BATCH, training=True)
  in_map = data.pipeline(builder, 'train', BATCH, training=True,
                         augment=lambda x: augmenter(x, training=True))
  images = tf.random.uniform((BATCH, *contract.IMAGE_SHAPE))
  labels = tf.one_hot(tf.random.uniform((BATCH,), 0, 5, tf.int32), 5)
  synthetic = tf.data.Dataset.from_tensors((images, labels)).repeat()
  print('(c) training steps ...', flush=True)
  rows['synthetic_model'] = training_steps(synthetic, True, 'float32', steps)
  rows['pipeline_model'] = training_steps(plain, True, 'float32', steps)
  rows['synthetic_map'] = training_steps(synthetic, False, 'float32', steps)
  rows['pipeline_map'] = training_steps(in_map, False, 'float32', steps)
  print('(d) mixed_bfloat16 ...', flush=True)
  rows['pipeline_model_bf16'] = training_steps(plain, True, 'mixed_bfloat16',
                                               max(steps // 3, 3))
  print('(e) the study\'s model, (f) half widths ...', flush=True)
  rows['study_model'] = training_steps(synthetic, False, 'float32', max(steps // 3, 3),
                                       kernel_size=STUDY_KERNEL)
  rows['half_widths'] = training_steps(synthetic, False, 'float32', steps,
                                       filters=HALF_FILTERS)

  def ratio(a, b):
    return f'{100 * (rows[a] / rows[b] - 1):+.1f} %'

  gpus = len(tf.config.list_physical_devices('GPU'))
  gpu_text = f'{gpus} GPU(s)' if gpus else 'no GPU'
  table = '\n'.join([
      '## Input pipeline and training throughput (`python benchmarks/input_pipeline.py`)',
      '',
      f'Machine: {machine.describe()}, {gpu_text}; TensorFlow {tf.__version__}, '
      f'Keras {keras.__version__}. '
      f'Batch {BATCH}; augmentation: flip, ±{AUGMENT.rotation:g}° rotation, '
      f'{AUGMENT.zoom:g} zoom, {AUGMENT.shift:g} shifts, ±{AUGMENT.brightness[1]:g} '
      f'brightness; FERNet widths {"-".join(map(str, FILTERS))}, {KERNEL}x{KERNEL} kernels '
      f'unless a row says otherwise; {n} batches per input '
      f'pipeline, {steps} timed steps per training row ({max(steps // 3, 3)} for (d) and '
      '(e)) after 6 warm-up steps.',
      '',
      '| measurement | images/s | vs. reference |',
      '|---|---:|---:|',
      f"| (a) ImageDataGenerator.flow_from_directory, augmenting | {rows['a']:.0f} | |",
      f"| (b) tf.data pipeline, same augmentation (after the first epoch) | "
      f"{rows['b']:.0f} | {rows['b'] / rows['a']:.1f}x (a) |",
      f"| (c) training, augmentation in the model, synthetic in-memory input | "
      f"{rows['synthetic_model']:.1f} | |",
      f"| (c) training, augmentation in the model, fed by tf.data | "
      f"{rows['pipeline_model']:.1f} | {ratio('pipeline_model', 'synthetic_model')} vs. "
      'synthetic |',
      f"| (c) training, augmentation in the tf.data map, synthetic input (no augmentation) | "
      f"{rows['synthetic_map']:.1f} | |",
      f"| (c) training, augmentation in the tf.data map, fed by tf.data | "
      f"{rows['pipeline_map']:.1f} | {ratio('pipeline_map', 'synthetic_map')} vs. "
      'synthetic |',
      f"| (d) training, mixed_bfloat16, augmentation in the model, fed by tf.data | "
      f"{rows['pipeline_model_bf16']:.1f} | {ratio('pipeline_model_bf16', 'pipeline_model')}"
      ' vs. float32 |',
      f"| (e) training, the study's model ({STUDY_KERNEL}x{STUDY_KERNEL} kernels), no "
      f"augmentation, synthetic input | {rows['study_model']:.1f} | "
      f"{rows['synthetic_map'] / rows['study_model']:.1f}x slower than ours |",
      f"| (f) training, half widths {'-'.join(map(str, HALF_FILTERS))}, no augmentation, "
      f"synthetic input | {rows['half_widths']:.1f} | "
      f"{rows['half_widths'] / rows['synthetic_map']:.1f}x faster than ours |",
      '',
  ])
  markdown_section.replace_section(_OUT.value, SECTION, table)
  print(table)


if __name__ == '__main__':
  app.run(main)
