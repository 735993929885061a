"""A .tflite classifier in the LiteRT interpreter: float in, probabilities out.

Quantised models (int8/uint8 input or output) are fed and read with the model's own
scale and zero point, so every exported variant is used the same way. No TensorFlow.
"""

from __future__ import annotations

import pathlib

import numpy as np

from edge import model_labels

try:
  from ai_edge_litert.interpreter import Interpreter
except ImportError:  # a Pi with the older tflite-runtime wheel instead
  from tflite_runtime.interpreter import Interpreter


class ModelError(ValueError):
  """The model file cannot be loaded or does not fit its sidecar."""


def _quantization(detail: dict) -> tuple[float, int]:
  scale, zero_point = detail['quantization']
  return float(scale), int(zero_point)


class LiteRTModel:
  """Runs one .tflite model on batches of normalised float images."""

  def __init__(self, path: str | pathlib.Path, num_threads: int = 1):
    """Loads `path` into an interpreter with `num_threads` CPU threads.

    Raises:
      ModelError: the file is missing or is no valid .tflite model.
    """
    self.path = pathlib.Path(path)
    if not self.path.is_file():
      raise ModelError(f'{self.path}: model file not found.')
    try:
      self._interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
      self._interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
      raise ModelError(f'{self.path}: not a loadable .tflite model ({e}).') from e
    self._input = self._interpreter.get_input_details()[0]
    self._output = self._interpreter.get_output_details()[0]
    # The labels inside the file (None for a model exported before they were).
    self.labels = model_labels.read(self.path)

  @property
  def input_shape(self) -> tuple[int, ...]:
    """The model's input shape, batch first, e.g. (1, 48, 48, 1)."""
    return tuple(int(d) for d in self._input['shape'])

  @property
  def input_dtype(self) -> np.dtype:
    return np.dtype(self._input['dtype'])

  @property
  def num_classes(self) -> int:
    return int(self._output['shape'][-1])

  def quantization(self) -> dict:
    """Input/output dtypes and, for quantised tensors, scale and zero point."""
    result = {'input_dtype': self.input_dtype.name,
              'output_dtype': np.dtype(self._output['dtype']).name}
    for name, detail in (('input', self._input), ('output', self._output)):
      if np.issubdtype(np.dtype(detail['dtype']), np.integer):
        result[f'{name}_scale'], result[f'{name}_zero_point'] = _quantization(detail)
    return result

  def _quantize_input(self, images: np.ndarray) -> np.ndarray:
    if not np.issubdtype(self.input_dtype, np.integer):
      return images.astype(self.input_dtype)
    scale, zero_point = _quantization(self._input)
    info = np.iinfo(self.input_dtype)
    quantized = np.round(images / scale) + zero_point
    return np.clip(quantized, info.min, info.max).astype(self.input_dtype)

  def _dequantize_output(self, output: np.ndarray) -> np.ndarray:
    if not np.issubdtype(output.dtype, np.integer):
      return output.astype(np.float32)
    scale, zero_point = _quantization(self._output)
    return (output.astype(np.float32) - zero_point) * scale

  def predict(self, image: np.ndarray) -> np.ndarray:
    """Class probabilities (float32) for one normalised image of the input shape
    (with or without the batch dimension)."""
    image = np.asarray(image, np.float32).reshape(self.input_shape)
    self._interpreter.set_tensor(self._input['index'], self._quantize_input(image))
    self._interpreter.invoke()
    output = self._interpreter.get_tensor(self._output['index'])
    return self._dequantize_output(output)[0]
