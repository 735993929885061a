"""trainer.members: several FERNets trained at once in one program, each as it would
train alone."""

from absl import flags
import keras
import numpy as np
import pytest

from trainer import array_fit
from trainer import flags_def
from trainer import members
from trainer.config import ConfigError
from trainer.config import TrainConfig

# No augmentation or dropout: a member and its lone twin see exactly the same inputs.
PLAIN = ('--filters=4,8', '--dropout=0', '--head_dropout=0', '--rotation=0', '--zoom=0',
         '--shift=0', '--noflip', '--brightness=0,0', '--epochs=2')


def _config(*args):
  values = flags.FlagValues()
  flags_def.define_flags(values)
  values(['trainer', '--run_dir=unused', *args])
  return TrainConfig.from_flags(values)


def test_each_member_trains_as_it_would_alone():
  rng = np.random.default_rng(0)
  images = rng.random((32, 48, 48, 1), np.float32)
  labels = np.eye(5, dtype=np.float32)[rng.integers(0, 5, 32)]
  weights = rng.uniform(0.5, 2.0, 32).astype(np.float32)  # as --balance_classes gives
  keras.utils.set_random_seed(0)
  fernets, together = members.build_training_model(
      5, 4, _config(*PLAIN, '--members_at_once=3'))
  [alone], alone_model = array_fit.build_training_model(5, 4, _config(*PLAIN))
  alone.set_weights(fernets[1].get_weights())
  assert any(not np.array_equal(a, b) for a, b in
             zip(fernets[0].get_weights(), fernets[1].get_weights()))
  together.fit(images, members.targets(labels, 3), sample_weight=weights, batch_size=8,
               epochs=2, shuffle=False, verbose=0)
  alone_model.fit(images, labels, sample_weight=weights, batch_size=8, epochs=2,
                  shuffle=False, verbose=0)
  for a, b in zip(fernets[1].get_weights(), alone.get_weights()):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_members_refuse_callbacks_that_watch_one_validation_accuracy():
  with pytest.raises(ConfigError, match='--early_stopping_patience=0'):
    _config('--members_at_once=2', '--early_stopping_patience=3')
  assert _config('--early_stopping_patience=3').members_at_once == 1
