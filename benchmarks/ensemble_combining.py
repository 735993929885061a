"""Is the plain average the best way to combine an ensemble's members? Measured on the
validation split, each fitted rule judged on the half it was not fitted on:

  python benchmarks/ensemble_combining.py \\
      --members=runs/fernet_sgd,runs/fernet_long,runs/fernet_long_erase,runs/fernet_long_erase2 \\
      --out=docs/results/ensemble_combining.md

Each member predicts the validation split on the face and its mirror image
(`trainer.select_members`). Rules compared with the average of the probabilities, the one
`trainer.ensemble` builds:
- geometric: the average of the log-probabilities (nothing fitted);
- weighted: one weight per member, the best on one half of a grid of 0-4 per member;
- class offsets: one offset per class added to the log of the average, fitted on one half.
Each fitted rule is scored on the other half, over --halvings random halvings.
"""

import itertools
import pathlib
import shlex
import sys

from absl import app
from absl import flags
import numpy as np

from fer_common import contract
from trainer import ensemble
from trainer import select_members

FLAGS = flags.FLAGS
_SEED = 0
_WEIGHT_STEPS = 5  # weights 0..4 per member
_OFFSETS = np.linspace(-0.5, 0.5, 21)  # per-class offset candidates (log-probability)


def define_flags() -> None:
  """Defines the command-line flags (here, not at import: the tests import this module
  beside others that define --out)."""
  flags.DEFINE_list('members', None, 'Finished trainer run dirs of one dataset.')
  flags.DEFINE_integer('halvings', 20, 'Random halvings of the validation split.')
  flags.DEFINE_string('out', None, 'Also write the table to this markdown file.')
  flags.mark_flag_as_required('members')


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
  """Share of rows whose highest score is the label."""
  return float(np.mean(scores.argmax(-1) == labels))


def fit_weights(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """The member weights (summing to 1) of the grid that score best on these rows;
  `probabilities` is (members, rows, classes). Of equal accuracy, the first on the grid
  wins, so equal weights win ties against the weights of a subset."""
  members = probabilities.shape[0]
  grid = [np.array(w, float) for w in itertools.product(range(_WEIGHT_STEPS),
                                                        repeat=members) if any(w)]
  grid.sort(key=lambda w: np.ptp(w / w.sum()))  # equal weights first
  best = max(grid, key=lambda w: accuracy(np.tensordot(w, probabilities, 1), labels))
  return best / best.sum()


def fit_class_offsets(log_probabilities: np.ndarray, labels: np.ndarray,
                      sweeps: int = 3) -> np.ndarray:
  """Per-class offsets added to `log_probabilities` (rows, classes) that score best on
  these rows, by coordinate search over _OFFSETS."""
  offsets = np.zeros(log_probabilities.shape[1])
  for _ in range(sweeps):
    for c in range(len(offsets)):
      def score(value, c=c):
        trial = offsets.copy()
        trial[c] = value
        return accuracy(log_probabilities + trial, labels)
      offsets[c] = max(_OFFSETS, key=score)
  return offsets


def compare(probabilities: np.ndarray, labels: np.ndarray, halvings: int
            ) -> dict[str, tuple[float, float, float]]:
  """{rule: (mean held-out accuracy, mean and standard deviation of its difference from
  the plain average)} over `halvings` random halvings; `probabilities` is
  (members, rows, classes)."""
  rng = np.random.default_rng(_SEED)
  average = probabilities.mean(0)
  log_average = np.log(average)
  geometric = np.log(probabilities + 1e-12).mean(0)
  results = {'average': [], 'geometric': [], 'weighted': [], 'class offsets': []}
  for _ in range(halvings):
    order = rng.permutation(len(labels))
    fit, held = order[:len(order) // 2], order[len(order) // 2:]
    weights = fit_weights(probabilities[:, fit], labels[fit])
    offsets = fit_class_offsets(log_average[fit], labels[fit])
    results['average'].append(accuracy(average[held], labels[held]))
    results['geometric'].append(accuracy(geometric[held], labels[held]))
    results['weighted'].append(accuracy(
        np.tensordot(weights, probabilities[:, held], 1), labels[held]))
    results['class offsets'].append(accuracy(log_average[held] + offsets, labels[held]))
  base = np.array(results['average'])
  return {rule: (float(np.mean(v)), float(np.mean(np.array(v) - base)),
                 float(np.std(np.array(v) - base))) for rule, v in results.items()}


def markdown_table(compared: dict[str, tuple[float, float, float]]) -> str:
  """The comparison as a markdown table."""
  lines = ['| rule | held-out validation accuracy | against the average (± sd) |',
           '|---|---:|---:|']
  lines += [f'| {rule} | {mean:.2%} | {diff * 100:+.2f} pp (± {sd * 100:.2f}) |'
            for rule, (mean, diff, sd) in compared.items()]
  return '\n'.join(lines) + '\n'


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    by_member, labels = select_members.validation_probabilities(FLAGS.members, 256)
  except (ensemble.EnsembleError, contract.DatasetNotBuiltError) as e:
    sys.exit(f'error: {e}')
  table = markdown_table(compare(np.stack(list(by_member.values())), labels,
                                 FLAGS.halvings))
  print(table)
  if FLAGS.out:
    command = shlex.join(['python', 'benchmarks/ensemble_combining.py'] + sys.argv[1:])
    pathlib.Path(FLAGS.out).write_text(
        '# Combining the members: the plain average against fitted rules\n\n'
        f'Written by `{command}`. Each fitted rule is fitted on a random half of the '
        'validation split and scored on the other half; means over the halvings.\n\n'
        + table)
    print(f'Wrote {FLAGS.out}.')


if __name__ == '__main__':
  define_flags()
  app.run(main)
