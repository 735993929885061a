"""Converts a trained run to quantised TFLite models with a measured report."""

from fer_common import extras
from fer_common import tensorflow_logs

extras.require(__name__, ('absl', 'keras', 'tensorflow'))
tensorflow_logs.import_quietly()
