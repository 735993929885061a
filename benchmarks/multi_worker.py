"""Training images/s of `python -m trainer` under each engine, written to BENCHMARKS.md:

  python benchmarks/multi_worker.py [--steps=50] [--repeats=2] [--out=BENCHMARKS.md]

(a) fit() in one process, (b) trainer/multi_worker.py's step in one process (a
MultiWorkerMirroredStrategy of one worker), (c) the same with two worker processes on this
machine (127.0.0.1), sharing its cores. Each run trains configs/fernet.cfg's recipe on the
built fer5_ck for two epochs of --steps steps; the rate is what the trainer's progress
line reports for the second epoch (global batch x steps / seconds). Rows are run in
rounds (every row once a round); the table gives the median and spread.
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile

from absl import app
from absl import flags

import markdown_section
from fer_common import machine
from trainer import multi_worker

_STEPS = flags.DEFINE_integer('steps', 50, 'Training steps per epoch.', lower_bound=1)
_REPEATS = flags.DEFINE_integer('repeats', 2, 'Runs of each row.', lower_bound=1)
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data dir.')
_OUT = flags.DEFINE_string('out', 'BENCHMARKS.md', 'Markdown file to (re)write the '
                           'multi-worker section of.')

SECTION = '<!-- multi_worker.py -->'
ROWS = {'fit': 0, 'custom_step': 1, 'two_workers': 2}  # row: workers (0: no TF_CONFIG)
_RATE = re.compile(r'^epoch 2/2 batch \d+/\d+: (\d+) images/s', re.M)


def train(workers: int, run_dir: str, steps: int) -> float:
  """Trains with `workers` worker processes (0: plain fit()); returns the last images/s
  the chief's progress line reported in the second epoch."""
  processes = []
  for tf_config in multi_worker.local_cluster(workers) if workers else [None]:
    env = dict(os.environ)
    if tf_config:
      env['TF_CONFIG'] = tf_config
    command = [sys.executable, '-m', 'trainer', '--flagfile=configs/fernet.cfg',
               f'--run_dir={run_dir}', '--epochs=2', f'--steps_per_epoch={steps}',
               '--eval_limit=512']
    if _DATA_DIR.value:
      command.append(f'--data_dir={_DATA_DIR.value}')
    processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
  outputs = [p.communicate()[0] for p in processes]
  if any(p.returncode for p in processes):
    raise RuntimeError(f'training failed:\n{outputs[0][-3000:]}')
  rates = _RATE.findall(outputs[0])
  if not rates:
    raise RuntimeError(f'no progress line in the second epoch:\n{outputs[0][-3000:]}')
  return float(rates[-1])


def main(argv):
  del argv
  rates = {row: [] for row in ROWS}
  with tempfile.TemporaryDirectory() as scratch:
    for round_ in range(_REPEATS.value):
      for row, workers in ROWS.items():
        rates[row].append(train(workers, f'{scratch}/{row}_{round_}', _STEPS.value))
        print(f'round {round_ + 1}: {row} {rates[row][-1]:.0f} images/s', flush=True)
  median = {row: statistics.median(values) for row, values in rates.items()}

  def cell(row):
    values = rates[row]
    return (f'{median[row]:.0f} ({100 * (max(values) - min(values)) / median[row]:.0f} '
            f'%) | {median[row] / median["fit"]:.2f}x')

  body = '\n'.join([
      '## Engines for more machines (`python benchmarks/multi_worker.py`)',
      '',
      f'Machine: {machine.describe()}, no GPU. `configs/fernet.cfg` on fer5_ck, batch 64 '
      f'(global), the second of two epochs of {_STEPS.value} steps as the trainer\'s '
      f'progress line reports it; median of {_REPEATS.value} runs (spread).',
      '',
      '| engine | training images/s | vs. fit() |',
      '|---|---:|---:|',
      f"| (a) `fit()`, one process | {cell('fit')} |",
      f"| (b) `trainer/multi_worker.py`'s step, one worker | {cell('custom_step')} |",
      f"| (c) the same, two workers on this machine (127.0.0.1) | {cell('two_workers')} |",
  ])
  markdown_section.replace_section(_OUT.value, SECTION, body)
  print(body)


if __name__ == '__main__':
  app.run(main)
