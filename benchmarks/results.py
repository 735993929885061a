"""Writes docs/results/runs.md, the per-run detail behind RESULTS.md, from finished run
dirs and the shipped export report.

  python benchmarks/results.py --runs=runs/fernet[,runs/seed_improved,...] \
      [--ensembles=runs/<ensemble>,...] --export_report=models/accurate/report.json

Every number in it comes from the files this script reads; it copies each run's confusion
matrix and curves to docs/results/<run>/ and plots accuracy vs. training time from the
runs' TensorBoard logs.
"""

import json
import pathlib
import shutil

from absl import app
from absl import flags
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

from fer_common import contract
from fer_common import files
from trainer import views
from trainer import config as config_lib
from trainer import reports
from trainer import run_dir

FLAGS = flags.FLAGS
_ASSETS = pathlib.Path('docs/results')


def define_flags() -> None:
  """Defines the command-line flags of the results script."""
  flags.DEFINE_list('runs', ['runs/fernet'], 'Finished trainer run dirs.')
  flags.DEFINE_list('ensembles', [], 'Run dirs written by python -m trainer.ensemble.')
  flags.DEFINE_string('export_report', 'models/accurate/report.json',
                      'report.json of the shipped export.')
  flags.DEFINE_string('out', str(_ASSETS / 'runs.md'), 'Where to write.')

# The reference study (its paper's numbers, not measured here).
STUDY = [
    ('study: baseline (FER-2013)', {'test': 66.58}),
    ('study: improved (+CK+)', {'train': 72.13, 'validation': 68.22, 'test': 68.17}),
]


def _epoch_accuracy(run: pathlib.Path, split: str) -> list[tuple[float, float]]:
  """(wall time, accuracy) per epoch from a run's TensorBoard log of `split`."""
  events = event_accumulator.EventAccumulator(str(run / 'tensorboard' / split),
                                              size_guidance={'tensors': 0})  # keep all
  events.Reload()
  return [(e.wall_time, float(tensor_util.make_ndarray(e.tensor_proto)))
          for e in events.Tensors('epoch_accuracy')]


def validation_over_time(run: pathlib.Path) -> tuple[list[float], list[float]] | None:
  """(minutes of training, validation accuracy in %) per epoch; None for a run without
  TensorBoard logs (python -m trainer --arrays writes none).

  Minutes count each epoch's own duration (the gaps between epoch ends, the first epoch
  taken as long as the second), so pauses between resumed sessions do not count.
  """
  if not (run / 'tensorboard' / 'validation').exists():
    return None
  ends = sorted(_epoch_accuracy(run, 'validation'))
  durations = [b[0] - a[0] for a, b in zip(ends, ends[1:])]
  durations = [min(d, 2 * min(durations)) for d in durations]  # a resume gap
  minutes = [durations[0] / 60]
  for d in durations:
    minutes.append(minutes[-1] + d / 60)
  return minutes, [100 * accuracy for _, accuracy in ends]


def run_machines(run: pathlib.Path) -> str:
  """The machine(s) a run trained on, from its machine.txt (one line per (re)start)."""
  path = contract.RunDir(run).machine
  if not path.exists():
    return '(not recorded)'
  seen = [line.split(' ', 1)[1] for line in path.read_text().splitlines() if ' ' in line]
  return '; '.join(dict.fromkeys(seen))


def run_flags(run: pathlib.Path) -> dict[str, str]:
  """The run's flags.txt as {name: value}."""
  return contract.read_flags(run / 'flags.txt')


def flags_differing(ours: dict[str, str], theirs: dict[str, str],
                    defaults: dict[str, str] | None = None) -> str:
  """The flags in `ours` that differ from `theirs` (where files are and how the run
  executed aside), as '--name=value' text. A flag missing from one run (older than the
  flag) counts as its value in `defaults`."""
  differing = run_dir.differing_flags(theirs, ours, defaults,
                                     run_dir.LOCATION_FLAGS | run_dir.EXECUTION_FLAGS)
  return ' '.join(f'`--{n}={value}`' for n, (_, value) in differing.items()) or (
      '(the reference)')


# Marks a validation accuracy of a model that trained on the validation split.
NOT_HELD_OUT = ' †'


def trained_on_validation(run: pathlib.Path) -> bool:
  """Whether a run, or a member of an ensemble, trained on the validation split."""
  flags_used = run_flags(run)
  if 'members' in flags_used:
    return any(trained_on_validation(member) for member in ensemble_members(run))
  return 'validation' in flags_used.get('train_split', 'train').split('+')


