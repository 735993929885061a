"""Knowledge distillation targets (Hinton et al. 2015, at temperature 1): a finished run's
or ensemble's class probabilities on the train split, blended with the true labels.

The teacher runs once, on the un-augmented training images, before training starts; the
student then learns from those targets under its own augmentation (mirrored views and
small shifts barely change what a face shows).
"""

import keras
import numpy as np

from trainer import data
from trainer import ensemble


class TeacherError(ValueError):
  """The --teacher dir cannot teach this run; the message says why."""


def teacher_targets(teacher_dir: str, dataset_builder, dataset: str, weight: float,
                    batch_size: int = 256) -> np.ndarray:
  """(train examples, classes) float32 targets in train-split order:
  `weight` * the teacher's probabilities + (1 - `weight`) * the one-hot labels.

  Args:
    teacher_dir: a finished trainer run or `trainer.ensemble` dir.
    dataset_builder: the built fer_emotions builder the student trains on.
    dataset: its config name, which the teacher must have been trained on.
    weight: the teacher's share of each target, in [0, 1].
    batch_size: batch size of the teacher's pass over the train split.

  Raises:
    TeacherError: the teacher is unfinished or was trained on another dataset.
  """
  try:
    (teacher,) = ensemble.read_members([teacher_dir])
  except ensemble.EnsembleError as e:
    raise TeacherError(f'--teacher: {e}') from e
  teacher_dataset = ensemble.member_dataset(teacher)
  if teacher_dataset != dataset:
    raise TeacherError(f'--teacher={teacher_dir} was trained on {teacher_dataset}, this '
                       f'run on {dataset}.')
  model = keras.models.load_model(teacher.inference_model, compile=False)
  train_split = data.pipeline(dataset_builder, 'train', batch_size, training=False)
  print(f'Teacher {teacher_dir}: predicting the train split once.', flush=True)
  probabilities = model.predict(train_split.map(lambda images, _: images), verbose=2)
  one_hot = np.concatenate([labels for _, labels in train_split.as_numpy_iterator()])
  return (weight * probabilities + (1 - weight) * one_hot).astype(np.float32)
