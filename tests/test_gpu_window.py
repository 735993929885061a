"""benchmarks/gpu_window.sh, the one script of a GPU window, start to finish on the CPU
with `tiny` models and epochs; then benchmarks/gpu_report.py on what it brought back."""

import json
import os
import subprocess
import sys
import tarfile

import pytest

from conftest import REPO
from trainer_helpers import run_trainer


@pytest.mark.long
def test_the_gpu_window_runs_start_to_finish_and_reports(tiny_data_dir, tmp_path):
  arrays = tmp_path / 'fer5_ck.npz.xz'
  result = run_trainer(f'--data_dir={tiny_data_dir}', f'--out={arrays}',
                       module='trainer.dump_arrays')
  assert result.returncode == 0, result.stderr[-3000:]
  # Carried in two pieces, as a device call must (the script joins them).
  data = arrays.read_bytes()
  (tmp_path / 'fer5_ck.npz.xz.part-aa').write_bytes(data[:len(data) // 2])
  (tmp_path / 'fer5_ck.npz.xz.part-ab').write_bytes(data[len(data) // 2:])
  arrays.unlink()
  out = tmp_path / 'out'
  env = dict(os.environ, KERAS_BACKEND='tensorflow', PYTHON=sys.executable,
             RUNS=str(tmp_path / 'runs'))
  window = subprocess.run(['bash', 'benchmarks/gpu_window.sh', str(arrays), str(out),
                           'tiny'], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
  assert window.returncode == 0, window.stdout[-3000:] + window.stderr[-3000:]

  throughput = json.loads((out / 'throughput.json').read_text())
  assert [(r['members'], r['batch']) for r in throughput['results']] == [(1, 8), (2, 8)]
  assert all(r['images_per_s'] > 0 and r['tflops'] > 0 for r in throughput['results'])
  with tarfile.open(out / 'runs.tar.gz') as archive:
    names = archive.getnames()
  for run in ('gpu_members8_b256', 'gpu_single_b64', 'seed_baseline', 'seed_improved'):
    assert f'{run}/history.csv' in names and f'{run}.log' in names
  assert 'gpu_members8_b256/member_1/flags.txt' in names  # tiny: 2 members, not 8
  assert not [name for name in names if name.endswith('.keras')]  # too big to bring back

  benchmarks = tmp_path / 'BENCHMARKS.md'
  report = subprocess.run([sys.executable, 'benchmarks/gpu_report.py',
                           f'--window={out}', f'--out={benchmarks}'], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
  assert report.returncode == 0, report.stderr[-3000:]
  text = benchmarks.read_text()
  assert '| 2 x 8 |' in text and '| 1 |' in text
  for run in ('seed_baseline', 'seed_improved'):
    row = next(line for line in text.splitlines() if f'configs/study/{run}.cfg' in line)
    assert 'did not finish' not in row and '%' in row
