"""Converts a trained run to quantised TFLite models with a measured report."""

from fer_common import tensorflow_logs

tensorflow_logs.import_quietly()
