"""`python -m export --run_dir=runs/<name> --out_dir=exports/<name>`: writes the float32,
float16, dynamic-range and full-int8 .tflite models of a trained run, their labels.txt and
model.json sidecar, and report.md/report.json measured in the LiteRT interpreter.

The output dir appears complete or not at all: everything is written into a staging
folder beside it and renamed at the end. The exporter replaces only a folder that it
wrote itself (it carries contract.EXPORT_MARKER), and never one that is, holds or lies
inside a trainer run dir.
"""

import json
import pathlib
import shutil
import sys

from absl import app
from absl import flags
import keras

from edge import model_labels
from export import calibration as calibration_lib
from export import convert
from export import inputs
from export import report
from export import yardstick
from fer_common import contract
from fer_common import files
from fer_common import locks
from fer_common import machine
from fer_common import signals

FLAGS = flags.FLAGS

QUANTISATION_NOTES = (
    'Post-training quantisation by the TFLite converter. int8: full-integer model '
    '(int8 input, output, weights and activations; builtin int8 ops only), weights '
    'per-channel, BatchNorm folded into the convolutions by the converter, activation '
    'ranges calibrated on {n} training images drawn equally from every class and '
    'normalised exactly as in training. dynamic: int8 weights, float activations. '
    'float16: float16 weights.')


def define_flags() -> None:
  """Defines the exporter's command-line flags."""
  flags.DEFINE_string('run_dir', None, 'A finished trainer run dir.', required=True)
  flags.DEFINE_string('out_dir', None, 'Where to write the models and report.',
                      required=True)
  flags.DEFINE_bool('overwrite', False, 'Replace an --out_dir that an earlier export '
                    'wrote.')
  flags.DEFINE_integer('calibration_samples', 1000, 'Train images (stratified over '
                       'classes) that calibrate the int8 activation ranges.', lower_bound=1)
  flags.DEFINE_integer('latency_runs', 300, 'Timed runs per model.', lower_bound=1)
  flags.DEFINE_integer('eval_limit', None, 'Evaluate on only this many test images '
                       '(quick checks); default: all.', lower_bound=1)
  flags.DEFINE_integer('yardstick_faces', 1000, 'Test faces the int8 model is measured '
                       'on in frames through the edge path (export.yardstick); 0 skips '
                       'it.', lower_bound=0)


class ExportError(RuntimeError):
  """The export cannot proceed; the message says why and what to do."""


def check_out_dir(out: pathlib.Path, run_dir: pathlib.Path, overwrite: bool) -> None:
  """Raises ExportError unless the export may write `out`: it is not, does not hold and
  does not lie inside a trainer run dir, is not a file, and exists only if --overwrite
  is given and an earlier export wrote it (or it is empty)."""
  out, run_dir = out.resolve(), run_dir.resolve()
  for folder in (out, *out.parents):
    if contract.RunDir(folder).is_run_dir() or folder == run_dir:
      raise ExportError(f'--out_dir={out} is or lies inside the trainer run dir {folder}: '
                        'choose a folder outside every run dir, e.g. exports/<name>.')
  if out.is_file():
    raise ExportError(f'--out_dir={out} is a file: choose a folder.')
  if not out.is_dir() or not any(out.iterdir()):
    return
  if run_dir.is_relative_to(out) or any(out.rglob('flags.txt')):
    raise ExportError(f'--out_dir={out} holds a trainer run dir: choose another folder.')
  if not contract.is_export(out):
    raise ExportError(f'--out_dir={out} exists and was not written by python -m export '
                      '(no marker file): choose another folder or empty it yourself.')
  if not overwrite:
    raise ExportError(f'{out} exists; pass --overwrite to replace it.')


def load_model(path: pathlib.Path) -> keras.Model:
  """The run's float32 inference model with a 48x48x1 input.

  Raises:
    ExportError: the file does not load, or holds another kind of model.
  """
  try:
    model = keras.models.load_model(path, compile=False)
  except Exception as e:  # Keras raises many types for a damaged or foreign file
    raise ExportError(f'{path} does not load as a Keras model ({type(e).__name__}: '
                      f'{str(e)[:200]}); train the run again.') from None
  if tuple(model.input_shape[1:]) != contract.IMAGE_SHAPE:
    raise ExportError(f'the model takes input {model.input_shape[1:]}, but the export '
                      f'and the edge runner expect {contract.IMAGE_SHAPE}.')
  mixed = sorted({layer.dtype_policy.name for layer in model.layers} - {'float32'})
  if mixed:
    raise ExportError(f'the model has {mixed} layers: export the float32 inference.keras '
                      'that the trainer writes, not a mixed-precision checkpoint.')
  return model


def sidecar(run: inputs.TrainedRun, measured: dict, temperatures: dict,
            folder: pathlib.Path) -> dict:
  """The model.json contract read by the edge runner, naming each .tflite in `folder`
  by its checksum, with its quantisation and its fitted temperature."""
  variants = {}
  for name, m in measured.items():
    entry = {key: value for key, value in m.items()
             if key.startswith(('input_', 'output_'))}
    variants[f'{name}.tflite'] = {
        'sha256': contract.sha256(folder / f'{name}.tflite'), **entry,
        'temperature': temperatures[name]['temperature']}
  return contract.sidecar(run.labels, run.preprocessing['input'], variants,
                          {'run_dir': str(run.root),
                           'dataset': f'{contract.DATASET}/{run.dataset}'})


