"""trainer.select_members: choosing ensemble members on the validation split."""

import shutil

import numpy as np

from trainer import select_members
from trainer_helpers import run_trainer


def test_combinations_are_ranked_by_the_accuracy_of_their_average():
  labels = np.array([0, 1, 1])
  # a and b are each right on 2 of 3 and together on all; c is always wrong.
  probabilities = {'a': np.array([[.9, .1], [.4, .6], [.9, .1]]),
                   'b': np.array([[.6, .4], [.55, .45], [.05, .95]]),
                   'c': np.array([[0., 1.], [1., 0.], [1., 0.]])}
  ranked = select_members.rank_combinations(probabilities, labels, max_members=2)
  assert [members for members, _ in ranked] == [
      ('a', 'b'), ('a',), ('b',), ('c',), ('a', 'c'), ('b', 'c')]  # ties: fewer first
  np.testing.assert_allclose([accuracy for _, accuracy in ranked],
                             [1, 2 / 3, 2 / 3, 0, 0, 0])


def test_select_members_writes_the_ranked_table(trained_run, tmp_path):
  twin = tmp_path / 'twin'
  shutil.copytree(trained_run, twin)
  out = tmp_path / 'selection.md'
  result = run_trainer(f'--candidates={trained_run},{twin}', '--max_members=2',
                       f'--out={out}', module='trainer.select_members')
  assert result.returncode == 0, result.stderr[-3000:]
  rows = [line for line in out.read_text().splitlines() if line.startswith('| `')]
  # Twins score alike alone and together: the single runs rank before their pair.
  assert [row.count('`') // 2 for row in rows] == [1, 1, 2]
  assert len({row.rsplit('|', 2)[1] for row in rows}) == 1
  assert 'python -m trainer.select_members --candidates=' in out.read_text()


def test_select_members_names_an_unfinished_candidate(trained_run, tmp_path):
  result = run_trainer(f'--candidates={trained_run},{tmp_path}',
                       module='trainer.select_members')
  assert result.returncode != 0
  assert 'is not a finished trainer run' in result.stderr
  assert 'Traceback' not in result.stderr
