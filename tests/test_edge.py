"""The edge runner on exported tiny models: JSON output, every variant, detection, bad
input, and no TensorFlow anywhere in its imports."""

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from conftest import SHARED_DATA
from conftest import requires_real_data
from edge import classifier
from edge import cli
from edge import faces
from edge import model_labels
from fer_common import contract
from fer_common import machine

DUMMY_FACES = REPO / 'fer_tfds' / 'fer_emotions' / 'dummy_data' / 'fer2013' / 'test'


def run_edge(*args, timeout=120):
  return subprocess.run([sys.executable, '-m', 'edge', *map(str, args)], cwd=REPO,
                        capture_output=True, text=True, timeout=timeout)


def _records(stdout):
  return [json.loads(line) for line in stdout.splitlines() if line.startswith('{')]


def test_edge_never_imports_tensorflow_trainer_or_export(exported, tmp_path):
  out_dir, _ = exported
  code = f'''
import sys
from edge import cli, video, classifier, faces, images, litert_model, sidecar
rc = cli.main(["classify", "--no-detect", "--model", "{out_dir / 'int8.tflite'}",
               "{DUMMY_FACES / 'happy'}"])
cli.main(["bench", "--model", "{out_dir / 'int8.tflite'}", "--runs", "3"])
loaded = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "trainer",
                                                          "export", "tensorflow_datasets")]
assert rc == 0 and not loaded, loaded
'''
  result = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize('variant', contract.VARIANTS)
def test_classify_cropped_faces_with_every_variant(exported, variant):
  out_dir, _ = exported
  result = run_edge('classify', '--no-detect', '--model', out_dir / f'{variant}.tflite',
                    DUMMY_FACES / 'happy', DUMMY_FACES / 'sad')
  assert result.returncode == 0, result.stderr[-2000:]
  records = _records(result.stdout)
  assert len(records) == 8
  labels = (out_dir / 'labels.txt').read_text().split()
  for record in records:
    assert set(record) == {'file', 'faces', 'error'} and record['error'] is None
    (face,) = record['faces']
    assert face['box'] == [0, 0, 48, 48]
    assert list(face['probabilities']) == labels
    assert sum(face['probabilities'].values()) == pytest.approx(1.0, abs=0.02)
    assert face['label'] == max(face['probabilities'], key=face['probabilities'].get)


def test_float32_tflite_through_edge_matches_keras(trained_run, exported):
  import keras  # only the test compares against Keras; edge itself never imports it

  out_dir, _ = exported
  path = DUMMY_FACES / 'angry' / 'PublicTest_00000.jpg'
  result = run_edge('classify', '--no-detect', '--model', out_dir / 'float32.tflite', path)
  (record,) = _records(result.stdout)
  pixels = np.asarray(Image.open(path).convert('L'), np.float32)[None, ..., None] / 255
  model = keras.models.load_model(trained_run / 'inference.keras', compile=False)
  # The edge runner applies the temperature fitted at export (test_calibration.py).
  temperature = json.loads((out_dir / 'model.json').read_text())['variants'][
      'float32.tflite']['temperature']
  expected = contract.apply_temperature(model.predict(pixels, verbose=0)[0], temperature)
  np.testing.assert_allclose(list(record['faces'][0]['probabilities'].values()), expected,
                             atol=1e-4)


