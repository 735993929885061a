"""The training-only augmentation: Keras preprocessing layers on normalised batches.

RandomErasing is the random erasing of Zhong et al. 2017; RandomGamma and
RandomJpegQuality (trainer.camera_layers) stand for a camera's exposure and its stream's
compression."""

from collections.abc import Callable

import keras
from keras import layers

from fer_common import contract
from trainer import camera_layers
from trainer.config import TrainConfig


def build_augmenter(config: TrainConfig, seed: int | None = None) -> keras.Sequential:
  """Returns a float32 Sequential of the layers `config`'s augmentation options ask for
  (their help in trainer.config says what each does; 0 or False leaves a layer out),
  the identity if none.

  The layers act only when called with training=True, and always compute in float32,
  also under a mixed-precision policy.
  """
  stack = []
  if config.flip:
    stack.append(layers.RandomFlip('horizontal', seed=seed, dtype='float32'))
  if config.rotation:
    stack.append(layers.RandomRotation(config.rotation / 360.0, fill_mode='nearest',
                                       seed=seed, dtype='float32'))
  if config.zoom:
    stack.append(layers.RandomZoom(config.zoom, fill_mode='nearest', seed=seed,
                                   dtype='float32'))
  if config.shift:
    stack.append(layers.RandomTranslation(config.shift, config.shift, fill_mode='nearest',
                                          seed=seed, dtype='float32'))
  if any(config.brightness):
    stack.append(layers.RandomBrightness(config.brightness,
                                         value_range=contract.VALUE_RANGE,
                                         seed=seed, dtype='float32'))
  if config.erasing:
    # factor=(p, p): RandomErasing draws each image's probability from the factor range.
    stack.append(layers.RandomErasing(factor=(config.erasing, config.erasing),
                                      value_range=contract.VALUE_RANGE, seed=seed,
                                      dtype='float32'))
  if config.contrast:
    stack.append(layers.RandomContrast(config.contrast, value_range=contract.VALUE_RANGE,
                                       seed=seed, dtype='float32'))
  if config.blur:
    stack.append(layers.RandomGaussianBlur(factor=1.0, kernel_size=5,
                                           sigma=(0.0, config.blur),
                                           value_range=contract.VALUE_RANGE, seed=seed,
                                           dtype='float32'))
  if config.gamma:
    stack.append(camera_layers.RandomGamma(config.gamma, seed=seed, dtype='float32'))
  if config.noise:
    stack.append(layers.GaussianNoise(config.noise, seed=seed, dtype='float32'))
  if config.jpeg_quality:
    stack.append(camera_layers.RandomJpegQuality(config.jpeg_quality, seed=seed,
                                                 dtype='float32'))
  return keras.Sequential(stack or [layers.Identity(dtype='float32')], name='augmentation')


def build_mixup(alpha: float, seed: int | None = None) -> Callable:
  """Returns `mix(images, one_hot_labels) -> (images, labels)`: Keras MixUp (Zhang et al.
  2018) of each example with another of its batch, weight ~ Beta(alpha, alpha).

  It needs the labels, so it runs in the tf.data map, never inside the model.
  """
  mixup = layers.MixUp(alpha=alpha, seed=seed, dtype='float32')

  def mix(images, labels):
    mixed = mixup({'images': images, 'labels': labels}, training=True)
    return mixed['images'], mixed['labels']

  return mix


def allow_xla(augmenter: keras.Sequential) -> None:
  """Lets Keras XLA-compile a model holding `augmenter` where the backend is JAX.

  Keras marks its geometric augmentation layers (RandomRotation, RandomZoom,
  RandomTranslation) as not XLA-compilable under every backend, which turns compilation
  off for the whole model. Under JAX their image transform (map_coordinates) compiles;
  left uncompiled, FERNet's training step took 1.7 s on an H200.
  """
  if keras.config.backend() == 'jax':
    for layer in augmenter.layers:
      layer.supports_jit = True