def validation_cell(run: pathlib.Path, accuracy: float) -> str:
  """A validation accuracy (%) table cell, marked NOT_HELD_OUT where the run trained on
  the validation split."""
  return f'{100 * accuracy:.2f}' + (NOT_HELD_OUT if trained_on_validation(run) else '')


def plotted_over_time(run: pathlib.Path) -> bool:
  """Whether a run's validation curve belongs in the accuracy-vs-time plot: trained
  from scratch (no --init_from), the validation split held out."""
  return not run_flags(run).get('init_from') and not trained_on_validation(run)


def ensemble_members(run: pathlib.Path) -> list[pathlib.Path]:
  """The run dirs an ensemble run dir averages."""
  return [pathlib.Path(m) for m in run_flags(run)['members'].split(',')]


def test_time_views(ensemble_flags: dict[str, str]) -> tuple[str, int]:
  """What each member of an ensemble sees (as table text) and how many views that is."""
  shift = int(ensemble_flags.get('shift_tta', 0))
  flip = ensemble_flags.get('flip_tta') == 'true'
  names = ['image'] + ([f'{len(views.SHIFT_DIRECTIONS)} shifts of {shift} px']
                       if shift else [])
  return (', '.join(names) + (', mirrored' if flip else ''),
          views.views_per_member(flip, shift))


def training_minutes(runs: list[pathlib.Path]) -> float | None:
  """The runs' training minutes together; None if one has no TensorBoard logs."""
  over_time = [validation_over_time(run) for run in runs]
  return sum(o[0][-1] for o in over_time) if all(over_time) else None


def minutes_cell(minutes: float | None) -> str:
  """A table cell of training minutes; n/a where they are unknown (None)."""
  return 'n/a' if minutes is None else f'{minutes:.0f}'


def ensemble_row(run: pathlib.Path, minutes: float | None) -> str:
  """The ensembles table's row of an ensemble run dir: members, their total training
  `minutes` (None: n/a), model evaluations per image, accuracies."""
  members = ensemble_members(run)
  views, count = test_time_views(run_flags(run))
  metrics = json.loads((run / 'reports' / 'metrics.json').read_text())
  return (f"| `{run.name}` | {', '.join(f'`{m.name}`' for m in members)} | "
          f"{minutes_cell(minutes)} | {views} | {len(members) * count} | "
          f"{100 * metrics['train']['accuracy']:.2f} | "
          f"{validation_cell(run, metrics['validation']['accuracy'])} | "
          f"{100 * metrics['test']['accuracy']:.2f} | "
          f"{100 * metrics['test']['macro_f1']:.2f} |")


