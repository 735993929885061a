"""Models averaged over views of the image (its mirror image, shifts) and over each
other: test-time augmentation as a plain Keras graph (flip, pad and slice ops, an Average
layer), so that it runs inside an exported .tflite too. Keras alone, no TensorFlow."""

import keras

from fer_common import contract

SHIFT_DIRECTIONS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def shifted_views(image: keras.KerasTensor, pixels: int) -> list[keras.KerasTensor]:
  """`image` moved `pixels` down, up, right and left, the uncovered edge mirrored in."""
  height, width = contract.IMAGE_SHAPE[:2]
  padded = keras.ops.pad(image, ((0, 0), (pixels, pixels), (pixels, pixels), (0, 0)),
                         mode='symmetric')
  starts = ((pixels * (1 + rows), pixels * (1 + columns))
            for rows, columns in SHIFT_DIRECTIONS)
  return [padded[:, top:top + height, left:left + width, :] for top, left in starts]


def views_per_member(flip_tta: bool, shift_tta: int) -> int:
  """How many views of each image every member of `build_ensemble` runs on."""
  return (1 + (len(SHIFT_DIRECTIONS) if shift_tta else 0)) * (2 if flip_tta else 1)


def build_ensemble(models: list[keras.Model], flip_tta: bool,
                   shift_tta: int = 0) -> keras.Model:
  """A model whose output is the mean of `models`' probabilities over several views.

  Args:
    models: classifiers with one (48, 48, 1) input and probability outputs.
    flip_tta: also feed each model the horizontally mirrored view(s).
    shift_tta: also feed each model the image shifted this many pixels each way
      (`shifted_views`); 0: no shifted views.
  """
  image = keras.Input(contract.IMAGE_SHAPE, name='image')
  views = [image] + (shifted_views(image, shift_tta) if shift_tta else [])
  if flip_tta:
    views += [keras.ops.flip(view, axis=2) for view in views]
  outputs = []
  for index, model in enumerate(models):
    if len(models) > 1:
      model.name = f'member_{index}'  # loaded runs are all called 'fernet'
    outputs.extend(model(view) for view in views)
  # float32 whatever the global policy: a run in mixed precision reports the probabilities
  # of its float32 inference model, as the export and `trainer.evaluate` see them.
  averaged = keras.layers.Average(name='probabilities', dtype='float32')(outputs) \
      if len(outputs) > 1 else outputs[0]
  return keras.Model(image, averaged, name='fernet_ensemble')
