"""Trains FERNet: tf.data or numpy arrays in, a run dir out."""

from fer_common import extras
from fer_common import tensorflow_logs

extras.require(__name__, ('absl', 'keras'))
tensorflow_logs.import_quietly()