def main(argv):
  del argv
  runs = [pathlib.Path(r) for r in FLAGS.runs]
  lines = ['# Per-run results', '',
           'Written by `python benchmarks/results.py --runs=' + ','.join(FLAGS.runs) +
           (' --ensembles=' + ','.join(FLAGS.ensembles) if FLAGS.ensembles else '') +
           f' --export_report={FLAGS.export_report}` from the run dirs\' '
           '`reports/metrics.json`, `history.csv` and TensorBoard logs; each run was made '
           'by `python -m trainer --flagfile=configs/<folder>/<run>.cfg` (`shipped/`, '
           '`study/` or `experiments/`; fine-tuning runs count the fine-tuning\'s '
           'minutes alone; long runs on a GPU: `python -m trainer --arrays`, '
           'docs/scaling.md) on the machine its `machine.txt` names (below).',
           '',
           '## Accuracy (%) against the study', '',
           '| model | epochs | minutes | train | validation | test | test, flip-TTA '
           '| test macro F1 | test loss |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|']
  for name, numbers in STUDY:
    cells = [f"{numbers[k]:.2f}" if k in numbers else '' for k in
             ('train', 'validation', 'test')]
    lines.append(f'| {name} | | | ' + ' | '.join(cells) + ' | | | |')
  fig, ax = plt.subplots(figsize=(11, 5))
  ablations = ['', f'## Ablations against `{runs[0].name}`', '',
               '| run | flags that differ | minutes | test | Δ test (pp) |',
               '|---|---|---:|---:|---:|']
  reference_test, reference_flags = None, run_flags(runs[0])
  defaults = config_lib.default_values()
  for run in runs:
    flags_used = run_flags(run)
    metrics = json.loads((run / 'reports' / 'metrics.json').read_text())
    epochs = len((run / 'history.csv').read_text().splitlines()) - 1
    over_time = validation_over_time(run)
    minutes = minutes_cell(over_time and over_time[0][-1])
    test = 100 * metrics['test']['accuracy']
    reference_test = test if reference_test is None else reference_test
    ablations.append(f'| `{run.name}` | {flags_differing(flags_used, reference_flags, defaults)} | '
                     f'{minutes} | {test:.2f} | {test - reference_test:+.2f} |')
    lines.append(
        f"| `{run.name}` ({flags_used['dataset']}, filters {flags_used['filters']}, "
        f"kernel {flags_used['kernel_size']}) | "
        f"{epochs} | {minutes} | "
        f"{100 * metrics['train']['accuracy']:.2f} | "
        f"{validation_cell(run, metrics['validation']['accuracy'])} | "
        f"{test:.2f} | {100 * metrics['test_flip_tta']['accuracy']:.2f} | "
        f"{100 * metrics['test']['macro_f1']:.2f} | {metrics['test']['loss']:.4f} |")
    if over_time and plotted_over_time(run):
      ax.plot(*over_time, marker='o', label=run.name)
  ax.axhline(68.22, color='grey', ls='--', label='study (improved), validation')
  ax.set(xlabel='training time (minutes, CPU)', ylabel='validation accuracy (%)',
         title='Validation accuracy vs. training time')
  ax.grid(alpha=0.3)
  ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1), fontsize=7, ncol=2)
  fig.tight_layout()
  _ASSETS.mkdir(parents=True, exist_ok=True)
  reports.save_figure(fig, _ASSETS / 'accuracy_vs_time.png')
  lines += ['', 'Losses are plain cross-entropy on the un-augmented split (no label '
            'smoothing). flip-TTA averages the probabilities of each test image and its '
            f'mirror image.{NOT_HELD_OUT}: trained on the validation split too '
            '(`--train_split=train+validation`), so its validation accuracy is not held '
            'out. Minutes: training time from the TensorBoard logs (n/a: a run '
            'trained by `python -m trainer --arrays`, which writes none), on these machines:', '',
            *[f'- `{run.name}`: {run_machines(run)}' for run in runs], '',
            'The plot shows the runs trained from scratch with the validation split held '
            'out (no `--init_from`, no `--train_split=train+validation`), where '
            'TensorBoard logs time them.', '',
            '![accuracy vs time](accuracy_vs_time.png)', *ablations, '']
  ensembles = [pathlib.Path(r) for r in FLAGS.ensembles]
  if ensembles:
    lines += ['## Ensembles and test-time views inside the model', '',
              'Made by `python -m trainer.ensemble --members=... [--flip_tta] '
              '[--shift_tta=N] --run_dir=runs/<ensemble>` from the runs above: one Keras '
              'model that averages its members\' probabilities over the image and its '
              'views (mirror image, shifted copies), so the exported .tflite does the '
              'same on the device. "Evaluations" is what it costs: member models run per '
              'image; minutes: the members\' training time together;'
              f'{NOT_HELD_OUT}: a member trained on the validation split.', '',
              '| ensemble | members | minutes | views | evaluations | train | validation '
              '| test | test macro F1 |', '|---|---|---:|---|---:|---:|---:|---:|---:|',
              *[ensemble_row(run, training_minutes(ensemble_members(run)))
                for run in ensembles], '']
  for run in runs + ensembles:
    lines += [f'## `{run.name}`: per-class test report', '', '```',
              (run / 'reports' / 'classification_report.txt').read_text().rstrip(), '```',
              '']
    assets = _ASSETS / run.name
    assets.mkdir(parents=True, exist_ok=True)
    for png, title in (('confusion_matrix.png', 'confusion matrix'), ('curves.png', 'curves')):
      if (run / 'reports' / png).exists():  # an ensemble has no curves
        shutil.copy(run / 'reports' / png, assets / png)
        lines += [f'![{title}]({run.name}/{png})', '']
  report = pathlib.Path(FLAGS.export_report)
  if report.exists():
    markdown = report.with_suffix('.md').read_text().split('\n', 1)[1]
    lines += ['## TFLite variants (the shipped export)', '',
              f'From `{report.with_suffix(".md")}` (`python -m export`):', '',
              markdown.replace('\n## ', '\n### ')]
  files.write_text(FLAGS.out, '\n'.join(lines).rstrip() + '\n')
  print(f'Wrote {FLAGS.out}')


if __name__ == '__main__':
  define_flags()
  app.run(main)
