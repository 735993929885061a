"""Evaluation reports of a run: metrics JSON, classification report, confusion matrix,
training curves and augmented samples (PNG/JSON/TXT, readable without TensorFlow)."""

import csv
import json
import pathlib

import keras
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
from sklearn import metrics as sk_metrics
import tensorflow as tf

from fer_common import files
from trainer import dead_relus
from trainer import views

_EPS = 1e-7
_DEAD_RELU_SAMPLE = 512  # test images the dead-ReLU check looks at


def predict(model: keras.Model, dataset: tf.data.Dataset, flip_tta: bool = False
            ) -> tuple[np.ndarray, np.ndarray]:
  """Returns (probabilities, integer labels) over a dataset of (images, one-hot).

  With flip_tta the probabilities are averaged with those of the mirrored images
  (views.build_ensemble, as an exported ensemble averages them).
  """
  if flip_tta:
    model = views.build_ensemble([model], flip_tta=True)
  probabilities, labels = [], []
  for images, one_hot in dataset:
    probabilities.append(np.asarray(model(images, training=False), np.float32))
    labels.append(np.argmax(one_hot, axis=-1))
  return np.concatenate(probabilities), np.concatenate(labels)


def first_images(dataset: tf.data.Dataset, n: int) -> np.ndarray:
  """Up to the first `n` images of a dataset of (images, labels) batches."""
  batches, count = [], 0
  for images, _ in dataset:
    batches.append(np.asarray(images))
    count += len(batches[-1])
    if count >= n:
      break
  return np.concatenate(batches)[:n]


def summarise(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
  """Accuracy, cross-entropy loss and macro F1 of predictions."""
  predicted = probabilities.argmax(-1)
  picked = probabilities[np.arange(len(labels)), labels]
  return {
      'accuracy': float((predicted == labels).mean()),
      'loss': float(-np.log(np.clip(picked, _EPS, 1.0)).mean()),
      'macro_f1': float(sk_metrics.f1_score(labels, predicted, average='macro')),
      'examples': int(len(labels)),
  }


def save_figure(fig, path) -> None:
  """Saves a matplotlib figure as a PNG, whole or not at all, and closes it."""
  with files.replaced(path, suffix='.png') as temp:
    fig.savefig(temp, dpi=100)
  plt.close(fig)


def plot_confusion_matrix(labels, predicted, class_names, path) -> None:
  """Saves the test confusion matrix as counts and row-normalised (recall), side by
  side (sklearn's ConfusionMatrixDisplay)."""
  fig, axes = plt.subplots(1, 2, figsize=(12, 5))
  for ax, normalize, title, fmt in ((axes[0], None, 'counts', 'd'),
                                    (axes[1], 'true', 'row-normalised (recall)', '.2f')):
    sk_metrics.ConfusionMatrixDisplay.from_predictions(
        labels, predicted, labels=range(len(class_names)), display_labels=class_names,
        normalize=normalize, values_format=fmt, cmap='Blues', colorbar=False, ax=ax)
    ax.set_title(f'Test confusion matrix, {title}')
  fig.tight_layout()
  save_figure(fig, path)


def read_history(path) -> dict[str, list[float]]:
  """history.csv as columns, one value per epoch (a repeated epoch keeps its last row)."""
  with open(path) as f:
    by_epoch = {int(row['epoch']): row for row in csv.DictReader(f)}
  rows = [by_epoch[e] for e in sorted(by_epoch)]
  return {key: [float(r[key]) for r in rows] for key in (rows[0] if rows else {})}


def plot_curves(history: dict[str, list[float]], path) -> None:
  """Saves accuracy, loss and learning rate per epoch, train vs validation."""
  panels = [('accuracy', 'val_accuracy'), ('loss', 'val_loss'), ('learning_rate',)]
  fig, axes = plt.subplots(1, 3, figsize=(15, 4))
  epochs = [e + 1 for e in history.get('epoch', [])]
  for ax, keys in zip(axes, panels):
    for key in keys:
      if key in history:
        ax.plot(epochs, history[key], label=key)
    ax.set(xlabel='epoch', title=keys[0])
    ax.grid(alpha=0.3)
    if ax.lines:
      ax.legend()
  fig.tight_layout()
  save_figure(fig, path)


def augmented_batch(augmenter: keras.Sequential, dataset: tf.data.Dataset, n: int = 32
                    ) -> tuple[np.ndarray, np.ndarray]:
  """The first `n` images of `dataset` through `augmenter` (training mode), with labels."""
  images, one_hot = next(iter(dataset.take(1)))
  return (np.asarray(augmenter(images[:n], training=True)),
          np.argmax(one_hot[:n], axis=-1))


def plot_augmented_samples(images: np.ndarray, labels: np.ndarray, class_names, path,
                           columns: int = 8) -> None:
  """Saves a grid of (augmented) normalised training images with their labels."""
  n_rows = int(np.ceil(len(images) / columns))
  fig, axes = plt.subplots(n_rows, columns, figsize=(columns * 1.3, n_rows * 1.5))
  for ax in np.ravel(axes):
    ax.axis('off')
  for ax, image, label in zip(np.ravel(axes), images, labels):
    ax.imshow(image[..., 0], cmap='gray', vmin=0, vmax=1)
    ax.set_title(class_names[label], fontsize=8)
  fig.tight_layout()
  save_figure(fig, path)


def write_all(model: keras.Model, splits: dict[str, tf.data.Dataset], class_names,
              history_csv: pathlib.Path,
              augmented: tuple[np.ndarray, np.ndarray] | None, out_dir: pathlib.Path) -> dict:
  """Evaluates `model` on every split and writes all reports into `out_dir`.

  Args:
    model: the inference model.
    splits: split name -> evaluation dataset of (images, one-hot labels).
    class_names: label names in output order.
    history_csv: the run's history.csv (the curves are skipped if it is missing).
    augmented: (images, labels) of one augmented training batch (its grid is skipped
      if None: an ensemble has no augmentation of its own).
    out_dir: the run's reports/ folder.

  Returns:
    The metrics dictionary written to metrics.json.
  """
  out_dir.mkdir(parents=True, exist_ok=True)
  predictions = {name: predict(model, dataset) for name, dataset in splits.items()}
  results = {name: summarise(*prediction) for name, prediction in predictions.items()}
  results['test_flip_tta'] = summarise(*predict(model, splits['test'], flip_tta=True))
  results['dead_relu_fraction'] = dead_relus.dead_channel_fractions(
      model, first_images(splits['test'], _DEAD_RELU_SAMPLE))
  probabilities, labels = predictions['test']
  test_predicted = probabilities.argmax(-1)
  files.write_text(out_dir / 'metrics.json', json.dumps(results, indent=2) + '\n')
  files.write_text(out_dir / 'classification_report.txt', sk_metrics.classification_report(
      labels, test_predicted, labels=range(len(class_names)), target_names=class_names,
      digits=4, zero_division=0))
  plot_confusion_matrix(labels, test_predicted, class_names, out_dir / 'confusion_matrix.png')
  if history_csv.exists():
    plot_curves(read_history(history_csv), out_dir / 'curves.png')
  if augmented is not None:
    plot_augmented_samples(*augmented, class_names, out_dir / 'augmented_samples.png')
  return results
