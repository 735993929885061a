"""`python -m export --run_dir=runs/<name> --out_dir=exports/<name>`: writes the float32,
float16, dynamic-range and full-int8 .tflite models of a trained run, their labels.txt and
model.json sidecar, and report.md/report.json measured in the LiteRT interpreter.

The output dir appears complete or not at all: everything is written into a staging
folder beside it and renamed at the end.
"""

import json
import pathlib
import shutil
import sys
import tempfile

from absl import app
from absl import flags
import keras

from edge import machine
from export import convert
from export import inputs
from export import report

_RUN_DIR = flags.DEFINE_string('run_dir', None, 'A finished trainer run dir.',
                               required=True)
_OUT_DIR = flags.DEFINE_string('out_dir', None, 'Where to write the models and report.',
                               required=True)
_OVERWRITE = flags.DEFINE_bool('overwrite', False, 'Replace an existing --out_dir.')
_CALIBRATION = flags.DEFINE_integer(
    'calibration_samples', 1000, 'Train images (stratified over classes) that calibrate '
    'the int8 activation ranges.')
_LATENCY_RUNS = flags.DEFINE_integer('latency_runs', 300, 'Timed runs per model.')
_EVAL_LIMIT = flags.DEFINE_integer('eval_limit', None, 'Evaluate on only this many '
                                   'test images (quick checks); default: all.')

QUANTISATION_NOTES = (
    'Post-training quantisation by the TFLite converter. int8: full-integer model '
    '(int8 input, output, weights and activations; builtin int8 ops only), weights '
    'per-channel, BatchNorm folded into the convolutions by the converter, activation '
    'ranges calibrated on {n} training images drawn equally from every class and '
    'normalised exactly as in training. dynamic: int8 weights, float activations. '
    'float16: float16 weights.')


class ExportError(RuntimeError):
  """The export cannot proceed; the message says why and what to do."""


def check_model(model: keras.Model) -> None:
  """Raises ExportError unless `model` is a float32 model with a 48x48x1 input."""
  if tuple(model.input_shape[1:]) != inputs.EXPECTED_INPUT:
    raise ExportError(f'the model takes input {model.input_shape[1:]}, but the export '
                      f'and the edge runner expect {inputs.EXPECTED_INPUT}.')
  mixed = sorted({layer.dtype_policy.name for layer in model.layers} - {'float32'})
  if mixed:
    raise ExportError(f'the model has {mixed} layers: export the float32 inference.keras '
                      'that the trainer writes, not a mixed-precision checkpoint.')


def sidecar(run: inputs.TrainedRun, measured: dict) -> dict:
  """The model.json contract read by the edge runner."""
  return {
      'labels': run.labels,
      'input': run.preprocessing['input'],
      'variants': {f'{name}.tflite': {key: value for key, value in m.items()
                                      if key.startswith(('input_', 'output_'))}
                   for name, m in measured.items()},
      'source': {'run_dir': str(run.root), 'dataset': f'fer_emotions/{run.dataset}'},
  }


def export(run_dir: str, out_dir: str, overwrite: bool = False,
           calibration_samples: int = 1000, latency_runs: int = 300,
           eval_limit: int | None = None) -> dict:
  """Exports every variant of `run_dir` into `out_dir`; returns the report dict."""
  out = pathlib.Path(out_dir)
  if out.exists() and not overwrite:
    raise ExportError(f'{out} exists; pass --overwrite to replace it.')
  run = inputs.read_run(run_dir)
  model = keras.models.load_model(run.model_path, compile=False)
  check_model(model)
  train_images, train_labels = inputs.load_split(run, 'train')
  calibration = inputs.stratified_sample(train_images, train_labels, calibration_samples)
  test_images, test_labels = inputs.load_split(run, 'test', eval_limit)
  keras_probabilities = model.predict(test_images, batch_size=256, verbose=0)
  keras_predicted = keras_probabilities.argmax(-1)

  out.parent.mkdir(parents=True, exist_ok=True)
  staging = pathlib.Path(tempfile.mkdtemp(prefix=f'.{out.name}.partial-', dir=out.parent))
  try:
    measured = {}
    for variant in convert.VARIANTS:
      print(f'Converting and measuring {variant} ...', flush=True)
      path = staging / f'{variant}.tflite'
      path.write_bytes(convert.convert(
          model, variant, lambda: (image[None] for image in calibration)))
      measured[variant] = report.measure(path, test_images, test_labels, keras_predicted,
                                         latency_runs)
    (staging / 'labels.txt').write_text('\n'.join(run.labels) + '\n')
    (staging / 'model.json').write_text(json.dumps(sidecar(run, measured), indent=2) + '\n')
    result = {
        'run_dir': str(run.root), 'dataset': run.dataset,
        'test_examples': int(len(test_labels)), 'latency_runs': latency_runs,
        'machine': machine.describe(),
        'int8_dot_product': machine.cpu_flags(machine.INT8_DOT_PRODUCT_FLAGS),
        'keras': report.keras_reference(keras_probabilities, test_labels),
        'variants': measured,
        'quantisation_notes': QUANTISATION_NOTES.format(n=len(calibration)),
    }
    result['targets'] = report.targets(result)
    report.write(result, staging)
    if out.exists():
      shutil.rmtree(out)
    staging.rename(out)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return result


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    export(_RUN_DIR.value, _OUT_DIR.value, _OVERWRITE.value, _CALIBRATION.value,
           _LATENCY_RUNS.value, _EVAL_LIMIT.value)
  except (ExportError, inputs.RunDirError, convert.ConversionError) as e:
    sys.exit(f'error: {e}')
  print((pathlib.Path(_OUT_DIR.value) / 'report.md').read_text())


if __name__ == '__main__':
  app.run(main)
