"""Probabilities that mean what they say: a temperature fitted on the validation split at
export, recorded in model.json and applied by the edge runner."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from edge import classifier
from edge import faces
from edge.litert_model import LiteRTModel
from export import calibration
from fer_common import contract


def overconfident(n=4000, temperature=2.5, seed=0):
  """(probabilities, labels) of a model that is right as often as calibrated
  probabilities say, then sharpened by `temperature`."""
  rng = np.random.default_rng(seed)
  logits = rng.normal(0, 1.2, (n, 5))
  calibrated = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  labels = np.array([rng.choice(5, p=p) for p in calibrated])
  return contract.apply_temperature(calibrated, 1 / temperature), labels


def test_the_fitted_temperature_undoes_overconfidence_and_lowers_the_error():
  probabilities, labels = overconfident()
  result = calibration.calibrate(probabilities, labels)
  assert result['temperature'] == pytest.approx(2.5, rel=0.1)
  assert result['ece_after'] < result['ece_before'] / 3
  assert result['nll_after'] < result['nll_before']
  calibrated, labels = overconfident(temperature=1.0)
  assert calibration.fit_temperature(calibrated, labels) == pytest.approx(1.0, rel=0.1)


def test_temperature_keeps_the_ranking_and_sums_to_one():
  p = np.array([[0.7, 0.2, 0.1, 0.0, 0.0]])
  for t in (0.5, 1.0, 3.0):
    scaled = contract.apply_temperature(p, t)
    assert scaled.sum() == pytest.approx(1.0)
    assert list(np.argsort(-scaled[0])[:3]) == [0, 1, 2]
  assert contract.apply_temperature(p, 3.0)[0, 0] < 0.7 < contract.apply_temperature(p, 0.5)[0, 0]


def test_export_records_each_variants_temperature_and_the_error_before_and_after(exported):
  out_dir, report = exported
  spec = json.loads((out_dir / contract.SIDECAR).read_text())
  for variant in contract.VARIANTS:
    assert spec['variants'][f'{variant}.tflite']['temperature'] == (
        report['calibration'][variant]['temperature'])
  markdown = (out_dir / contract.REPORT_MD).read_text()
  assert '## Probabilities' in markdown and 'ECE before' in markdown


def test_edge_applies_the_temperature_model_json_records(exported, tmp_path):
  out_dir, _ = exported
  folder = tmp_path / 'model'
  shutil.copytree(out_dir, folder)
  spec = json.loads((folder / contract.SIDECAR).read_text())
  spec['variants']['float32.tflite']['temperature'] = 3.0
  (folder / contract.SIDECAR).write_text(json.dumps(spec))
  face = (np.arange(48 * 48).reshape(48, 48) % 256).astype(np.uint8)
  raw = LiteRTModel(folder / 'float32.tflite').predict(face.astype(np.float32) / 255)
  model = classifier.FaceClassifier(folder / 'float32.tflite', faces.WholeImage())
  np.testing.assert_allclose(model.probabilities(face),
                             contract.apply_temperature(raw, 3.0), atol=1e-6)
  assert model.probabilities(face).max() < raw.max()


def test_calibration_command_updates_an_export_in_place(exported, tiny_data_dir, tmp_path):
  out_dir, _ = exported
  folder = tmp_path / 'model'
  shutil.copytree(out_dir, folder)
  spec = json.loads((folder / contract.SIDECAR).read_text())
  del spec['variants']['int8.tflite']['temperature']
  (folder / contract.SIDECAR).write_text(json.dumps(spec))
  report = json.loads((folder / contract.REPORT_JSON).read_text())
  del report['calibration']
  (folder / contract.REPORT_JSON).write_text(json.dumps(report))
  result = subprocess.run([sys.executable, '-m', 'export.calibration',
                           f'--model={folder / "int8.tflite"}', f'--data_dir={tiny_data_dir}'],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  spec = json.loads((folder / contract.SIDECAR).read_text())
  assert spec['variants']['int8.tflite']['temperature'] > 0
  assert 'int8' in json.loads((folder / contract.REPORT_JSON).read_text())['calibration']
  assert '## Probabilities' in (folder / contract.REPORT_MD).read_text()
  classifier.FaceClassifier(folder / 'int8.tflite', faces.WholeImage())  # still loads
