"""Measures each exported .tflite in the LiteRT interpreter: accuracy and macro F1 on the
test split, agreement with the Keras model, file size and batch-1 latency."""

import json
import pathlib

import numpy as np
from sklearn import metrics as sk_metrics

from edge.litert_model import LiteRTModel
from fer_common import contract
from fer_common import files
from fer_common import timing
from export import calibration
from export import yardstick
from export.size_breakdown import macs
from export.size_breakdown import size_breakdown


def latency_ms(model: LiteRTModel, image: np.ndarray, runs: int) -> dict[str, float]:
  """Median and p90 wall time of one predict() call, after a few warm-up calls."""
  times = timing.call_times_ms(lambda: model.predict(image), runs, warmup=5)
  return {'median_ms': float(np.median(times)), 'p90_ms': float(np.percentile(times, 90))}


def measure(path: pathlib.Path, images: np.ndarray, labels: np.ndarray,
            keras_predicted: np.ndarray, latency_runs: int) -> dict:
  """Accuracy, macro F1, agreement, size and latency of one .tflite file (1 thread)."""
  model = LiteRTModel(path, num_threads=1)
  predicted = np.array([model.predict(image).argmax() for image in images])
  return {
      'accuracy': float((predicted == labels).mean()),
      'macro_f1': float(sk_metrics.f1_score(labels, predicted, average='macro')),
      'agreement_with_keras': float((predicted == keras_predicted).mean()),
      'size_bytes': path.stat().st_size,
      'size_breakdown': size_breakdown(path),
      'macs': macs(path),
      'latency': latency_ms(model, images[0], latency_runs),
      **model.quantization(),
  }


def keras_reference(probabilities: np.ndarray, labels: np.ndarray) -> dict:
  """The float Keras model's accuracy and macro F1 on the same images."""
  predicted = probabilities.argmax(-1)
  return {'accuracy': float((predicted == labels).mean()),
          'macro_f1': float(sk_metrics.f1_score(labels, predicted, average='macro'))}


def targets(report: dict) -> dict[str, bool]:
  """The int8 targets: <= 0.5 pp accuracy loss, <= 1/4 of float32's size, >= 2x faster."""
  int8, float32 = report['variants']['int8'], report['variants']['float32']
  return {
      'int8_accuracy_loss_at_most_0.5pp':
          report['keras']['accuracy'] - int8['accuracy'] <= 0.005,
      'int8_at_most_quarter_of_float32_size':
          int8['size_bytes'] <= float32['size_bytes'] / 4,
      'int8_at_least_2x_faster_than_float32':
          float32['latency']['median_ms'] >= 2 * int8['latency']['median_ms'],
  }


def to_markdown(report: dict) -> str:
  """report.json as a readable Markdown page."""
  keras_accuracy = report['keras']['accuracy']
  lines = [
      f"# Export report: {report['run_dir']}",
      '',
      f"Test split of fer_emotions/{report['dataset']}: {report['test_examples']} images. "
      f"Accuracy and F1 from the .tflite files in the LiteRT interpreter; latency at "
      f"batch 1 on 1 thread, {report['latency_runs']} runs, on {report['machine']}.",
      '',
      '| model | size (KiB) | MMAC per face | test accuracy | Δ vs Keras (pp) | macro F1 '
      '| agreement with Keras | latency median (ms) | p90 (ms) |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
      f"| Keras float32 | | | {keras_accuracy:.4f} | | {report['keras']['macro_f1']:.4f} "
      '| | | |',
  ]
  for name, v in report['variants'].items():
    mmac = f"{v['macs'] / 1e6:.0f}" if 'macs' in v else ''  # older reports lack it
    lines.append(
        f"| {name}.tflite | {v['size_bytes'] / 1024:.0f} | {mmac} | "
        f"{v['accuracy']:.4f} | "
        f"{100 * (v['accuracy'] - keras_accuracy):+.2f} | {v['macro_f1']:.4f} | "
        f"{v['agreement_with_keras']:.4f} | {v['latency']['median_ms']:.3f} | "
        f"{v['latency']['p90_ms']:.3f} |")
  lines += ['', '## int8 targets', '']
  lines += [f"- {name.replace('_', ' ')}: {'met' if ok else 'MISSED'}"
            for name, ok in report['targets'].items()]
  lines += ['', '## Where the bytes go', '',
            '| model | tensor data (KiB) | quantisation parameters (KiB) | graph and names '
            '(KiB) | tensor data vs float32 |', '|---|---:|---:|---:|---:|']
  float32_data = report['variants']['float32']['size_breakdown']['tensor_data']
  for name, v in report['variants'].items():
    b = v['size_breakdown']
    lines.append(f"| {name}.tflite | {b['tensor_data'] / 1024:.1f} | "
                 f"{b['quantisation_params'] / 1024:.1f} | {b['other'] / 1024:.1f} | "
                 f"{100 * b['tensor_data'] / float32_data:.2f} % |")
  lines += ['', 'int8 stores one byte per weight, a quarter of float32, but keeps 32-bit '
            'biases and adds a float32 scale and an int64 zero point per output channel of '
            'every per-channel quantised tensor, so a post-training int8 file of this model '
            'cannot be at most a quarter of the float32 file.', '',
            f"Latency: int8 arithmetic outruns float32 only on CPUs with int8 dot-product "
            f"instructions; this machine has {report.get('int8_dot_product', 'unknown')}."]
  if 'yardstick' in report or 'yardstick_missing' in report:
    lines += ['', '## Faces as a camera shows them (int8, `python -m export.yardstick`)',
              '', yardstick.to_markdown(report['yardstick']) if 'yardstick' in report
              else f"Not measured: {report['yardstick_missing']}"]
  if 'calibration' in report:
    lines += ['', '## Probabilities (`python -m export.calibration`)', '',
              'Each variant\'s probabilities are divided, as logits, by a temperature '
              'fitted on the validation split; model.json records it and the edge runner '
              'applies it.', '', calibration.to_markdown(report['calibration'])]
  lines += ['', '## Quantisation', '', report['quantisation_notes'], '']
  return '\n'.join(lines)


def write(report: dict, out_dir: pathlib.Path) -> None:
  """Writes report.json and report.md into `out_dir`, each whole or not at all."""
  files.write_text(out_dir / contract.REPORT_JSON, json.dumps(report, indent=2) + '\n')
  files.write_text(out_dir / contract.REPORT_MD, to_markdown(report))


def record_calibration(out_dir: pathlib.Path, result: dict) -> None:
  """Puts the calibration of some variants ({variant: export.calibration.calibrate()})
  into the report of the export folder `out_dir` (or models/<name>).

  Raises:
    FileNotFoundError: `out_dir` holds no report.json.
  """
  report = json.loads((out_dir / contract.REPORT_JSON).read_text())
  write({**report, 'calibration': {**report.get('calibration', {}), **result}}, out_dir)


def record_yardstick(out_dir: pathlib.Path, result: dict) -> None:
  """Puts `result` (export.yardstick.measure) into the report of the export folder
  `out_dir` (or models/<name>), replacing what it held about the yardstick.

  Raises:
    FileNotFoundError: `out_dir` holds no report.json.
  """
  report = json.loads((out_dir / contract.REPORT_JSON).read_text())
  report.pop('yardstick_missing', None)
  for name, variant in report['variants'].items():  # a report older than the MACs column
    if 'macs' not in variant and (out_dir / f'{name}.tflite').exists():
      variant['macs'] = macs(out_dir / f'{name}.tflite')
  write({**report, 'yardstick': result}, out_dir)
