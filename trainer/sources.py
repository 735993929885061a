"""Where a run's examples come from, as inputs of Keras `fit()`: the built TFDS dataset
through tf.data (trainer.data), or numpy arrays of it (--arrays, trainer.arrays) where
only Keras and JAX are installed. Both give the same targets (one per member) and the
same per-example weights (recipe.example_weights), so every engine trains one recipe.

TensorFlow is imported only by the TFDS source.
"""

import functools

import keras
import numpy as np

from fer_common import contract
from trainer import recipe as recipe_lib
from trainer import run_dir
from trainer import views
from trainer.config import TrainConfig


class TfdsSource:
  """The built dataset of `config`, every record checked before training (data.builder).

  Raises (on creation):
    contract.DatasetNotBuiltError, contract.DatasetDamagedError: with the commands that
      build it again.
  """

  def __init__(self, config: TrainConfig):
    from trainer import data  # pylint: disable=g-import-not-at-top (imports TensorFlow)
    self._data, self._config = data, config
    self.builder = data.builder(config.dataset, config.data_dir)
    self.class_names = data.class_names(self.builder)
    self.train_examples = self.builder.info.splits[config.train_split].num_examples
    self._evaluation = None

  def class_counts(self) -> list[int]:
    """Examples of each class in the train split."""
    return self._data.class_counts(self.builder, self._config.train_split)

  def evaluation(self) -> dict:
    """Un-augmented pipelines of every split (validation, reports)."""
    if self._evaluation is None:
      self._evaluation = self._data.evaluation_pipelines(
          self.builder, self._config.batch_size, self._config.eval_limit)
    return self._evaluation

  def fit_inputs(self, recipe: recipe_lib.Recipe, steps_per_epoch: int,
                 keep_order: bool = False) -> dict:
    """fit()'s data arguments: the repeated, shuffled training pipeline and validation.

    keep_order: training batches keep their seeded order, as every worker of a
      multi-worker run needs.
    """
    from trainer import augment  # pylint: disable=g-import-not-at-top
    from trainer import distill  # pylint: disable=g-import-not-at-top
    config, data = self._config, self._data
    in_dataset = config.augment_on == 'dataset'
    teacher = distill.teacher_targets(config.teacher, self.builder, config.dataset,
                                      config.teacher_weight) if config.teacher else None
    train = data.pipeline(
        self.builder, config.train_split, config.batch_size, training=True,
        seed=config.seed, shuffle_buffer=config.shuffle_buffer,
        augment=(lambda x: recipe.augmenters[0](x, training=True)) if in_dataset else None,
        mix=augment.build_mixup(config.mixup, seed=config.seed) if config.mixup else None,
        targets=teacher, keep_order=keep_order)
    members, weights = len(recipe.fernets), recipe.class_weights

    def as_trained(images, labels):
      if weights is None:
        return images, recipe_lib.targets(labels, members)
      return (images, recipe_lib.targets(labels, members),
              recipe_lib.example_weights(weights, labels))

    validation = self.evaluation()['validation'].map(
        lambda images, labels: (images, recipe_lib.targets(labels, members)))
    return {'x': train.map(as_trained), 'validation_data': validation,
            'steps_per_epoch': steps_per_epoch, 'shuffle': False}  # tf.data shuffles

  def report(self, run: contract.RunDir, inference_models: list, augmenter) -> str:
    """Writes each member's reports into its run dir; returns a line to print."""
    from trainer import dead_relus  # pylint: disable=g-import-not-at-top
    from trainer import reports  # pylint: disable=g-import-not-at-top
    lines = []
    for member, inference in zip(run_dir.member_runs(run, len(inference_models)),
                                 inference_models):
      results = reports.write_all(
          inference, self.evaluation(), self.class_names, run.history,
          reports.augmented_batch(augmenter, self.evaluation()['train']), member.reports)
      lines.append(f"Run dir {member.root}: test accuracy "
                   f"{results['test']['accuracy']:.4f} "
                   f"(flip-TTA {results['test_flip_tta']['accuracy']:.4f}), validation "
                   f"{results['validation']['accuracy']:.4f}, train "
                   f"{results['train']['accuracy']:.4f}.")
      warning = dead_relus.collapse_warning(results['dead_relu_fraction'])
      if warning:
        lines.append(warning)
    return '\n'.join(lines)


