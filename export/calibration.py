"""Probabilities a user can read as probabilities: a temperature fitted on the
validation split, stored in the sidecar and applied by the edge runner.

  python -m export.calibration --model=models/fast/int8.tflite

fits the temperature of an exported .tflite on the validation split of the dataset its
model.json names, records it in that variant's entry of model.json, and the expected
calibration error before and after in the report beside it. `python -m export` does the
same for every variant it writes.
"""

import json
import pathlib
import sys

from absl import app
from absl import flags
import numpy as np
from scipy import optimize

from edge.litert_model import LiteRTModel
from export import report
from fer_common import contract
from fer_common import files
from fer_tfds import built

FLAGS = flags.FLAGS
BINS = 15


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray,
                               bins: int = BINS) -> float:
  """The mean gap between confidence and accuracy over `bins` equal-width confidence
  bins, weighted by how many predictions fall in each (Guo et al., 2017)."""
  confidence = probabilities.max(-1)
  right = probabilities.argmax(-1) == labels
  edges = np.linspace(0, 1, bins + 1)
  which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
  return float(sum(abs(confidence[which == b].mean() - right[which == b].mean())
                   * (which == b).mean() for b in range(bins) if (which == b).any()))


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
  """Mean -log p(true class)."""
  return float(-np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-6,
                               None)).mean())


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
  """The temperature that minimises the negative log-likelihood of `labels` under
  contract.apply_temperature(probabilities, T), T in [0.05, 20]."""
  result = optimize.minimize_scalar(
      lambda log_t: negative_log_likelihood(
          contract.apply_temperature(probabilities, float(np.exp(log_t))), labels),
      bounds=(np.log(0.05), np.log(20.0)), method='bounded')
  return round(float(np.exp(result.x)), 4)


def calibrate(probabilities: np.ndarray, labels: np.ndarray) -> dict:
  """The fitted temperature with the calibration error and NLL before and after."""
  temperature = fit_temperature(probabilities, labels)
  scaled = contract.apply_temperature(probabilities, temperature)
  return {'temperature': temperature, 'split': 'validation', 'faces': int(len(labels)),
          'ece_before': expected_calibration_error(probabilities, labels),
          'ece_after': expected_calibration_error(scaled, labels),
          'nll_before': negative_log_likelihood(probabilities, labels),
          'nll_after': negative_log_likelihood(scaled, labels)}


def predict_all(path: pathlib.Path, images: np.ndarray) -> np.ndarray:
  """The raw probabilities of the .tflite at `path` for normalised images (N, 48, 48, 1)."""
  model = LiteRTModel(path, num_threads=1)
  return np.stack([model.predict(image) for image in images])


def to_markdown(calibration: dict) -> str:
  """The calibration of every variant as a Markdown table."""
  lines = ['| variant | temperature | ECE before | ECE after | NLL before | NLL after |',
           '|---|---:|---:|---:|---:|---:|']
  for name, c in calibration.items():
    lines.append(f"| {name} | {c['temperature']:.3f} | {100 * c['ece_before']:.2f} % | "
                 f"{100 * c['ece_after']:.2f} % | {c['nll_before']:.4f} | "
                 f"{c['nll_after']:.4f} |")
  first = next(iter(calibration.values()))
  lines += ['', f"Fitted on the {first['faces']} faces of the validation split; ECE: "
            f'expected calibration error over {BINS} confidence bins (lower is better).']
  return '\n'.join(lines)


def define_flags() -> None:
  """Defines the command-line flags."""
  flags.DEFINE_string('model', None, 'An exported .tflite with its model.json.',
                      required=True)
  flags.DEFINE_string('data_dir', None, 'TFDS data dir.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  model = pathlib.Path(FLAGS.model)
  sidecar_path = model.with_name(contract.SIDECAR)
  try:
    spec = json.loads(sidecar_path.read_text())
    entry = contract.variant_entry(spec, model)
    dataset = spec['source']['dataset'].split('/')[-1]
    images, labels = built.split_arrays(dataset, 'validation', FLAGS.data_dir)[:2]
  except (OSError, ValueError, KeyError) as e:
    sys.exit(f'error: {e}')
  normalised = contract.apply_normalisation(images.astype(np.float32),
                                            spec['input']['normalisation'])
  result = calibrate(predict_all(model, normalised), labels)
  entry['temperature'] = result['temperature']
  files.write_text(sidecar_path, json.dumps(spec, indent=2) + '\n')
  report.record_calibration(model.parent, {model.stem: result})
  print(to_markdown({model.stem: result}))
  print(f'Recorded in {sidecar_path} and {model.parent / contract.REPORT_MD}.')


if __name__ == '__main__':
  define_flags()
  app.run(main)
