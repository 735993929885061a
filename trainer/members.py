"""Several FERNets trained at once in one program (`trainer.array_fit --members_at_once=K`).

One Keras model holds K members, each its own augmentation layers (seeded --seed + k)
followed by its own FERNet, all fed the same batches; it has one output per member, and
its loss is the sum of the members' losses. The gradient of each member's weights is
then that member's own, and an element-wise optimiser (Adam, AdamW, SGD) updates each
member as if it trained alone on these batches. It is meant for an accelerator that one
small FERNet leaves mostly idle (benchmarks/training_throughput.py measures what a step
of K members costs).

A members run dir holds the run's flags, machine.txt, history.csv (each member's metrics
in its own columns) and backup/, and `member_<k>/` for each member: a finished run dir
of its own (flags.txt, preprocessing.json, inference.keras) that `trainer.evaluate`,
`trainer.ensemble` and `export` take like any other.
"""

import keras
import numpy as np

from fer_common import contract
from fer_common import files
from fer_common.contract import RunDir
from trainer import augment
from trainer import callbacks
from trainer import recipe
from trainer.config import TrainConfig


def build_training_model(num_classes: int, steps_per_epoch: int, config: TrainConfig
                         ) -> tuple[list[keras.Model], keras.Model]:
  """(the FERNets of the config's --members_at_once members, the compiled training model
  with one output per member)."""
  inputs = keras.Input(contract.IMAGE_SHAPE, name='image')
  fernets, outputs = [], []
  for k in range(config.members_at_once):
    augmenter = augment.build_augmenter(recipe.augment_config(config), seed=config.seed + k)
    augment.allow_xla(augmenter)
    fernets.append(recipe.build_fernet(num_classes, config))
    outputs.append(keras.Sequential([augmenter, fernets[-1]], name=f'member_{k}')(inputs))
  training_model = keras.Model(inputs, outputs, name='fernet_members')
  recipe.compile_for_training(training_model, steps_per_epoch, config)
  return fernets, training_model


def targets(labels: np.ndarray, members: int) -> np.ndarray | list[np.ndarray]:
  """The training targets of `members` members: the labels for one, a list for more."""
  return labels if members == 1 else [labels] * members


def member_runs(run: RunDir, members: int) -> list[RunDir]:
  """The run dirs of the members of a run of `members` members."""
  return [RunDir(run.root / f'member_{k}') for k in range(members)]


def finished(run: RunDir, members: int) -> bool:
  """Whether every member of the run has its final files."""
  return all(member.unfinished_reason() is None for member in member_runs(run, members))


def save_members(run: RunDir, fernets: list[keras.Model], class_names: list[str],
                 config: TrainConfig) -> list[keras.Model]:
  """Saves each member as a finished run dir in `run` (the run's flags, preprocessing,
  float32 inference model last); returns the inference models."""
  flags = contract.read_flags(run.flags)
  inference_models = []
  for member, fernet in zip(member_runs(run, len(fernets)), fernets):
    member.root.mkdir(parents=True, exist_ok=True)
    files.write_text(member.flags, contract.flags_text(
        {**flags, 'run_dir': str(member.root), 'members_at_once': '1'}))
    inference = recipe.build_fernet(len(class_names), config, dtype_policy='float32')
    inference.set_weights(fernet.get_weights())
    contract.write_preprocessing(member.preprocessing, class_names)
    callbacks.save_model(inference, member.inference_model)
    inference_models.append(inference)
  return inference_models
