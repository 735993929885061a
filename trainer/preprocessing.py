"""How a 48x48 uint8 face becomes the model's input: defined here once.

The trainer applies it, writes it to `<run_dir>/preprocessing.json`; the exporter reads
that file (calibration, `model.json`), and the edge runner applies what `model.json` says.
"""

import json

IMAGE_SHAPE = (48, 48, 1)
# model input = pixel * scale + offset, pixel in [0, 255].
NORMALISATION = {'scale': 1.0 / 255.0, 'offset': 0.0}
VALUE_RANGE = (0.0, 1.0)  # of the normalised input, for the augmentation layers


def normalise(pixels):
  """Maps float32 pixel values in [0, 255] to the model input (a tf.Tensor or a numpy
  array: plain arithmetic, so it needs no framework)."""
  return pixels * NORMALISATION['scale'] + NORMALISATION['offset']


def spec(class_names: list[str]) -> dict:
  """The preprocessing contract written next to a trained model."""
  return {
      'labels': list(class_names),
      'input': {
          'shape': [1, *IMAGE_SHAPE],
          'dtype': 'float32',
          'color': 'grayscale',
          'normalisation': dict(NORMALISATION),
      },
  }


def write(path, class_names: list[str]) -> None:
  """Writes `spec(class_names)` as JSON to `path`."""
  with open(path, 'w') as f:
    json.dump(spec(class_names), f, indent=2)


def read(path) -> dict:
  """Reads a preprocessing.json."""
  with open(path) as f:
    return json.load(f)