def test_bad_items_are_reported_and_the_rest_still_processed(exported, tmp_path):
  out_dir, _ = exported
  (tmp_path / 'notes.txt').write_text('not an image')
  good = (DUMMY_FACES / 'happy' / 'PublicTest_00000.jpg').read_bytes()
  (tmp_path / 'corrupt.jpg').write_bytes(good[:len(good) // 3])
  Image.new('L', (320, 240), 128).save(tmp_path / 'blank.png')
  result = run_edge('classify', '--model', out_dir / 'int8.tflite',
                    tmp_path / 'notes.txt', tmp_path / 'corrupt.jpg', tmp_path / 'blank.png',
                    tmp_path / 'missing.jpg')
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  errors = {pathlib_name(r['file']): r['error'] for r in _records(result.stdout)}
  assert 'not an image' in errors['notes.txt']
  assert 'corrupt' in errors['corrupt.jpg']
  assert 'no face found' in errors['blank.png']
  assert 'no such file' in errors['missing.jpg']
  ok = run_edge('classify', '--no-detect', '--model', out_dir / 'int8.tflite',
                tmp_path / 'notes.txt', DUMMY_FACES / 'happy' / 'PublicTest_00000.jpg')
  records = _records(ok.stdout)
  assert ok.returncode == 1 and records[1]['error'] is None and records[1]['faces']


def pathlib_name(path):
  return path.rsplit('/', 1)[-1]


def test_model_and_sidecar_mismatch_is_a_clear_error(exported, tmp_path):
  out_dir, _ = exported
  shutil.copy(out_dir / 'int8.tflite', tmp_path)
  spec = json.loads((out_dir / 'model.json').read_text())
  spec['labels'] = spec['labels'][:3]
  (tmp_path / 'model.json').write_text(json.dumps(spec))
  result = run_edge('classify', '--no-detect', '--model', tmp_path / 'int8.tflite',
                    DUMMY_FACES / 'happy')
  assert result.returncode == 2
  assert 'has 5 outputs but its model.json lists 3 labels' in result.stderr
  assert 'Traceback' not in result.stderr
  (tmp_path / 'model.json').unlink()
  missing = run_edge('bench', '--model', tmp_path / 'int8.tflite', '--runs', '2')
  assert missing.returncode == 2 and 'model.json not found' in missing.stderr


def test_unreadable_camera_and_video_are_clear_errors(exported, tmp_path):
  out_dir, _ = exported
  for source in ('9', tmp_path / 'missing.mp4'):
    result = run_edge('video', str(source), '--model', out_dir / 'int8.tflite')
    assert result.returncode == 2, result.stderr[-2000:]
    assert 'cannot open' in result.stderr and 'Traceback' not in result.stderr


def test_video_file_is_classified_frame_by_frame_and_written(exported, tmp_path):
  out_dir, _ = exported
  face = cv2.imread(str(DUMMY_FACES / 'happy' / 'PublicTest_00000.jpg'))
  source = tmp_path / 'in.avi'
  writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*'MJPG'), 10, (48, 48))
  for _ in range(12):
    writer.write(face)
  writer.release()
  result = run_edge('video', source, '--no-detect', '--model', out_dir / 'int8.tflite',
                    '--output', tmp_path / 'out.avi')
  assert result.returncode == 0, result.stderr[-2000:]
  frames = _records(result.stdout)
  assert [f['frame'] for f in frames] == list(range(1, 13))
  assert all(len(f['faces']) == 1 for f in frames)
  assert 'FPS' in result.stderr
  written = cv2.VideoCapture(str(tmp_path / 'out.avi'))
  assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 12


def test_bench_reports_latency_percentiles_and_fps(exported):
  out_dir, _ = exported
  result = run_edge('bench', '--model', out_dir / 'int8.tflite', '--runs', '20')
  assert result.returncode == 0, result.stderr[-2000:]
  report = json.loads(result.stdout)
  for part in ('model_only', 'detect_and_classify'):
    assert report[part]['median_ms'] <= report[part]['p90_ms'] <= report[part]['p99_ms']
    assert report[part]['fps'] > 0
  assert report['frame'] == '640x480'


def test_default_model_is_the_shipped_int8_and_its_sidecar_belongs_to_it():
  model = cli.parser().parse_args(['classify', 'photo.jpg']).model
  assert model == REPO / 'models' / 'accurate' / 'int8.tflite' and model.is_file()
  assert cli.parser().parse_args(['classify', '--model', 'accurate', 'x']).model == model
  spec = json.loads((model.parent / 'model.json').read_text())
  assert list(spec['variants']) == ['int8.tflite']  # only what ships is described
  shipped = classifier.FaceClassifier(model, faces.WholeImage())
  assert shipped.sidecar.labels == tuple((model.parent / 'labels.txt').read_text().split())


def test_a_model_beside_another_models_sidecar_is_refused(exported, tmp_path):
  out_dir, _ = exported
  shutil.copy(out_dir / 'model.json', tmp_path)
  shutil.copy(out_dir / 'dynamic.tflite', tmp_path / 'int8.tflite')  # same shapes
  result = run_edge('classify', '--no-detect', '--model', tmp_path / 'int8.tflite',
                    DUMMY_FACES / 'happy')
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  assert 'is not the file its model.json was written for' in result.stderr


def test_an_empty_folder_is_an_error_not_silence(exported, tmp_path):
  out_dir, _ = exported
  (tmp_path / 'empty').mkdir()
  result = run_edge('classify', '--model', out_dir / 'int8.tflite', tmp_path / 'empty')
  assert result.returncode == 1
  (record,) = _records(result.stdout)
  assert 'a folder without image files' in record['error']


def test_a_huge_png_is_an_error_of_its_own_and_the_batch_goes_on(exported, tmp_path):
  out_dir, _ = exported
  Image.new('L', (14000, 14000), 90).save(tmp_path / 'huge.png')  # ~200 KB on disk
  face = DUMMY_FACES / 'happy' / 'PublicTest_00000.jpg'
  result = run_edge('classify', '--no-detect', '--model', out_dir / 'int8.tflite',
                    tmp_path / 'huge.png', face)
  assert result.returncode == 1 and 'Traceback' not in result.stderr
  huge, after = _records(result.stdout)
  assert '14000x14000 pixels' in huge['error'] and 'downscale it first' in huge['error']
  assert after['error'] is None and after['faces']


