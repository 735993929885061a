"""TFDS builders of fer-edge. `import fer_tfds` registers `fer_emotions` with TFDS."""

from fer_common import extras
from fer_common import tensorflow_logs

extras.require(__name__, ('absl', 'tensorflow_datasets'))
tensorflow_logs.import_quietly()

# pylint: disable=g-import-not-at-top,wrong-import-position
from fer_tfds import fer_emotions  # noqa: E402
