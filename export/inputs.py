"""What the exporter reads: the trainer's run dir and the dataset it trained on."""

import dataclasses
import json
import pathlib

import numpy as np
import tensorflow_datasets as tfds

import fer_tfds  # noqa: F401  (registers fer_emotions with TFDS)

EXPECTED_INPUT = (48, 48, 1)


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
    """uint8 pixels -> float32 model input, exactly as in training."""
    normalisation = self.preprocessing['input']['normalisation']
    return pixels.astype(np.float32) * normalisation['scale'] + normalisation['offset']


def _flag_values(flags_txt: pathlib.Path) -> dict[str, str]:
  values = {}
  for line in flags_txt.read_text().splitlines():
    name, _, value = line.lstrip('-').partition('=')
    values[name] = value
  return values


def read_run(run_dir: str) -> TrainedRun:
  """Reads a finished trainer run dir.

  Raises:
    RunDirError: naming the missing file.
  """
  root = pathlib.Path(run_dir)
  needed = {name: root / name for name in ('inference.keras', 'preprocessing.json',
                                           'flags.txt')}
  for path in needed.values():
    if not path.is_file():
      raise RunDirError(f'{path} is missing: --run_dir must be a finished trainer run '
                        '(python -m trainer ... writes it at the end of training).')
  flag_values = _flag_values(needed['flags.txt'])
  return TrainedRun(
      root=root,
      model_path=needed['inference.keras'],
      preprocessing=json.loads(needed['preprocessing.json'].read_text()),
      dataset=flag_values.get('dataset', 'fer5_ck'),
      data_dir=flag_values.get('data_dir') or None,
  )


def load_split(run: TrainedRun, split: str, limit: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
  """(normalised float32 images (N, 48, 48, 1), integer labels) of one split."""
  builder = tfds.builder(f'fer_emotions/{run.dataset}', data_dir=run.data_dir)
  if not builder.is_prepared():
    raise RunDirError(
        f'fer_emotions/{run.dataset} (the run\'s dataset) is not built in '
        f'{builder.data_dir}; build it with python -m fer_tfds.build '
        f'--manual_dir=../shared/data --config={run.dataset}')
  dataset = builder.as_dataset(split=split, as_supervised=True, batch_size=-1)
  images, labels = tfds.as_numpy(dataset)
  if limit:
    images, labels = images[:limit], labels[:limit]
  return run.normalise(images), labels


def stratified_sample(images: np.ndarray, labels: np.ndarray, n: int, seed: int = 0
                      ) -> np.ndarray:
  """About `n` images, the same number from each class, picked at random."""
  rng = np.random.default_rng(seed)
  classes = np.unique(labels)
  per_class = max(1, n // len(classes))
  picked = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in classes]
  return images[rng.permutation(np.concatenate(picked))]
