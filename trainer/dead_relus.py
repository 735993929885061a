"""Dead-ReLU check: the share of each ReLU layer's channels that never fire on a sample.

A network whose inner ReLUs are mostly dead gives every image the same output, and its
accuracy sits at the majority class however long it trains. The study's own recipe did
that here (RESULTS.md); this check names it in the run's reports instead of leaving a
flat curve to guess from.
"""

import keras
import numpy as np

# A layer with at least this share of dead channels means the run has collapsed.
COLLAPSED = 0.5


def dead_channel_fractions(model: keras.Model, images: np.ndarray) -> dict[str, float]:
  """{ReLU layer name: share of its channels that are 0 for every one of `images`}.

  Only `model`'s own ReLU layers count (an ensemble's members are not looked into).
  """
  relus = [layer for layer in model.layers if isinstance(layer, keras.layers.ReLU)]
  if not relus:
    return {}
  probe = keras.Model(model.inputs, [layer.output for layer in relus])
  outputs = probe.predict(images, verbose=0)
  outputs = outputs if isinstance(outputs, list) else [outputs]
  return {layer.name: float((out.reshape(-1, out.shape[-1]).max(axis=0) <= 0).mean())
          for layer, out in zip(relus, outputs)}


def collapse_warning(fractions: dict[str, float]) -> str | None:
  """A warning naming the worst layer if the run collapsed, else None."""
  if not fractions:
    return None
  worst = max(fractions, key=fractions.get)
  if fractions[worst] < COLLAPSED:
    return None
  return (f'warning: {fractions[worst]:.0%} of the channels of {worst} never fire on the '
          'test images (dead ReLUs): the model gives every image nearly the same output, '
          'and more epochs will not revive it. Start again from a recipe that trains '
          '(configs/fernet.cfg) and change one flag at a time; reports/metrics.json lists '
          'every layer.')
