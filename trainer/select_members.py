"""Chooses the runs for `trainer.ensemble` on the validation split alone:

  python -m trainer.select_members --candidates=runs/a,runs/b,runs/c --max_members=3 \\
      --out=docs/results/member_selection.md

Each candidate predicts the validation split once, on the image and its mirror image (as
`trainer.ensemble --flip_tta` averages them), and with --shift_tta=N also on the four
N-pixel shifts of both (as `trainer.ensemble --flip_tta --shift_tta=N`); every
combination of up to --max_members candidates is then scored by the accuracy of its
averaged probabilities. The test split stays unseen until the chosen ensemble is built
and evaluated by `trainer.ensemble`.
Choosing the best of many combinations flatters its validation accuracy: its test
accuracy is the honest number.
"""

import itertools
import pathlib
import shlex
import sys

from absl import app
from absl import flags
import keras
import numpy as np

from fer_common import contract
from trainer import data
from trainer import ensemble
from trainer import views
from trainer import reports

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags of the selection tool."""
  flags.DEFINE_list('candidates', None, 'Finished trainer run dirs of one dataset.')
  flags.DEFINE_integer('max_members', 3, 'Largest combination scored.', lower_bound=1)
  flags.DEFINE_integer('top', 5, 'Combinations listed per size.', lower_bound=1)
  flags.DEFINE_integer('shift_tta', 0, 'Also average each candidate over the image '
                       'shifted this many pixels each way, as trainer.ensemble does; 0: '
                       'off.', lower_bound=0, upper_bound=contract.IMAGE_SHAPE[0] // 4)
  flags.DEFINE_string('out', None, 'Also write the table to this markdown file.')
  flags.DEFINE_integer('batch_size', 256, 'Evaluation batch size.')
  flags.mark_flags_as_required(['candidates'])


def validation_probabilities(candidates: list[str], batch_size: int, shift_tta: int = 0
                             ) -> tuple[dict[str, np.ndarray], np.ndarray]:
  """({candidate: its probabilities averaged over the views}, labels) on the validation
  split of the candidates' dataset; the views are the image and its mirror, and with
  `shift_tta` their shifts too, built by `views.build_ensemble` as the shipped
  ensemble builds them.

  Raises:
    ensemble.EnsembleError: a candidate is unfinished or from another dataset.
  """
  runs = ensemble.read_members(candidates)
  first_flags = contract.read_flags(runs[0].flags)
  builder = data.builder(first_flags['dataset'], first_flags.get('data_dir') or None)
  validation = data.pipeline(builder, 'validation', batch_size, training=False)
  probabilities, labels = {}, None
  for path, run in zip(candidates, runs):
    model = views.build_ensemble(
        [keras.models.load_model(run.inference_model, compile=False)], flip_tta=True,
        shift_tta=shift_tta)
    probabilities[path], labels = reports.predict(model, validation)
    accuracy = np.mean(probabilities[path].argmax(-1) == labels)
    print(f'{path}: validation accuracy {accuracy:.4f} (averaged over '
          f'{views.views_per_member(True, shift_tta)} views)', flush=True)
  return probabilities, labels


def rank_combinations(probabilities: dict[str, np.ndarray], labels: np.ndarray,
                      max_members: int) -> list[tuple[tuple[str, ...], float]]:
  """(members, validation accuracy of their averaged probabilities) for every combination
  of 1 to `max_members` candidates, best first; of equal accuracy, fewer members first."""
  scored = []
  for size in range(1, min(max_members, len(probabilities)) + 1):
    for members in itertools.combinations(probabilities, size):
      averaged = sum(probabilities[member] for member in members)
      scored.append((members, float(np.mean(averaged.argmax(-1) == labels))))
  return sorted(scored, key=lambda item: (-item[1], len(item[0])))


def markdown_table(ranked: list[tuple[tuple[str, ...], float]], top: int,
                   views: int) -> str:
  """The `top` best combinations of each size as a markdown table; `views`: model runs
  per member and face."""
  lines = ['| members | model runs per face | validation accuracy |', '|---|---|---|']
  for size in sorted({len(members) for members, _ in ranked}):
    best = [item for item in ranked if len(item[0]) == size][:top]
    lines += [f'| {", ".join(f"`{pathlib.PurePath(m).name}`" for m in members)} | '
              f'{views * size} | {accuracy:.2%} |' for members, accuracy in best]
  return '\n'.join(lines) + '\n'


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    probabilities, labels = validation_probabilities(FLAGS.candidates, FLAGS.batch_size,
                                                     FLAGS.shift_tta)
  except (ensemble.EnsembleError, contract.DatasetNotBuiltError) as e:
    sys.exit(f'error: {e}')
  table = markdown_table(rank_combinations(probabilities, labels, FLAGS.max_members),
                         FLAGS.top, views.views_per_member(True, FLAGS.shift_tta))
  print(table)
  if FLAGS.out:
    command = shlex.join(['python', '-m', 'trainer.select_members'] + sys.argv[1:])
    pathlib.Path(FLAGS.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(FLAGS.out).write_text(
        f'# Ensemble members chosen on the validation split\n\nWritten by `{command}`. '
        'Combinations are ranked on validation accuracy only (the best of many is '
        'flattered); test accuracy of the chosen ensemble: RESULTS.md.\n\n' + table)
    print(f'Wrote {FLAGS.out}.')


if __name__ == '__main__':
  define_flags()
  app.run(main)
