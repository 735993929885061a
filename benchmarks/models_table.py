"""Writes the README's table of the shipped models from their report.json files:

  python benchmarks/models_table.py [--models=models] [--out=README.md]

Each number comes from `python -m export` (test accuracy, MACs and latency of the int8
file, on the machine its report names), `python -m export.yardstick --update_report`
(faces in frames, CK+ unseen) and `python -m export.calibration` (calibration error).
"""

import json
import pathlib

from absl import app
from absl import flags

import markdown_section

FLAGS = flags.FLAGS
SECTION = '<!-- models_table.py -->'
WHAT = {'accurate': ('`classify`\'s default', '4 FERNets, each on the face and its mirror '
                     'image'),
        'fast': ('`video`\'s, `serve`\'s and `bench`\'s default', '1 FERNet, FER-2013 only')}


def define_flags() -> None:
  """Defines the command-line flags."""
  flags.DEFINE_string('models', 'models', 'Folder with one folder per shipped model.')
  flags.DEFINE_string('out', 'README.md', 'Markdown file to update.')


def row(name: str, report: dict) -> str:
  """One model's row."""
  int8 = report['variants']['int8']
  robust = report['yardstick']['robustness']
  cross = report['yardstick'].get('cross_dataset')
  calibration = report.get('calibration', {}).get('int8')
  role, what = WHAT.get(name, ('', report['run_dir']))
  cells = [f'`{name}`: {role}' if role else f'`{name}`', what,
           f"{int8['macs'] / 1e6:,.0f}", f"{int8['latency']['median_ms']:.2f}",
           f"{100 * int8['accuracy']:.2f} %", f"{100 * robust['accuracy']:.2f} %",
           f"{100 * cross['accuracy']:.2f} %" if cross else '(trained on it)',
           f"{100 * calibration['ece_after']:.1f} %" if calibration else 'n/a']
  return '| ' + ' | '.join(cells) + ' |'


def main(argv):
  del argv
  rows = ['| model | what | MMAC a face | ms a face (x86, 1 thread) | test accuracy | in '
          'frames (yardstick) | CK+, unseen | calibration error |',
          '|---|---|---:|---:|---:|---:|---:|---:|']
  for folder in sorted(pathlib.Path(FLAGS.models).glob('*/report.json')):
    rows.append(row(folder.parent.name, json.loads(folder.read_text())))
  markdown_section.publish(FLAGS.out, SECTION, rows)


if __name__ == '__main__':
  define_flags()
  app.run(main)
