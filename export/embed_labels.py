"""Records a model's labels inside its .tflite, for a model exported before `python -m
export` did so itself (the edge runner then refuses a model.json whose labels differ):

  python -m export.embed_labels --model=models/fast/int8.tflite

The labels come from the model.json beside it, which must agree with labels.txt there;
the .tflite is rewritten (whole or not at all) and its SHA-256 in model.json updated.
"""

import json
import pathlib
import sys

from absl import app
from absl import flags

from edge import model_labels
from fer_common import contract
from fer_common import files

FLAGS = flags.FLAGS


def embed(model: pathlib.Path) -> tuple[str, ...]:
  """Records the labels of `model`'s model.json inside it; returns them.

  Raises:
    ValueError, OSError: the sidecar does not describe this file, or its labels and
      labels.txt disagree.
  """
  sidecar_path = model.with_name(contract.SIDECAR)
  spec = json.loads(sidecar_path.read_text())
  entry = contract.variant_entry(spec, model)
  labels = tuple(spec['labels'])
  listed = tuple(model.with_name(contract.LABELS).read_text().split())
  if listed != labels:
    raise ValueError(f'{sidecar_path} lists {", ".join(labels)} but '
                     f'{model.with_name(contract.LABELS)} {", ".join(listed)}: which is '
                     'right cannot be told here; export the model again')
  files.write_bytes(model, model_labels.embedded(model.read_bytes(), labels))
  entry['sha256'] = contract.sha256(model)
  files.write_text(sidecar_path, json.dumps(spec, indent=2) + '\n')
  return labels


def define_flags() -> None:
  """Defines the command-line flags."""
  flags.DEFINE_string('model', None, 'An exported .tflite with its model.json.',
                      required=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    labels = embed(pathlib.Path(FLAGS.model))
  except (OSError, ValueError, KeyError) as e:
    sys.exit(f'error: {e}')
  print(f'{FLAGS.model} now holds its labels: {", ".join(labels)}.')


if __name__ == '__main__':
  define_flags()
  app.run(main)
