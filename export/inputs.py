"""What the exporter reads: the trainer's run dir and the dataset it trained on."""

import dataclasses
import pathlib

import numpy as np

from fer_common import contract
from fer_tfds import built


class RunDirError(FileNotFoundError):
  """The run dir lacks what the exporter needs."""


@dataclasses.dataclass(frozen=True)
class TrainedRun:
  """The parts of a trainer run dir that export reads."""

  root: pathlib.Path
  model_path: pathlib.Path
  preprocessing: dict  # the run's preprocessing.json
  dataset: str
  data_dir: str | None

  @property
  def labels(self) -> list[str]:
    return list(self.preprocessing['labels'])

  def normalise(self, pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 model input, as the run recorded it."""
    return contract.apply_normalisation(pixels.astype(np.float32),
                                        self.preprocessing['input']['normalisation'])


def read_run(run_dir: str) -> TrainedRun:
  """Reads a finished trainer run dir.

  Raises:
    RunDirError: naming the missing or damaged file.
  """
  run = contract.RunDir(pathlib.Path(run_dir))
  reason = run.unfinished_reason()
  if reason:
    raise RunDirError(f'{reason}: --run_dir must be a finished trainer run (python -m '
                      'trainer ... writes it at the end of training).')
  flag_values = contract.read_flags(run.flags)
  # The trainer writes every flag: a flags.txt without a known --dataset is damaged, and
  # guessing the dataset would measure the model on faces it may have trained on.
  if flag_values.get('dataset') not in contract.DATASET_CONFIGS:
    raise RunDirError(f'{run.flags} names no dataset the trainer knows (--dataset='
                      f'{flag_values.get("dataset")!r}): it is damaged; restore it from '
                      'a copy of the run dir or train again.')
  return TrainedRun(
      root=run.root,
      model_path=run.inference_model,
      preprocessing=contract.read_preprocessing(run.preprocessing),
      dataset=flag_values['dataset'],
      data_dir=flag_values.get('data_dir') or None,
  )


def load_split(run: TrainedRun, split: str, limit: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
  """(images (N, 48, 48, 1) normalised as the run was trained, integer labels) of one
  split of the run's dataset.

  Raises:
    contract.DatasetNotBuiltError: with the command that builds it.
  """
  images, labels, _ = built.split_arrays(run.dataset, split, run.data_dir)
  return run.normalise(images[:limit]), labels[:limit]


def stratified_sample(images: np.ndarray, labels: np.ndarray, n: int, seed: int = 0
                      ) -> np.ndarray:
  """About `n` images, the same number from each class, picked at random."""
  rng = np.random.default_rng(seed)
  classes = np.unique(labels)
  per_class = max(1, n // len(classes))
  picked = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in classes]
  return images[rng.permutation(np.concatenate(picked))]
