"""Converts a float32 Keras classifier to the four TFLite variants."""

from collections.abc import Callable, Iterable
import pathlib
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from fer_common import contract



class ConversionError(RuntimeError):
  """The TFLite converter failed."""


def convert(model: keras.Model, variant: str,
            calibration: Callable[[], Iterable[np.ndarray]] | None = None,
            workdir: pathlib.Path | None = None) -> bytes:
  """Returns the .tflite flatbuffer of `model` as `variant`, with batch-1 input.

  Args:
    model: a float32 Keras model with one image input.
    variant: 'float32'; 'float16' (float16 weights); 'dynamic' (int8 weights, float
      activations); 'int8' (int8 weights, activations, input and output; builtin int8
      ops only, so the plain LiteRT CPU kernels of a Raspberry Pi run it).
    calibration: for 'int8', yields normalised (1, H, W, C) float32 images drawn like
      the training data.
    workdir: where the intermediate SavedModel goes (the export's staging folder, so
      that a kill leaves it where the next export cleans it); default: the system's
      temporary folder.
  """
  if variant not in contract.VARIANTS:
    raise ValueError(f'unknown variant {variant!r}; expected one of {contract.VARIANTS}')
  input_spec = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32)
  # Through a SavedModel: converting a Keras 3 model's concrete function directly
  # leaves READ_VARIABLE ops that break int8 calibration.
  saved_model = tempfile.mkdtemp(prefix='saved_model.', dir=workdir)
  try:
    model.export(saved_model, format='tf_saved_model', input_signature=[input_spec],
                 verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    return _convert(converter, variant, calibration)
  finally:
    shutil.rmtree(saved_model, ignore_errors=True)


def _convert(converter: tf.lite.TFLiteConverter, variant: str,
             calibration: Callable[[], Iterable[np.ndarray]] | None) -> bytes:
  if variant != 'float32':
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if variant == 'float16':
    converter.target_spec.supported_types = [tf.float16]
  elif variant == 'int8':
    if calibration is None:
      raise ValueError('the int8 variant needs calibration images')
    converter.representative_dataset = lambda: ([image] for image in calibration())
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
  try:
    return converter.convert()
  except Exception as e:  # the converter raises many types, all of them fatal here
    raise ConversionError(f'converting to {variant} failed: {e}') from e
