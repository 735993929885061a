"""The deterministic, stratified 70/15/15 split.

For every (source, class) group of n images: train gets floor(0.70 n), validation
floor(0.15 n), test the rest. Which images go where is decided by sorting the group by
sha256(seed + path): a rule that depends only on the file names and the seed, so every
machine, Python version and archive form (zip or folder) gives the same split.
"""

from __future__ import annotations

import collections
import hashlib
import math
from collections.abc import Hashable, Iterable

from fer_common import contract

SPLITS = contract.SPLITS
TRAIN, VALIDATION, TEST = SPLITS
TRAIN_FRACTION = 0.70
VALIDATION_FRACTION = 0.15


def split_sizes(n: int) -> tuple[int, int, int]:
  """Returns the (train, validation, test) sizes of a group of `n` images."""
  n_train = math.floor(TRAIN_FRACTION * n)
  n_validation = math.floor(VALIDATION_FRACTION * n)
  return n_train, n_validation, n - n_train - n_validation


def _rank(seed: int, path: str) -> str:
  return hashlib.sha256(f'{seed}:{path}'.encode()).hexdigest()


def assign(items: Iterable[tuple[Hashable, str]], seed: int) -> dict[str, str]:
  """Maps each path to its split.

  Args:
    items: (group, path) pairs; a group is what is stratified over, e.g. (source,
      class). Paths must be unique.
    seed: changes which images land in which split, never how many.
  """
  groups = collections.defaultdict(list)
  for group, path in items:
    groups[group].append(path)
  assignment = {}
  for paths in groups.values():
    ranked = sorted(sorted(paths), key=lambda p: _rank(seed, p))
    n_train, n_validation, _ = split_sizes(len(ranked))
    for i, path in enumerate(ranked):
      assignment[path] = (
          TRAIN if i < n_train else VALIDATION if i < n_train + n_validation else TEST
      )
  return assignment
