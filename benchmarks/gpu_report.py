"""BENCHMARKS.md's GPU section from what benchmarks/gpu_window.sh brought back:

  python benchmarks/gpu_report.py --window=<its out_dir> [--out=BENCHMARKS.md]

Three tables: training throughput of K members at once (images/s and achieved TFLOP/s
against the chip's peak), the accuracy per epoch of 8 members at batch 256 against one
FERNet at batch 64, and the study's two runs reproduced against the study's numbers.
"""

import csv
import io
import json
import pathlib
import re
import tarfile

from absl import app
from absl import flags

import markdown_section

_WINDOW = flags.DEFINE_string('window', None, 'The out_dir of gpu_window.sh.',
                              required=True)
_OUT = flags.DEFINE_string('out', 'BENCHMARKS.md', 'Markdown file to (re)write the GPU '
                           'section of.')
_PEAK = flags.DEFINE_float('peak_tflops', 989.0, "The chip's dense bf16 peak (an H200's "
                           'datasheet value).')

SECTION = '<!-- gpu_report.py -->'
MEMBERS, SINGLE = 'gpu_members8_b256', 'gpu_single_b64'
STUDY = {'seed_baseline': 66.58, 'seed_improved': 68.17}  # the study's test accuracy, %
EPOCHS_SHOWN = (1, 5, 10, 20, 30)
_ACCURACY = re.compile(r'^(?:member (\d+) )?(train|validation|test): accuracy ([0-9.]+) '
                       r'\(flip-averaged ([0-9.]+)\)', re.M)


def read_window(folder: pathlib.Path) -> tuple[dict, dict[str, str]]:
  """(throughput.json, {name: text} of every history.csv and log in runs.tar.gz)."""
  throughput = json.loads((folder / 'throughput.json').read_text())
  texts = {}
  with tarfile.open(folder / 'runs.tar.gz') as archive:
    for member in archive.getmembers():
      if member.isfile() and member.name.endswith(('history.csv', '.log')):
        texts[member.name] = archive.extractfile(member).read().decode()
  return throughput, texts


def throughput_table(throughput: dict, peak_tflops: float) -> list[str]:
  """Rows of images/s and TFLOP/s per (members, batch), against one member at batch 64."""
  results = throughput['results']
  base = next((r for r in results if (r['members'], r['batch']) == (1, 64)), results[0])
  rows = ['| members x batch | training images/s (median; spread) | TFLOP/s | of peak '
          '| vs. 1 x 64 |', '|---|---:|---:|---:|---:|']
  for r in results:
    rows.append(f"| {r['members']} x {r['batch']} | {r['images_per_s']:,.0f} "
                f"({100 * r['spread']:.0f} %) | {r['tflops']:.1f} | "
                f"{100 * r['tflops'] / peak_tflops:.1f} % | "
                f"{r['images_per_s'] / base['images_per_s']:.1f}x |")
  return rows


def history(text: str) -> list[dict[str, float]]:
  """history.csv's rows as numbers."""
  return [{k: float(v) for k, v in row.items() if v} for row in
          csv.DictReader(io.StringIO(text))]


def accuracy_table(texts: dict[str, str]) -> list[str]:
  """Validation accuracy at some epochs: the 8 members' mean and range, and the single."""
  members = history(texts.get(f'{MEMBERS}/history.csv', ''))
  single = history(texts.get(f'{SINGLE}/history.csv', ''))
  rows = ['| epoch | 8 members at batch 256: mean (min-max) | 1 at batch 64 |',
          '|---:|---:|---:|']
  for epoch in EPOCHS_SHOWN:
    if epoch > max(len(members), len(single)):
      break
    cells = []
    if epoch <= len(members):
      values = [v for k, v in members[epoch - 1].items()
                if re.fullmatch(r'val_member_\d+_accuracy', k)]
      cells.append(f'{sum(values) / len(values):.4f} ({min(values):.4f}-'
                   f'{max(values):.4f})')
    else:
      cells.append('')
    cells.append(f"{single[epoch - 1]['val_accuracy']:.4f}" if epoch <= len(single)
                 else '')
    rows.append(f'| {epoch} | {cells[0]} | {cells[1]} |')
  return rows


def study_table(texts: dict[str, str]) -> list[str]:
  """The study's runs: epochs run, validation and test accuracy against the study's."""
  rows = ['| run | epochs run | validation | test (mirror-averaged) | study |',
          '|---|---:|---:|---:|---:|']
  for name, study in STUDY.items():
    epochs = len(history(texts.get(f'{name}/history.csv', '')))
    found = {split: (float(a), float(f)) for _, split, a, f in
             _ACCURACY.findall(texts.get(f'{name}.log', ''))}
    if 'test' not in found:
      rows.append(f'| `configs/study/{name}.cfg` | {epochs} | did not finish | | '
                  f'{study:.2f} % |')
      continue
    plain, mirrored = found['test']
    rows.append(f"| `configs/study/{name}.cfg` | {epochs} | "
                f"{100 * found['validation'][0]:.2f} % | {100 * plain:.2f} % "
                f"({100 * mirrored:.2f} %) | {study:.2f} % |")
  return rows


def main(argv):
  del argv
  throughput, texts = read_window(pathlib.Path(_WINDOW.value))
  body = '\n'.join([
      '## A GPU used for several models at once (`bash benchmarks/gpu_window.sh`, '
      '`python benchmarks/gpu_report.py`)',
      '',
      f"Machine: {throughput['machine']}; {', '.join(throughput['devices'])}; Keras on "
      f"{throughput['backend']}, {throughput['policy']}; FERNet widths "
      f"{'-'.join(map(str, throughput['filters']))}, {throughput['kernel_size']}x"
      f"{throughput['kernel_size']} kernels ({throughput['forward_macs'] / 1e6:.0f} MMAC "
      f"a forward pass), augmentation in the model, {throughput['steps_per_execution']} "
      'steps per execution. Images/s sums the members; TFLOP/s counts 6x the forward '
      f'multiply-adds per image; peak: {_PEAK.value:g} TFLOP/s (dense bf16).',
      '',
      *throughput_table(throughput, _PEAK.value),
      '',
      'Validation accuracy per epoch, `benchmarks/configs/gpu_members8_b256.cfg` against '
      '`gpu_single_b64.cfg` (30 epochs each, run side by side):',
      '',
      *accuracy_table(texts),
      '',
      "The study's two runs to their end (float32, `python -m trainer --arrays`), against its "
      'test accuracy:',
      '',
      *study_table(texts),
  ])
  markdown_section.replace_section(_OUT.value, SECTION, body)
  print(body)


if __name__ == '__main__':
  app.run(main)
