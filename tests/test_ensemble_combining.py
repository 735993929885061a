"""benchmarks/ensemble_combining.py: the fitted rules it compares with the plain average."""

import sys

import numpy as np
import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / 'benchmarks'))
import ensemble_combining  # pylint: disable=g-import-not-at-top,wrong-import-position


def _confident(labels, classes, right):
  """Probabilities putting 0.9 on the label where `right`, else on the next class."""
  chosen = np.where(right, labels, (labels + 1) % classes)
  probabilities = np.full((len(labels), classes), 0.1 / (classes - 1))
  probabilities[np.arange(len(labels)), chosen] = 0.9
  return probabilities


def test_weights_outvote_a_member_that_is_always_wrong():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 5, 200)
  good = _confident(labels, 5, rng.random(200) < 0.8)
  wrong = _confident(labels, 5, np.zeros(200, bool))
  weights = ensemble_combining.fit_weights(np.stack([good, wrong]), labels)
  # Equal weights would tie the two on every face the good member gets right.
  assert weights[0] > weights[1]
  assert ensemble_combining.accuracy(weights[0] * good + weights[1] * wrong, labels) == (
      ensemble_combining.accuracy(good, labels))


def test_equal_weights_win_ties():
  rng = np.random.default_rng(1)
  labels = rng.integers(0, 5, 100)
  member = _confident(labels, 5, rng.random(100) < 0.7)
  weights = ensemble_combining.fit_weights(np.stack([member, member, member]), labels)
  np.testing.assert_allclose(weights, [1 / 3] * 3)


def test_class_offsets_restore_an_under_predicted_class():
  rng = np.random.default_rng(2)
  labels = rng.integers(0, 3, 300)
  probabilities = np.full((300, 3), 0.2)
  probabilities[np.arange(300), labels] = 0.6
  # Class 0 is always scored a little below class 1: never predicted.
  probabilities[labels == 0] = [0.38, 0.42, 0.2]
  log_probabilities = np.log(probabilities)
  offsets = ensemble_combining.fit_class_offsets(log_probabilities, labels)
  assert offsets[0] - offsets[1] > np.log(0.42 / 0.38)
  assert ensemble_combining.accuracy(log_probabilities + offsets, labels) == 1.0


def test_a_fitted_rule_wins_on_held_out_halves_only_where_there_is_something_to_fit():
  rng = np.random.default_rng(3)
  labels = rng.integers(0, 5, 400)
  good = _confident(labels, 5, rng.random(400) < 0.8)
  # An always-wrong member drags the plain average down; fitted weights mute it.
  skewed = ensemble_combining.compare(
      np.stack([good, _confident(labels, 5, np.zeros(400, bool))]), labels, halvings=4)
  assert set(skewed) == {'average', 'geometric', 'weighted', 'class offsets'}
  mean, difference, _ = skewed['weighted']
  assert difference > 0.05 and mean == pytest.approx(skewed['average'][0] + difference)
  # Two members equally good and independent: weights fitted on one half gain nothing
  # on the other.
  fair = ensemble_combining.compare(
      np.stack([_confident(labels, 5, rng.random(400) < 0.7) for _ in range(2)]), labels,
      halvings=4)
  assert fair['weighted'][1] <= 0.01