def export(run_dir: str, out_dir: str, overwrite: bool = False,
           calibration_samples: int = 1000, latency_runs: int = 300,
           eval_limit: int | None = None, yardstick_faces: int = 1000,
           wait_for_lock: bool = False) -> dict:
  """Exports every variant of `run_dir` into `out_dir`, holding its lock
  (fer_common.locks) once the folder is known to be one export may write; returns the
  report dict.

  Raises:
    ExportError: `out_dir` is not a folder the export may write.
    locks.LockedError: another export is writing `out_dir` (unless `wait_for_lock`).
  """
  out = pathlib.Path(out_dir)
  check_out_dir(out, pathlib.Path(run_dir), overwrite)
  with locks.held(out, 'the export folder', wait_for_lock):
    return _export_unlocked(run_dir, out, calibration_samples, latency_runs, eval_limit,
                            yardstick_faces)


def _export_unlocked(run_dir: str, out: pathlib.Path, calibration_samples: int,
                     latency_runs: int, eval_limit: int | None,
                     yardstick_faces: int) -> dict:
  for left in files.clean_leftovers(out.parent, out.name):
    print(f'Removed {left}, left by an export that was interrupted.')
  run = inputs.read_run(run_dir)
  model = load_model(run.model_path)
  train_images, train_labels = inputs.load_split(run, 'train')
  calibration = inputs.stratified_sample(train_images, train_labels, calibration_samples)
  test_images, test_labels = inputs.load_split(run, 'test', eval_limit)
  validation_images, validation_labels = inputs.load_split(run, 'validation', eval_limit)
  keras_probabilities = model.predict(test_images, batch_size=256, verbose=0)
  keras_predicted = keras_probabilities.argmax(-1)

  staging = files.temp_folder(out)
  try:
    measured, temperatures = {}, {}
    for variant in contract.VARIANTS:
      print(f'Converting and measuring {variant} ...', flush=True)
      path = staging / f'{variant}.tflite'
      path.write_bytes(model_labels.embedded(convert.convert(
          model, variant, lambda: (image[None] for image in calibration), workdir=staging),
          run.labels))
      measured[variant] = report.measure(path, test_images, test_labels, keras_predicted,
                                         latency_runs)
      temperatures[variant] = calibration_lib.calibrate(
          calibration_lib.predict_all(path, validation_images), validation_labels)
    (staging / contract.LABELS).write_text('\n'.join(run.labels) + '\n')
    (staging / contract.SIDECAR).write_text(
        json.dumps(sidecar(run, measured, temperatures, staging), indent=2) + '\n')
    result = {
        'run_dir': str(run.root), 'dataset': run.dataset,
        'test_examples': int(len(test_labels)), 'latency_runs': latency_runs,
        'machine': machine.describe(),
        'int8_dot_product': machine.cpu_flags(machine.INT8_DOT_PRODUCT_FLAGS),
        'keras': report.keras_reference(keras_probabilities, test_labels),
        'variants': measured,
        'calibration': temperatures,
        'quantisation_notes': QUANTISATION_NOTES.format(n=len(calibration)),
    }
    result['targets'] = report.targets(result)
    if yardstick_faces:
      print(f'Measuring int8 on {yardstick_faces} test faces in frames (export.yardstick) '
            '...', flush=True)
      try:
        result['yardstick'] = yardstick.measure(staging / 'int8.tflite', run.dataset,
                                                run.data_dir, yardstick_faces)
      except FileNotFoundError as e:  # the report says why, the export goes on
        result['yardstick_missing'] = str(e)
    report.write(result, staging)
    contract.mark_as_export(staging)
    files.replace_folder(staging, out)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return result


def disk_full_message(out: pathlib.Path, run_dir: pathlib.Path) -> str:
  """What a full disk under `out` means: which folder, and how much the export needs
  (the four variants, the intermediate SavedModel and the reports, about eight times
  the float32 model)."""
  needed = 8 * sum(p.stat().st_size for p in run_dir.glob('*.keras')) + (1 << 20)
  free = shutil.disk_usage(out.parent if out.parent.exists() else '.').free
  return (f'no space left on the disk of {out.parent} ({free / 1e6:.1f} MB free; the '
          f'export needs about {needed / 1e6:.0f} MB). Nothing was replaced: free some '
          'space or choose another --out_dir, and run the command again.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  out = pathlib.Path(FLAGS.out_dir)
  signals.sigterm_as_interrupt()
  try:
    export(FLAGS.run_dir, FLAGS.out_dir, FLAGS.overwrite, FLAGS.calibration_samples,
           FLAGS.latency_runs, FLAGS.eval_limit, FLAGS.yardstick_faces,
           FLAGS.wait_for_lock)
  except KeyboardInterrupt:
    signals.stopped(f'{out} is as it was before: run the same command again.')
  except Exception as e:  # pylint: disable=broad-except  (a full disk, whatever raised it)
    if files.is_disk_full(e):
      sys.exit(f'error: {disk_full_message(out, pathlib.Path(FLAGS.run_dir))}')
    if isinstance(e, (ExportError, inputs.RunDirError, convert.ConversionError,
                      locks.LockedError, contract.DatasetNotBuiltError)):
      sys.exit(f'error: {e}')
    raise
  print((pathlib.Path(FLAGS.out_dir) / contract.REPORT_MD).read_text())