def test_a_huge_jpeg_is_decoded_downscaled_within_the_memory_bound(exported, tmp_path):
  out_dir, _ = exported
  rng = np.random.default_rng(0)
  Image.fromarray(rng.integers(0, 255, (1000, 1000, 3), np.uint8)).resize(
      (10000, 10000)).save(tmp_path / 'huge.jpg', quality=60)
  # The peak resident memory of this process alone (VmHWM; ru_maxrss would count
  # the pytest process it was forked from).
  code = f"""
import re
from edge import cli
model, image = '{out_dir / 'int8.tflite'}', '{tmp_path / 'huge.jpg'}'
rc = cli.main(['classify', '--model', model, image])
status = open('/proc/self/status').read()
print('peak_mb', int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) // 1024)
"""
  result = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
  assert 'Traceback' not in result.stderr, result.stderr[-2000:]
  (record,) = _records(result.stdout)
  assert record['error'] is None or record['error'].startswith('no face found')
  peak_mb = int(result.stdout.split('peak_mb')[1])
  assert peak_mb < 400, f'{peak_mb} MB for one 10000x10000 JPEG (a 1 GB Pi has ~800 MB)'


def test_video_output_into_a_missing_folder_names_the_folder(exported, tmp_path):
  out_dir, _ = exported
  result = run_edge('video', '0', '--model', out_dir / 'int8.tflite', '--output',
                    tmp_path / 'nowhere' / 'out.mp4')
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  assert f'the folder {tmp_path / "nowhere"} does not exist' in result.stderr


@requires_real_data
def test_faces_pasted_on_a_canvas_are_detected_and_annotated(exported, tmp_path):
  out_dir, _ = exported
  with zipfile.ZipFile(SHARED_DATA / 'fer2013.zip') as archive:
    names = sorted(n for n in archive.namelist() if n.startswith('test/happy/'))[:10]
    faces = [np.asarray(Image.open(io.BytesIO(archive.read(n))).convert('L'))
             for n in names]
  for i, face in enumerate(faces):
    canvas = np.full((480, 640), 90, np.uint8)
    canvas[100:260, 200:360] = cv2.resize(face, (160, 160), interpolation=cv2.INTER_CUBIC)
    Image.fromarray(canvas).save(tmp_path / f'scene{i}.png')
  result = run_edge('classify', '--model', out_dir / 'int8.tflite', '--annotate',
                    tmp_path / 'annotated', *sorted(tmp_path.glob('scene*.png')))
  found = [r for r in _records(result.stdout) if r['faces']]
  assert len(found) >= 6, result.stdout
  for record in found:  # the face's centre is (280, 180)
    x, y, w, h = record['faces'][0]['box']
    assert abs(x + w / 2 - 280) < 40 and abs(y + h / 2 - 180) < 40 and 100 < w < 240
  assert len(list((tmp_path / 'annotated').glob('*.png'))) == 10


def test_machine_names_cores_and_only_the_cpu_flags_asked_for(monkeypatch):
  assert f'{os.cpu_count()} cores' in machine.describe()
  cpuinfo = ('model name\t: Test CPU\n'
             'flags\t\t: fpu sse2 avx2 avx512f avx512_vnni amx_int8 amx_bf16 pdpe1gb\n')
  monkeypatch.setattr(machine, '_cpuinfo', lambda: cpuinfo)
  assert machine.cpu_flags(machine.INT8_DOT_PRODUCT_FLAGS) == 'amx_int8, avx512_vnni'
  assert machine.cpu_flags(machine.BFLOAT16_FLAGS) == 'amx_bf16'
  assert machine.describe() == (f'Test CPU, {os.cpu_count()} cores '
                                '(amx_bf16, amx_int8, avx2, avx512_vnni, avx512f)')
  monkeypatch.setattr(machine, '_cpuinfo', lambda: 'flags\t\t: fpu sse2\n')
  assert machine.cpu_flags(machine.INT8_DOT_PRODUCT_FLAGS) == 'none'
  monkeypatch.setattr(machine, '_cpuinfo', lambda: None)  # not Linux
  assert machine.cpu_flags(machine.INT8_DOT_PRODUCT_FLAGS) == 'unknown'


def test_every_model_carries_its_labels_inside(exported):
  out_dir, _ = exported
  labels = tuple(json.loads((out_dir / 'model.json').read_text())['labels'])
  for variant in contract.VARIANTS:
    assert model_labels.read(out_dir / f'{variant}.tflite') == labels
  for shipped in cli.SHIPPED:
    path = cli.shipped_model(shipped)
    assert model_labels.read(path) == tuple(
        json.loads(path.with_name('model.json').read_text())['labels'])


def test_a_model_json_whose_labels_were_changed_is_refused(exported, tmp_path):
  out_dir, _ = exported
  folder = tmp_path / 'model'
  shutil.copytree(out_dir, folder)
  spec = json.loads((folder / 'model.json').read_text())
  spec['labels'] = spec['labels'][1:] + spec['labels'][:1]  # rotated, checksum intact
  (folder / 'model.json').write_text(json.dumps(spec))
  result = run_edge('classify', '--no-detect', '--model', folder / 'int8.tflite',
                    DUMMY_FACES / 'happy')
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('error:') and 'not the ones inside the model' in last
