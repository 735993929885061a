"""FERNet: blocks of [Conv + BatchNorm + ReLU] x2, MaxPool 2x2, Dropout; softmax (the
study: 5 blocks, 4x4 kernels; our recipe is in trainer.config)."""

from collections.abc import Sequence

import keras
from keras import layers

from fer_common import contract


def build_fernet(
    num_classes: int,
    *,
    filters: Sequence[int],
    kernel_size: int,
    dropout: float,
    head_dropout: float,
    dtype_policy: str | None = None,
    synchronized_batch_norm: bool = False,
) -> keras.Model:
  """Builds FERNet for normalised (48, 48, 1) inputs.

  Args:
    num_classes: size of the softmax.
    filters: filters of each block's two convolutions; one block per entry.
    kernel_size: convolution kernel size.
    dropout: dropout rate after each block.
    head_dropout: dropout rate before the classifier (0: none).
    dtype_policy: Keras dtype policy of the layers (default: the global policy). The
      softmax always computes in float32.
    synchronized_batch_norm: BatchNorm statistics of the global batch over several
      replicas, as on one device.

  Returns:
    An uncompiled Keras model named 'fernet', outputs class probabilities (float32).
  """
  dtype = dtype_policy and keras.DTypePolicy(dtype_policy)
  inputs = keras.Input(contract.IMAGE_SHAPE, name='image')
  x = inputs
  for block, width in enumerate(filters, start=1):
    for conv in (1, 2):
      # No conv bias: the BatchNorm that follows has its own offset.
      x = layers.Conv2D(width, kernel_size, padding='same', use_bias=False,
                        kernel_initializer='glorot_uniform', dtype=dtype,
                        name=f'block{block}_conv{conv}')(x)
      x = layers.BatchNormalization(synchronized=synchronized_batch_norm, dtype=dtype,
                                    name=f'block{block}_bn{conv}')(x)
      x = layers.ReLU(dtype=dtype, name=f'block{block}_relu{conv}')(x)
    x = layers.MaxPooling2D(2, dtype=dtype, name=f'block{block}_pool')(x)
    x = layers.Dropout(dropout, dtype=dtype, name=f'block{block}_dropout')(x)
  x = layers.Flatten(dtype=dtype, name='flatten')(x)
  if head_dropout:
    x = layers.Dropout(head_dropout, dtype=dtype, name='head_dropout')(x)
  x = layers.Dense(num_classes, kernel_initializer='glorot_uniform', dtype=dtype,
                   name='logits')(x)
  outputs = layers.Activation('softmax', dtype='float32', name='probabilities')(x)
  return keras.Model(inputs, outputs, name='fernet')


def forward_macs(filters: Sequence[int], kernel_size: int, num_classes: int) -> int:
  """Multiply-adds of one image's forward pass through FERNet's convolutions and its
  dense layer (BatchNorm, ReLU, pooling and softmax left out)."""
  side, channels, total = contract.IMAGE_SHAPE[0], contract.IMAGE_SHAPE[-1], 0
  for width in filters:
    total += side * side * kernel_size ** 2 * (channels * width + width * width)
    side, channels = side // 2, width
  return total + side * side * channels * num_classes
