"""--members_at_once: several FERNets trained at once in one program, each as it would
train alone; the recipe assembled once for one member or several."""

import keras
import numpy as np
import pytest

from trainer import recipe
from trainer.config import ConfigError
from trainer.config import TrainConfig

# No augmentation or dropout: a member and its lone twin see exactly the same inputs.
PLAIN = ('--filters=4,8', '--dropout=0', '--head_dropout=0', '--rotation=0', '--zoom=0',
         '--shift=0', '--noflip', '--brightness=0,0', '--epochs=2')


def _config(*args):
  return TrainConfig.from_args(['--run_dir=unused', *args])


def test_each_member_trains_as_it_would_alone():
  rng = np.random.default_rng(0)
  images = rng.random((32, 48, 48, 1), np.float32)
  labels = np.eye(5, dtype=np.float32)[rng.integers(0, 5, 32)]
  weights = rng.uniform(0.5, 2.0, 32).astype(np.float32)  # as --balance_classes gives
  keras.utils.set_random_seed(0)
  together = recipe.assemble(_config(*PLAIN, '--members_at_once=3'), 5, 4)
  alone = recipe.assemble(_config(*PLAIN), 5, 4)
  alone.fernets[0].set_weights(together.fernets[1].get_weights())
  assert any(not np.array_equal(a, b) for a, b in
             zip(together.fernets[0].get_weights(), together.fernets[1].get_weights()))
  together.training_model.fit(images, recipe.targets(labels, 3), sample_weight=weights,
                              batch_size=8, epochs=2, shuffle=False, verbose=0)
  alone.training_model.fit(images, labels, sample_weight=weights, batch_size=8, epochs=2,
                           shuffle=False, verbose=0)
  for a, b in zip(together.fernets[1].get_weights(), alone.fernets[0].get_weights()):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_one_member_keeps_the_training_model_that_run_dirs_resume():
  trained = recipe.assemble(_config(*PLAIN), 5, 4).training_model
  assert [layer.name for layer in trained.layers] == ['image', 'augmentation', 'fernet']
  on_dataset = recipe.assemble(_config(*PLAIN, '--augment_on=dataset'), 5, 4)
  assert on_dataset.training_model is on_dataset.fernets[0]


def test_balanced_classes_weigh_alike_and_weights_follow_each_example():
  weights = recipe.class_weights([30, 10, 0, 20, 40])
  np.testing.assert_allclose(weights, [100 / 150, 100 / 50, 1.0, 100 / 100, 100 / 200])
  one_hot = np.eye(5, dtype=np.float32)[[1, 4, 1]]
  np.testing.assert_allclose(np.asarray(recipe.example_weights(weights, one_hot)),
                             [2.0, 0.5, 2.0])
  assert recipe.assemble(_config(*PLAIN), 5, 4).class_weights is None
  with pytest.raises(ValueError, match='class counts'):
    recipe.assemble(_config(*PLAIN, '--balance_classes'), 5, 4)


def test_members_refuse_callbacks_that_watch_one_validation_accuracy():
  with pytest.raises(ConfigError, match='--early_stopping_patience=0'):
    _config('--members_at_once=2', '--early_stopping_patience=3')
  assert _config('--early_stopping_patience=3').members_at_once == 1
