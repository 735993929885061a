"""Training images/s and achieved TFLOP/s of K FERNets trained at once (--members_at_once),
for several (members, batch) pairs, on whatever device the Keras backend sees:

  KERAS_BACKEND=jax PYTHONPATH=. python benchmarks/training_throughput.py --arrays=arrays/fer5_ck.npz.xz \\
      --flagfile=configs/fernet.cfg --precision=mixed_bfloat16 --configs=1x64,8x256 \\
      --out=throughput.json

Each pair trains the run's recipe (augmentation in the model, AdamW, the flags' FERNet) on
the real training arrays with the trainer's recipe (trainer.recipe.assemble) and fit():
compiled once, then
timed over --repeats runs of --steps steps each (median and spread), input copied from
host memory as in a real run. TFLOP/s counts 3 x 2 x the forward pass's convolution and
dense multiply-adds per image (backward = 2x forward), leaving out augmentation,
BatchNorm, pooling and the optimiser.
benchmarks/gpu_report.py turns the JSON into BENCHMARKS.md's rows.
"""

import dataclasses
import json
import pathlib
import statistics
import sys
import time

from absl import app
from absl import flags
import keras
import numpy as np

from fer_common import files
from fer_common import machine
from trainer import arrays
from trainer import config as config_lib
from trainer import devices
from trainer import model as fernet_model
from trainer import recipe
from trainer import sources
from trainer.config import TrainConfig

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The trainer's flags (the recipe timed) and this benchmark's."""
  config_lib.define_flags()  # --arrays among them: required here
  flags.mark_flag_as_required('arrays')
  flags.DEFINE_list('configs', ['1x64', '1x256', '8x256', '16x256'],
                    'MEMBERSxBATCH pairs to time.')
  flags.DEFINE_integer('steps', 60, 'Steps per timed run.', lower_bound=1)
  flags.DEFINE_integer('repeats', 3, 'Timed runs per pair.', lower_bound=1)
  flags.DEFINE_string('out', None, 'JSON file to write.', required=True)
  FLAGS.set_default('run_dir', 'unused')  # a required trainer flag; nothing is written


def parse_pairs(pairs: list[str]) -> list[tuple[int, int]]:
  """[(members, batch)] of 'MxB' strings.

  Raises:
    ValueError: naming the pair that is not of that form.
  """
  result = []
  for pair in pairs:
    try:
      count, batch = (int(v) for v in pair.lower().split('x'))
    except ValueError:
      raise ValueError(f'--configs: {pair!r} is not MEMBERSxBATCH, e.g. 8x256.') from None
    if count < 1 or batch < 1:
      raise ValueError(f'--configs: {pair!r} needs positive numbers.')
    result.append((count, batch))
  return result


def time_pair(config: TrainConfig, images: np.ndarray, labels: np.ndarray,
              num_classes: int, steps: int, repeats: int) -> dict:
  """Compiles K members at the config's batch and times `repeats` runs of `steps` steps;
  returns the measurement (seconds of each run, images/s of their median)."""
  keras.utils.set_random_seed(config.seed)
  batch, count = config.batch_size, config.members_at_once
  training_model = recipe.assemble(config, num_classes, steps).training_model
  n = min(len(images), steps * batch)
  x, y = images[:n], recipe.targets(labels[:n], count)
  start = time.perf_counter()
  training_model.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # compiles
  compile_s = time.perf_counter() - start
  seconds = []
  for _ in range(repeats):
    start = time.perf_counter()
    training_model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    seconds.append(time.perf_counter() - start)
  steps_run = n // batch
  median = statistics.median(seconds)
  return {'members': count, 'batch': batch, 'steps': steps_run, 'compile_s': compile_s,
          'seconds': seconds, 'images_per_s': count * steps_run * batch / median,
          'spread': (max(seconds) - min(seconds)) / median}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    pairs = parse_pairs(FLAGS.configs)
    base = TrainConfig.from_flags(FLAGS)
    splits, class_names = arrays.load(FLAGS.arrays, base.dataset)
  except (ValueError, arrays.ArraysFileError) as e:
    sys.exit(f'error: {e}')
  policy = devices.set_precision(base.precision)
  images, labels = sources.model_inputs(*splits['train'], len(class_names))
  forward_macs = fernet_model.forward_macs(base.filters, base.kernel_size, len(class_names))
  results = []
  for count, batch in pairs:
    config = dataclasses.replace(base, members_at_once=count, batch_size=batch,
                                 reduce_lr_patience=0, early_stopping_patience=0,
                                 balance_classes=False)
    result = time_pair(config, images, labels, len(class_names), FLAGS.steps,
                       FLAGS.repeats)
    result['tflops'] = result['images_per_s'] * 6 * forward_macs / 1e12
    print(f"{count} member(s) x batch {batch}: {result['images_per_s']:.0f} images/s "
          f"(spread {100 * result['spread']:.0f} %), {result['tflops']:.2f} TFLOP/s, "
          f"compiled in {result['compile_s']:.0f} s", flush=True)
    results.append(result)
    # After every pair: a window that ends early keeps what it measured.
    files.write_text(pathlib.Path(FLAGS.out), json.dumps({
        'machine': machine.describe(), 'devices': keras.distribution.list_devices(),
        'backend': keras.config.backend(), 'policy': policy, 'filters': base.filters,
        'kernel_size': base.kernel_size, 'forward_macs': forward_macs,
        'steps_per_execution': base.steps_per_execution, 'results': results}, indent=1))


if __name__ == '__main__':
  define_flags()
  app.run(main)