def model_inputs(images: np.ndarray, labels: np.ndarray, num_classes: int
                 ) -> tuple[np.ndarray, np.ndarray]:
  """(normalised float32 images, one-hot float32 labels) from uint8 images, int labels."""
  return (contract.normalise(images.astype(np.float32)),
          np.eye(num_classes, dtype=np.float32)[labels])


def training_arrays(by_split: dict[str, tuple[np.ndarray, np.ndarray]], train_split: str
                    ) -> tuple[np.ndarray, np.ndarray]:
  """(images, labels) of the splits `train_split` names ('train', 'train+validation')."""
  parts = [by_split[name] for name in train_split.split('+')]
  return tuple(np.concatenate(arrays) for arrays in zip(*parts))


class ArraysSource:
  """The numpy arrays of --arrays (trainer.arrays; no TensorFlow needed).

  Raises (on creation):
    arrays.ArraysFileError: naming the file and the command that writes it.
  """

  def __init__(self, config: TrainConfig):
    from trainer import arrays  # pylint: disable=g-import-not-at-top
    self._config = config
    self.splits, self.class_names = arrays.load(config.arrays, config.dataset)
    self._train_labels = training_arrays(self.splits, config.train_split)[1]
    self.train_examples = len(self._train_labels)

  @functools.cached_property
  def _inputs(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Model inputs of every split held and of the training split(s) ('training'),
    normalised once for the budget's probe, the run and the report."""
    result = {split: model_inputs(*arrays, len(self.class_names))
              for split, arrays in self.splits.items()}
    result['training'] = training_arrays(result, self._config.train_split)
    return result

  def class_counts(self) -> list[int]:
    """Examples of each class in the train split."""
    return np.bincount(self._train_labels, minlength=len(self.class_names)).tolist()

  def fit_inputs(self, recipe: recipe_lib.Recipe, steps_per_epoch: int,
                 keep_order: bool = False) -> dict:
    """fit()'s data arguments: whole batches of the train split (shuffled by Keras each
    epoch), their weights, and validation."""
    del keep_order  # one process: Keras shuffles
    members, config = len(recipe.fernets), self._config
    kept = steps_per_epoch * config.batch_size  # whole batches only
    images, labels = (a[:kept] for a in self._inputs['training'])
    validation_images, validation_labels = self._inputs['validation']
    weights = None
    if recipe.class_weights is not None:
      weights = np.asarray(recipe_lib.example_weights(recipe.class_weights, labels))
    return {'x': images, 'y': recipe_lib.targets(labels, members), 'sample_weight': weights,
            'batch_size': config.batch_size,
            'validation_data': (validation_images,
                                recipe_lib.targets(validation_labels, members))}

  def report(self, run: contract.RunDir, inference_models: list, augmenter) -> str:
    """Each member's accuracy on each split held in the file, plain and averaged with
    the mirror image; the reports need TensorFlow: `trainer.evaluate` writes them."""
    del augmenter
    image = keras.Input(contract.IMAGE_SHAPE)
    outputs = []  # one program for every member: [plain, flip-averaged] each
    for k, inference in enumerate(inference_models):
      inference.name = f'member_{k}'  # saved already; names in one graph must differ
      mirrored = views.build_ensemble([inference], flip_tta=True)
      mirrored.name = f'member_{k}_flip_averaged'
      outputs += [inference(image), mirrored(image)]
    together = keras.Model(image, outputs)
    lines = []
    for split, (_, labels) in self.splits.items():
      predicted = together.predict(self._inputs[split][0], batch_size=256, verbose=0)
      for k in range(len(inference_models)):
        name = f'member {k} ' if len(inference_models) > 1 else ''
        plain, averaged = (np.mean(p.argmax(-1) == labels)
                           for p in predicted[2 * k:2 * k + 2])
        lines.append(f'{name}{split}: accuracy {plain:.4f} (flip-averaged {averaged:.4f})')
    first = run_dir.member_runs(run, len(inference_models))[0]
    lines.append(f'Wrote {run.root}. Reports (where TensorFlow is): '
                 f'python -m trainer.evaluate --run_dir={first.root}')
    return '\n'.join(lines)


def open_source(config: TrainConfig):
  """The source `config` names: ArraysSource with --arrays, else TfdsSource."""
  return ArraysSource(config) if config.arrays else TfdsSource(config)
