"""Trains FERNet: tf.data or numpy arrays in, a run dir out."""

import sys

from fer_common import extras
from fer_common import tensorflow_logs

extras.require(__name__, ('absl', 'keras'))
# `python -m trainer` imports TensorFlow once its flags are parsed (trainer/__main__.py),
# so that --help and a bad flag answer at once; every other entry point imports it here.
if sys.orig_argv[1:3] != ['-m', 'trainer']:
  tensorflow_logs.import_quietly()
