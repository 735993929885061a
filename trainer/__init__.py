"""Trains FERNet: tf.data or numpy arrays in, a run dir out."""

from fer_common import tensorflow_logs

tensorflow_logs.import_quietly()
