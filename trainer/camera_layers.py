"""Augmentation layers for what a camera does to a face that Keras has no layer for:
gamma (exposure and the sensor's response curve) and JPEG compression.

Both are written in keras.ops, so they run in the model under any backend and compile
with XLA; they act only with training=True, on images in [0, 1].
"""

import math

import keras
from keras import layers
from keras import ops
import numpy as np

# The JPEG standard's luminance quantisation table (ITU-T T.81, Annex K, Table K.1).
_LUMINANCE_TABLE = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61],
    [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77],
    [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101],
    [72, 92, 95, 98, 112, 100, 103, 99]], np.float32)
_BLOCK = 8


def _dct_matrix() -> np.ndarray:
  """The orthonormal 8-point DCT-II matrix: coefficients = D @ block @ D.T."""
  d = np.array([[math.cos((2 * x + 1) * u * math.pi / (2 * _BLOCK))
                 for x in range(_BLOCK)] for u in range(_BLOCK)], np.float32)
  d[0] *= math.sqrt(1 / _BLOCK)
  d[1:] *= math.sqrt(2 / _BLOCK)
  return d


@keras.saving.register_keras_serializable(package='fer_edge')
class RandomGamma(layers.Layer):
  """Raises each image to a power gamma drawn log-uniformly from [1 / (1 + factor),
  1 + factor]: darker or brighter mid-tones with black and white kept."""

  def __init__(self, factor: float, seed: int | None = None, **kwargs):
    super().__init__(**kwargs)
    self.factor, self.seed = factor, seed
    self.seed_generator = keras.random.SeedGenerator(seed)

  def call(self, images, training=False):
    if not training:
      return images
    limit = math.log1p(self.factor)
    log_gamma = keras.random.uniform((ops.shape(images)[0], 1, 1, 1), -limit, limit,
                                     seed=self.seed_generator)
    return ops.power(ops.clip(images, 0.0, 1.0), ops.exp(log_gamma))

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), 'factor': self.factor, 'seed': self.seed}


@keras.saving.register_keras_serializable(package='fer_edge')
class RandomJpegQuality(layers.Layer):
  """JPEG compression of each image at a quality drawn from [min_quality, max_quality]
  (1-100): every 8x8
  block's DCT coefficients rounded to the standard luminance table scaled for that
  quality (libjpeg's scaling), as a JPEG encoder does to a grayscale image before its
  lossless entropy coding. For grayscale images whose height and width are multiples
  of 8."""

  def __init__(self, min_quality: int, max_quality: int = 100, seed: int | None = None,
               **kwargs):
    super().__init__(**kwargs)
    self.min_quality, self.max_quality, self.seed = min_quality, max_quality, seed
    self.seed_generator = keras.random.SeedGenerator(seed)

  def call(self, images, training=False):
    if not training:
      return images
    batch, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]
    quality = keras.random.uniform((batch, 1, 1, 1, 1), self.min_quality,
                                   self.max_quality, seed=self.seed_generator)
    scale = ops.where(quality < 50, 5000.0 / quality, 200.0 - 2.0 * quality)
    table = ops.maximum(ops.floor((_LUMINANCE_TABLE * scale + 50.0) / 100.0), 1.0)
    pixels = ops.clip(images, 0.0, 1.0) * 255.0 - 128.0
    rows, columns = height // _BLOCK, width // _BLOCK
    blocks = ops.transpose(ops.reshape(pixels, (batch, rows, _BLOCK, columns, _BLOCK)),
                           (0, 1, 3, 2, 4))
    dct = ops.convert_to_tensor(_dct_matrix())
    coefficients = ops.einsum('ij,bmnjk,lk->bmnil', dct, blocks, dct)
    coefficients = ops.round(coefficients / table) * table
    blocks = ops.einsum('ji,bmnjk,kl->bmnil', dct, coefficients, dct)
    pixels = ops.reshape(ops.transpose(blocks, (0, 1, 3, 2, 4)), (batch, height, width, 1))
    return ops.clip(ops.round(pixels + 128.0), 0.0, 255.0) / 255.0

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), 'min_quality': self.min_quality,
            'max_quality': self.max_quality, 'seed': self.seed}
