"""TensorFlow's start-up lines that tell a user nothing, kept off the terminal.

Importing TensorFlow and looking for a GPU writes, straight to the process's stderr from
C++: the oneDNN notice, advice to rebuild for this CPU, and on a machine without a GPU
'Could not find cuda drivers' or the error line 'failed call to cuInit'. Every command
would start with them. `import_quietly` does that import and that look with stderr
captured, and passes on every other line. It also hides the INFO lines that follow on
every run (TensorFlow's C++ ones with TF_CPP_MIN_LOG_LEVEL=1 unless the variable is set,
and the Python ones of TFDS through absl's verbosity, which --verbosity=0 restores).
TF_CPP_MIN_LOG_LEVEL=0 shows everything.
"""

import os
import re
import sys
import tempfile

NOISE = re.compile(
    r'All log messages before absl::InitializeLog|oneDNN custom operations are on'
    r'|This TensorFlow binary is optimized|To enable the following instructions'
    r'|Could not find cuda drivers|failed call to cuInit|cuda_diagnostics'
    r'|Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered')


def import_quietly() -> None:
  """Imports TensorFlow (if installed) and lets it look for GPUs, with the NOISE lines
  of that start-up dropped from stderr."""
  if 'tensorflow' in sys.modules or os.environ.get('TF_CPP_MIN_LOG_LEVEL') == '0':
    return
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')
  try:
    from absl import logging  # pylint: disable=g-import-not-at-top
    logging.set_verbosity(logging.WARNING)
  except ImportError:
    pass
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile(mode='w+b') as captured:
    os.dup2(captured.fileno(), 2)
    try:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      tf.config.list_physical_devices('GPU')
    except ImportError:  # a machine with JAX only (python -m trainer --arrays) or the Pi
      pass
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
    captured.seek(0)
    kept = [line for line in captured.read().decode(errors='replace').splitlines(True)
            if not NOISE.search(line)]
  sys.stderr.write(''.join(kept))
