"""The exporter on a tiny trained run: every variant runs in LiteRT and agrees with Keras."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from edge import sidecar as edge_sidecar
from edge.litert_model import LiteRTModel
from export import convert
from fer_common import contract
from export import export
from export import inputs
from export import yardstick
from trainer_helpers import run_trainer


def _probe_images(run_dir):
  run = inputs.read_run(str(run_dir))
  images, _ = inputs.load_split(run, 'train')
  return images


def test_every_variant_runs_in_litert_and_agrees_with_keras(trained_run, exported):
  out_dir, report = exported
  model = keras.models.load_model(trained_run / 'inference.keras', compile=False)
  images = _probe_images(trained_run)
  expected = model.predict(images, verbose=0)
  assert len(set(expected.argmax(-1))) >= 2, 'precondition: the model must discriminate'
  for variant in contract.VARIANTS:
    lite = LiteRTModel(out_dir / f'{variant}.tflite')
    got = np.array([lite.predict(image) for image in images])
    agreement = (got.argmax(-1) == expected.argmax(-1)).mean()
    min_agreement, max_error = {'float32': (1.0, 1e-4), 'float16': (0.98, 0.02),
                                'dynamic': (0.9, 0.25), 'int8': (0.85, 0.25)}[variant]
    assert agreement >= min_agreement, (variant, agreement)
    assert np.abs(got - expected).max() < max_error, variant
    assert variant in report['variants']


def test_int8_model_is_integer_end_to_end_and_a_wrong_input_scale_would_show(
    trained_run, exported):
  out_dir, _ = exported
  lite = LiteRTModel(out_dir / 'int8.tflite')
  assert lite.quantization()['input_dtype'] == 'int8'
  assert lite.quantization()['output_dtype'] == 'int8'
  images = _probe_images(trained_run)
  model = keras.models.load_model(trained_run / 'inference.keras', compile=False)
  expected = model.predict(images, verbose=0).argmax(-1)
  # Feeding raw 0..255 pixels instead of the normalised input must break agreement:
  # the agreement assertion above is able to fail.
  wrong = np.array([lite.predict(image * 255).argmax() for image in images])
  assert (wrong == expected).mean() < 0.85


def test_sidecar_round_trips_and_labels_file_matches(trained_run, exported):
  out_dir, _ = exported
  spec = edge_sidecar.load(out_dir / 'int8.tflite')
  preprocessing = json.loads((trained_run / 'preprocessing.json').read_text())
  assert list(spec.labels) == preprocessing['labels']
  assert (out_dir / 'labels.txt').read_text().split() == preprocessing['labels']
  assert spec.input_shape == (1, 48, 48, 1)
  assert spec.scale == pytest.approx(1 / 255)
  lite = LiteRTModel(out_dir / 'int8.tflite')
  entry = spec.variants['int8.tflite']
  assert entry == {**lite.quantization(), 'sha256': contract.sha256(out_dir / 'int8.tflite'),
                   'temperature': entry['temperature']}
  assert spec.temperature == entry['temperature'] > 0
  pixels = np.full((48, 48), 255, np.uint8)
  assert spec.normalise(pixels).max() == pytest.approx(1.0)


def test_report_has_every_number_per_variant(exported):
  out_dir, report = exported
  on_disk = json.loads((out_dir / 'report.json').read_text())
  assert on_disk == json.loads(json.dumps(report))
  for variant in contract.VARIANTS:
    measured = on_disk['variants'][variant]
    for key in ('accuracy', 'macro_f1', 'agreement_with_keras', 'size_bytes'):
      assert key in measured
    assert measured['latency']['median_ms'] > 0
    assert f'| {variant}.tflite |' in (out_dir / 'report.md').read_text()
  assert set(on_disk['targets']) == {
      'int8_accuracy_loss_at_most_0.5pp', 'int8_at_most_quarter_of_float32_size',
      'int8_at_least_2x_faster_than_float32'}


def test_size_breakdown_accounts_for_every_byte(exported):
  out_dir, report = exported
  sizes = {v: m['size_breakdown'] for v, m in report['variants'].items()}
  for variant, b in sizes.items():
    assert b['file'] == (out_dir / f'{variant}.tflite').stat().st_size
    assert b['tensor_data'] + b['quantisation_params'] + b['other'] == b['file']
    assert b['other'] > 0
  assert sizes['float32']['quantisation_params'] == 0
  assert sizes['int8']['quantisation_params'] > 0
  # One byte per weight (plus 32-bit biases) against four.
  ratio = sizes['int8']['tensor_data'] / sizes['float32']['tensor_data']
  assert 0.25 <= ratio < 0.3
  assert 'Where the bytes go' in (out_dir / 'report.md').read_text()


def test_existing_out_dir_is_refused_without_overwrite(trained_run, exported):
  out_dir, _ = exported
  result = run_trainer(f'--run_dir={trained_run}', f'--out_dir={out_dir}', module='export')
  assert result.returncode != 0
  assert 'pass --overwrite' in result.stderr and 'Traceback' not in result.stderr


def test_run_dir_without_model_is_refused(tmp_path):
  (tmp_path / 'run').mkdir()
  result = run_trainer(f'--run_dir={tmp_path / "run"}', f'--out_dir={tmp_path / "out"}',
                       module='export')
  assert result.returncode != 0
  assert 'must be a finished trainer run' in result.stderr
  assert 'Traceback' not in result.stderr
  assert not (tmp_path / 'out').exists()


def test_a_damaged_model_is_named_before_any_conversion(tmp_path, trained_run):
  run_dir = tmp_path / 'run'
  run_dir.mkdir()
  for name in ('flags.txt', 'preprocessing.json'):
    (run_dir / name).write_text((trained_run / name).read_text())
  (run_dir / 'inference.keras').write_bytes(b'PK\x03\x04 not really a zip')
  result = run_trainer(f'--run_dir={run_dir}', f'--out_dir={tmp_path / "out"}',
                       module='export')
  assert result.returncode != 0 and 'Traceback' not in result.stderr
  assert 'inference.keras' in result.stderr.splitlines()[-1]
  assert 'Converting' not in result.stdout


def test_an_out_dir_that_is_a_file_is_refused_before_converting(tmp_path, trained_run):
  (tmp_path / 'out').write_text('my notes')
  result = run_trainer(f'--run_dir={trained_run}', f'--out_dir={tmp_path / "out"}',
                       '--overwrite', module='export')
  assert result.returncode != 0 and 'Traceback' not in result.stderr
  assert 'is a file' in result.stderr and 'Converting' not in result.stdout
  assert (tmp_path / 'out').read_text() == 'my notes'


def _fake_run(tmp_path, trained_run, model):
  run_dir = tmp_path / 'run'
  run_dir.mkdir()
  for name in ('flags.txt', 'preprocessing.json'):
    (run_dir / name).write_text((trained_run / name).read_text())
  model.save(run_dir / 'inference.keras')
  return run_dir


def test_model_with_wrong_input_shape_is_refused(tmp_path, trained_run):
  inputs_ = keras.Input((32, 32, 1))
  model = keras.Model(inputs_, keras.layers.Dense(5)(keras.layers.Flatten()(inputs_)))
  with pytest.raises(export.ExportError, match=r'input \(32, 32, 1\).*expect'):
    export.export(str(_fake_run(tmp_path, trained_run, model)), str(tmp_path / 'out'))
  assert not (tmp_path / 'out').exists()


@keras.saving.register_keras_serializable(package='tests')
class SingularValues(keras.layers.Layer):
  """An op outside the TFLite builtins: conversion must fail."""

  def call(self, x):
    return x + tf.reduce_sum(tf.linalg.svd(x[..., 0], compute_uv=False))


def test_conversion_failure_leaves_no_output_dir(tmp_path, trained_run):
  inputs_ = keras.Input((48, 48, 1))
  x = keras.layers.Flatten()(SingularValues()(inputs_))
  model = keras.Model(inputs_, keras.layers.Dense(5, activation='softmax')(x))
  with pytest.raises(convert.ConversionError, match='converting to'):
    export.export(str(_fake_run(tmp_path, trained_run, model)), str(tmp_path / 'out'),
                  calibration_samples=10, latency_runs=2, eval_limit=4)
  assert sorted(p.name for p in tmp_path.iterdir()) == ['run']


def test_every_export_report_carries_the_yardstick(exported):
  out_dir, report = exported
  measured = report['yardstick']
  # The int8 model on the test faces as cropped, and in frames through the edge path.
  assert measured['crops']['faces'] == measured['robustness']['faces'] == (
      report['test_examples'])
  assert measured['crops']['accuracy'] == pytest.approx(
      report['variants']['int8']['accuracy'])
  assert set(measured['robustness']['by_perturbation']) <= set(yardstick.PERTURBATIONS)
  assert 'cross_dataset' not in measured  # trained on fer5_ck: CK+ is not unseen
  text = (out_dir / 'report.md').read_text()
  assert 'Faces as a camera shows them' in text and 'n/a: trained on fer5_ck' in text


def test_an_older_report_gets_the_yardstick_recorded(exported, tmp_path):
  from export import report as report_lib

  out_dir, report = exported
  # Older still: written before the MACs column, with only its int8 file beside it.
  older = json.loads(json.dumps({key: value for key, value in report.items()
                                 if key != 'yardstick'}))
  for variant in older['variants'].values():
    del variant['macs']
  report_lib.write(older, tmp_path)
  assert 'Faces as a camera' not in (tmp_path / 'report.md').read_text()
  (tmp_path / 'int8.tflite').write_bytes((out_dir / 'int8.tflite').read_bytes())
  report_lib.record_yardstick(tmp_path, report['yardstick'])
  text = (tmp_path / 'report.md').read_text()
  assert text.split('## Faces as a camera')[1] == (
      (out_dir / 'report.md').read_text().split('## Faces as a camera')[1])
  int8_row = next(line for line in text.splitlines() if line.startswith('| int8.tflite'))
  assert f"| {report['variants']['int8']['macs'] / 1e6:.0f} |" in int8_row
  float32_row = next(line for line in text.splitlines()
                     if line.startswith('| float32.tflite'))
  assert float32_row.split('|')[3].strip() == ''
  with pytest.raises(FileNotFoundError):
    report_lib.record_yardstick(tmp_path / 'nothing', report['yardstick'])
