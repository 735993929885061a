"""Two MultiWorkerMirroredStrategy workers on 127.0.0.1 train one step and agree.

Keras 3's fit() does not work under MultiWorkerMirroredStrategy yet (keras-team/keras#20585,
tensorflow/tensorflow#72388): its build step averages a distributed batch across workers
and its metric reduction sums scalars along axis 0, both failing. The test is a strict
xfail: it starts passing, and so fails as an xfail, the day Keras fixes it.
"""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import REPO
from trainer_helpers import TINY_FLAGS


def _free_ports(n):
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(('127.0.0.1', 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


@pytest.mark.xfail(strict=True, reason='Keras 3 fit() under MultiWorkerMirroredStrategy: '
                   'keras-team/keras#20585')
def test_two_workers_train_a_step_and_end_with_the_same_weights(tiny_data_dir, tmp_path):
  workers = [f'127.0.0.1:{port}' for port in _free_ports(2)]
  run_dir = tmp_path / 'run'
  processes = []
  for index in range(2):
    env = dict(os.environ, TF_CONFIG=json.dumps(
        {'cluster': {'worker': workers}, 'task': {'type': 'worker', 'index': index}}))
    processes.append(subprocess.Popen(
        [sys.executable, '-m', 'trainer', f'--data_dir={tiny_data_dir}',
         f'--run_dir={run_dir}', '--distribution=multi_worker', '--epochs=1',
         '--steps_per_epoch=2', *TINY_FLAGS],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  outputs = [p.communicate(timeout=300) for p in processes]
  for process, (_, stderr) in zip(processes, outputs):
    assert process.returncode == 0, stderr[-3000:]
  chief = keras.models.load_model(run_dir / 'inference.keras', compile=False)
  worker = keras.models.load_model(run_dir / 'workers' / '1' / 'inference.keras',
                                   compile=False)
  initial = keras.models.clone_model(chief)  # freshly initialised, same architecture
  for a, b in zip(chief.get_weights(), worker.get_weights()):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  assert any(not np.allclose(a, b) for a, b in zip(chief.get_weights(),
                                                   initial.get_weights()))
  assert (run_dir / 'reports' / 'metrics.json').exists()
  assert not (run_dir / 'workers' / '1' / 'reports' / 'metrics.json').exists()
