"""TFDS builders of fer-edge. `import fer_tfds` registers `fer_emotions` with TFDS."""

from fer_tfds import fer_emotions
