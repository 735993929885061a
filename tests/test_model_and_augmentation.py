"""FERNet's shape, size and dtypes; augmentation only while training."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from trainer import augment
from trainer import model
from trainer import views
from trainer.config import TrainConfig


def only(**strengths) -> TrainConfig:
  """The recipe with no augmentation but `strengths` (trainer.config's names)."""
  return TrainConfig(**{'rotation': 0.0, 'brightness': (0.0, 0.0), 'zoom': 0.0,
                        'flip': False, 'shift': 0.0, **strengths})


def test_the_studys_fernet_shape_and_parameter_count():
  fernet = model.build_fernet(5, filters=(32, 64, 128, 256, 512), kernel_size=4,
                              dropout=0.5, head_dropout=0.0)
  assert fernet.input_shape == (None, 48, 48, 1)
  assert fernet.output_shape == (None, 5)
  convs = [l for l in fernet.layers if isinstance(l, keras.layers.Conv2D)]
  assert len(convs) == 10 and all(c.kernel_size == (4, 4) for c in convs)
  assert len([l for l in fernet.layers if isinstance(l, keras.layers.MaxPooling2D)]) == 5
  widths = (1, 32, 32, 64, 64, 128, 128, 256, 256, 512, 512)
  conv = sum(16 * a * b for a, b in zip(widths, widths[1:]))  # 4x4 kernels, no bias
  batch_norm = 4 * sum(widths[1:])  # gamma, beta, moving mean and variance
  assert fernet.count_params() == conv + batch_norm + 512 * 5 + 5 == 8_383_237


@pytest.mark.parametrize('policy, compute', [('mixed_float16', 'float16'),
                                             ('mixed_bfloat16', 'bfloat16')])
def test_mixed_precision_keeps_float32_probabilities(policy, compute):
  fernet = model.build_fernet(5, filters=(8, 8), kernel_size=3, dropout=0.1,
                              head_dropout=0.0, dtype_policy=policy)
  assert fernet.get_layer('block1_conv1').compute_dtype == compute
  probabilities = fernet(np.zeros((2, 48, 48, 1), np.float32))
  assert probabilities.dtype == 'float32'
  np.testing.assert_allclose(np.sum(probabilities, axis=-1), 1.0, rtol=1e-3)


def test_a_mirror_average_built_in_mixed_precision_reports_float32_probabilities():
  """The trainer's reports build their flip-averaged model under the training policy; the
  numbers must be the float32 inference model's, as the export and trainer.evaluate see."""
  fernet = model.build_fernet(5, filters=(8, 8), kernel_size=3, dropout=0.0,
                              head_dropout=0.0, dtype_policy='float32')
  images = np.random.default_rng(0).random((4, 48, 48, 1)).astype(np.float32)
  expected = views.build_ensemble([fernet], flip_tta=True).predict(images, verbose=0)
  previous = keras.config.dtype_policy().name
  keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    got = views.build_ensemble([fernet], flip_tta=True).predict(images, verbose=0)
  finally:
    keras.mixed_precision.set_global_policy(previous)
  assert got.dtype == np.float32
  np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_augmentation_changes_images_only_in_training():
  augmenter = augment.build_augmenter(TrainConfig(
      rotation=30, brightness=(-0.3, 0.3), zoom=0.2, flip=True, shift=0.2), seed=1)
  assert [type(l).__name__ for l in augmenter.layers] == [
      'RandomFlip', 'RandomRotation', 'RandomZoom', 'RandomTranslation', 'RandomBrightness']
  images = np.random.default_rng(0).random((8, 48, 48, 1)).astype(np.float32)
  np.testing.assert_array_equal(augmenter(images, training=False), images)
  augmented = np.asarray(augmenter(images, training=True))
  assert not np.allclose(augmented, images)
  assert augmented.min() >= 0.0 and augmented.max() <= 1.0


def test_random_erasing_blanks_one_rectangle_in_about_the_given_share_of_images():
  augmenter = augment.build_augmenter(only(erasing=0.5), seed=3)
  images = np.full((256, 48, 48, 1), 0.5, np.float32)
  changed = np.abs(np.asarray(augmenter(images, training=True)) - images) > 1e-6
  erased = changed.any(axis=(1, 2, 3))
  assert 0.35 < erased.mean() < 0.65
  area = changed[erased].mean(axis=(1, 2, 3))
  assert area.max() <= 0.34 and area.mean() > 0.05
  # The erased pixels form one rectangle: its bounding box is fully changed.
  first = changed[erased][0, :, :, 0]
  rows, cols = np.nonzero(first)
  box = first[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
  assert box.mean() > 0.9  # noise may equal the 0.5 background on a few pixels
  np.testing.assert_array_equal(augmenter(images, training=False), images)


def test_mixup_blends_images_and_labels_with_the_same_weights_in_tf_data():
  # Each class has its own constant image, so a blended image must equal the blend of
  # the class images that its label says it is made of.
  class_values = np.array([0.0, 0.25, 0.5, 0.75, 1.0], np.float32)
  classes = np.arange(64) % 5
  images = np.broadcast_to(class_values[classes, None, None, None], (64, 48, 48, 1))
  dataset = tf.data.Dataset.from_tensor_slices(
      (images, tf.one_hot(classes, 5))).batch(64).map(augment.build_mixup(0.4, seed=1))
  mixed_images, mixed_labels = (np.asarray(t) for t in next(iter(dataset)))
  np.testing.assert_allclose(mixed_labels.sum(axis=1), 1.0, rtol=1e-5)
  assert (mixed_labels.max(axis=1) < 0.99).mean() > 0.3  # many examples were blended
  np.testing.assert_allclose(mixed_images[:, 0, 0, 0], mixed_labels @ class_values, atol=1e-5)
  assert np.ptp(mixed_images, axis=(1, 2, 3)).max() < 1e-6  # blended as whole images


def test_no_augmentation_configured_is_the_identity():
  augmenter = augment.build_augmenter(only())
  images = np.ones((2, 48, 48, 1), np.float32)
  np.testing.assert_array_equal(augmenter(images, training=True), images)


@pytest.mark.parametrize('quality', [10, 30, 50, 90])
def test_jpeg_layer_compresses_as_a_jpeg_encoder_does(quality):
  import io

  from PIL import Image

  from trainer import camera_layers

  rng = np.random.default_rng(0)
  y, x = np.mgrid[0:48, 0:48]
  face = (128 + 60 * np.sin(x / 7) * np.cos(y / 5) + rng.normal(0, 10, (48, 48)))
  face = face.clip(0, 255).astype(np.uint8)
  encoded = io.BytesIO()
  Image.fromarray(face).save(encoded, 'JPEG', quality=quality)
  by_pil = np.asarray(Image.open(encoded), np.float32)
  layer = camera_layers.RandomJpegQuality(quality, max_quality=quality)
  ours = 255 * np.asarray(layer(face[None, :, :, None] / np.float32(255), training=True))
  # Within rounding of libjpeg's integer DCT, a fraction of what compression changes.
  difference, compression = (np.abs(ours[0, :, :, 0] - by_pil).mean(),
                             np.abs(by_pil - face).mean())
  assert difference < 0.6 and difference < compression / 4  # in 0-255 levels
  np.testing.assert_array_equal(layer(face[None, :, :, None], training=False),
                                face[None, :, :, None])


def test_gamma_keeps_black_white_and_order_and_varies_mid_tones():
  augmenter = augment.build_augmenter(only(gamma=0.5), seed=0)
  ramp = np.tile(np.linspace(0, 1, 48, dtype=np.float32), (64, 48, 1))[..., None]
  out = np.asarray(augmenter(ramp, training=True))
  np.testing.assert_allclose(out[:, :, 0], 0, atol=1e-6)
  np.testing.assert_allclose(out[:, :, -1], 1, atol=1e-6)
  assert (np.diff(out, axis=2) >= 0).all()  # a brighter pixel stays brighter
  middle = out[:, 0, 24, 0]
  assert middle.min() < ramp[0, 0, 24, 0] < middle.max()
  assert ((middle > 0.51 ** 1.5 - 1e-3) & (middle < 0.51 ** (1 / 1.5) + 1e-3)).all()


@pytest.mark.parametrize('cpu_flags, policy', [
    ('avx2 avx512f amx_bf16 amx_int8', 'mixed_bfloat16'), ('avx2 avx512_bf16', 'float32')])
def test_auto_precision_is_bfloat16_on_a_cpu_with_amx_only(monkeypatch, cpu_flags, policy):
  from fer_common import machine
  from trainer import devices

  if tf.config.list_physical_devices('GPU'):
    pytest.skip('a GPU is visible: auto is bfloat16 whatever the CPU')
  monkeypatch.setattr(machine, '_cpuinfo', lambda: f'flags\t\t: fpu {cpu_flags}\n')
  assert devices.auto_precision() == policy
