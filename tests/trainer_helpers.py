"""Runs the trainer CLI in a subprocess, as a user would."""

import subprocess
import sys

from conftest import REPO

# A FERNet small enough that a step takes milliseconds.
TINY_FLAGS = ('--filters=4,8', '--batch_size=8', '--eval_limit=16', '--dropout=0.1',
              '--flip', '--rotation=10', '--zoom=0.1', '--shift=0.1',
              '--brightness=-0.1,0.1')


def run_trainer(*args, module='trainer', env=None, timeout=300):
  """Runs `python -m <module> args...` from the repo root; returns the CompletedProcess."""
  return subprocess.run([sys.executable, '-m', module, *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=timeout)
