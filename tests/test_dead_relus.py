"""The dead-ReLU check on a real FERNet: quiet on a healthy one, loud on a collapsed one."""

import keras
import numpy as np

from trainer import dead_relus
from trainer import model as fernet_model


def _images(n=32):
  return np.random.default_rng(0).random((n, 48, 48, 1), np.float32)


def test_freshly_initialised_fernet_has_no_dead_channels_and_no_warning():
  model = fernet_model.build_fernet(5, filters=(4, 8), kernel_size=3, dropout=0.0,
                                    head_dropout=0.0)
  fractions = dead_relus.dead_channel_fractions(model, _images())
  assert len(fractions) == 4
  assert max(fractions.values()) < dead_relus.COLLAPSED
  assert dead_relus.collapse_warning(fractions) is None


def test_collapsed_layer_is_measured_and_named():
  # Seeded: with some initialisations a channel of this tiny model is already dead on
  # the random probe images, which would add to the three killed below.
  keras.utils.set_random_seed(1)
  model = fernet_model.build_fernet(5, filters=(4, 8), kernel_size=3, dropout=0.0,
                                    head_dropout=0.0)
  untouched = dead_relus.dead_channel_fractions(model, _images())
  relus = list(untouched)
  assert untouched[relus[2]] == 0.0
  norms = [layer for layer in model.layers if type(layer).__name__ == 'BatchNormalization']
  gamma, beta, mean, variance = norms[2].get_weights()  # block 2, first conv
  beta[:3] = -1e3  # three of its eight channels can no longer fire
  norms[2].set_weights([gamma, beta, mean, variance])
  fractions = dead_relus.dead_channel_fractions(model, _images())
  assert fractions[relus[2]] == 3 / 8
  assert dead_relus.collapse_warning(fractions) is None
  beta[:] = -1e3
  norms[2].set_weights([gamma, beta, mean, variance])
  fractions = dead_relus.dead_channel_fractions(model, _images())
  assert fractions[relus[2]] == 1.0
  warning = dead_relus.collapse_warning(fractions)
  assert warning is not None and relus[2] in warning and '100%' in warning
