"""The fer_emotions dataset; importing this registers it with TFDS."""

from fer_tfds.fer_emotions.fer_emotions_dataset_builder import Builder
