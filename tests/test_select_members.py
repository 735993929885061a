"""trainer.select_members: choosing ensemble members on the validation split."""

import shutil

import numpy as np
import pytest

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


@pytest.mark.parametrize('shift_tta, views', [(0, 2), (1, 10)])
def test_select_members_writes_the_ranked_table(trained_run, tmp_path, shift_tta, views):
  twin = tmp_path / 'twin'
  shutil.copytree(trained_run, twin)
  out = tmp_path / 'selection.md'
  result = run_trainer(f'--candidates={trained_run},{twin}', '--max_members=2',
                       f'--shift_tta={shift_tta}', f'--out={out}',
                       module='trainer.select_members')
  assert result.returncode == 0, result.stderr[-3000:]
  rows = [line.split('|')[1:4] for line in out.read_text().splitlines()
          if line.startswith('| `')]
  # Twins score alike alone and together: the single runs rank before their pair.
  assert [members.count('`') // 2 for members, _, _ in rows] == [1, 1, 2]
  assert [int(runs) for _, runs, _ in rows] == [views, views, 2 * views]
  assert len({accuracy for _, _, accuracy in rows}) == 1
  assert 'python -m trainer.select_members --candidates=' in out.read_text()


def test_select_members_names_an_unfinished_candidate(trained_run, tmp_path):
  result = run_trainer(f'--candidates={trained_run},{tmp_path}',
                       module='trainer.select_members')
  assert result.returncode != 0
  assert 'is not a finished trainer run' in result.stderr
  assert 'Traceback' not in result.stderr
