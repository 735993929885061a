"""The contract between fer-edge's stages, written once and imported by all of them.

fer_tfds builds `fer_emotions/<config>`; the trainer reads its splits and writes a run dir;
the exporter reads the run dir and writes an export dir with a `model.json` sidecar; the
edge runner reads the sidecar. What each of those files is called, what the model input is
and how a pixel becomes it are defined here, without TensorFlow (the edge runner imports
this module on a Raspberry Pi).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import zipfile
from collections.abc import Iterable

import numpy as np

from fer_common import files

# --- The dataset --------------------------------------------------------------------
DATASET = 'fer_emotions'
DATASET_CONFIGS = ('fer5_ck', 'fer5', 'fer7_ck', 'fer5_ck_dedup')
DEFAULT_CONFIG = 'fer5_ck'
SPLITS = ('train', 'validation', 'test')
# What a run may train on: the train split, or train and validation once validation has
# chosen everything it guides (a refit; its validation metrics are then not held out).
TRAIN_SPLITS = ('train', 'train+validation')

# --- The model input ----------------------------------------------------------------
IMAGE_SIZE = 48
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)
# model input = pixel * scale + offset, pixel in [0, 255].
NORMALISATION = {'scale': 1.0 / 255.0, 'offset': 0.0}
VALUE_RANGE = (0.0, 1.0)  # of the normalised input, for the augmentation layers


class ContractError(ValueError):
  """A file of one stage does not have the form the next stage reads."""


def apply_normalisation(pixels, normalisation: dict):
  """pixels * scale + offset, with `normalisation` as a run dir or a sidecar records it
  (plain arithmetic on a tf.Tensor, a Keras tensor or a numpy array)."""
  return pixels * normalisation['scale'] + normalisation['offset']


def normalise(pixels):
  """Maps float32 pixel values in [0, 255] to the model input, as training does."""
  return apply_normalisation(pixels, NORMALISATION)


def apply_temperature(probabilities, temperature: float):
  """Class probabilities (numpy, last axis) softened (temperature > 1) or sharpened
  (< 1): softmax(log(p) / temperature), the calibration that a sidecar's variant
  records as 'temperature'. A probability of 0 (an int8 output's lowest step) counts
  as 1e-6."""
  logits = np.log(np.clip(np.asarray(probabilities, np.float64), 1e-6, None)) / temperature
  logits -= logits.max(axis=-1, keepdims=True)
  scaled = np.exp(logits)
  return (scaled / scaled.sum(axis=-1, keepdims=True)).astype(np.float32)


def input_spec() -> dict:
  """The model input as the run dir and the sidecar describe it."""
  return {'shape': [1, *IMAGE_SHAPE], 'dtype': 'float32', 'color': 'grayscale',
          'normalisation': dict(NORMALISATION)}


def preprocessing_spec(class_names: Iterable[str]) -> dict:
  """The run dir's preprocessing.json: label names in output order and the input."""
  return {'labels': list(class_names), 'input': input_spec()}


def build_command(config: str, data_dir: str | None = None) -> str:
  """The command that builds `fer_emotions/<config>`."""
  return (f'python -m fer_tfds.build --manual_dir=../shared/data --config={config}'
          + (f' --data_dir={data_dir}' if data_dir else ''))


class DatasetNotBuiltError(FileNotFoundError):
  """The requested fer_emotions config has not been built in the data dir."""


class DatasetDamagedError(ValueError):
  """A file of the built dataset does not read back as written."""


def not_built_message(config: str, where: str, data_dir: str | None = None) -> str:
  """What every stage says when `fer_emotions/<config>` is not built in `where`."""
  return (f'{DATASET}/{config} is not built in {where}. Build it once with: '
          f'{build_command(config, data_dir)}')


# --- The run dir (trainer output, export input) --------------------------------------
@dataclasses.dataclass(frozen=True)
class RunDir:
  """Paths inside one run directory."""

  root: pathlib.Path

  @property
  def flags(self) -> pathlib.Path:
    """The run's resolved flags (a valid --flagfile)."""
    return self.root / 'flags.txt'

  @property
  def machine(self) -> pathlib.Path:
    """One line per (re)start: the machine it ran on."""
    return self.root / 'machine.txt'

  @property
  def backup(self) -> pathlib.Path:
    """BackupAndRestore's state, for resuming."""
    return self.root / 'backup'

  @property
  def best(self) -> pathlib.Path:
    """The epoch of the best validation accuracy (none for a train+validation run)."""
    return self.root / 'checkpoints' / 'best.keras'

  @property
  def inference_model(self) -> pathlib.Path:
    """The float32 FERNet without augmentation layers: what export converts."""
    return self.root / 'inference.keras'

  @property
  def preprocessing(self) -> pathlib.Path:
    """`preprocessing_spec` of the run."""
    return self.root / 'preprocessing.json'

  @property
  def history(self) -> pathlib.Path:
    return self.root / 'history.csv'

  @property
  def tensorboard(self) -> pathlib.Path:
    return self.root / 'tensorboard'

  @property
  def reports(self) -> pathlib.Path:
    return self.root / 'reports'

  @property
  def final_files(self) -> tuple[pathlib.Path, ...]:
    """What a finished run has; written last, the inference model last of all."""
    return (self.flags, self.preprocessing, self.inference_model)

  def unfinished_reason(self) -> str | None:
    """None for a finished run (every final file present and readable), else why not."""
    for path in self.final_files:
      if not path.is_file():
        return f'{path} is missing'
    try:
      read_preprocessing(self.preprocessing)
    except ContractError as e:
      return str(e)
    if not zipfile.is_zipfile(self.inference_model):
      return f'{self.inference_model} is not a Keras model file (damaged)'
    return None

  def is_run_dir(self) -> bool:
    """Whether the folder holds a trainer run, finished or not."""
    return self.flags.is_file()


def read_preprocessing(path: str | os.PathLike) -> dict:
  """Reads a run's preprocessing.json.

  Raises:
    ContractError: naming the file, where it is missing or malformed.
  """
  try:
    spec = json.loads(pathlib.Path(path).read_text())
    list(spec['labels']), spec['input']['normalisation']['scale']
  except FileNotFoundError:
    raise ContractError(f'{path} is missing') from None
  except (json.JSONDecodeError, KeyError, TypeError) as e:
    raise ContractError(f'{path} is not a valid preprocessing.json ({e})') from None
  return spec


def write_preprocessing(path: str | os.PathLike, class_names: Iterable[str]) -> None:
  """Writes `preprocessing_spec(class_names)`, whole or not at all."""
  files.write_text(path, json.dumps(preprocessing_spec(class_names), indent=2) + '\n')


def parse_flag_lines(lines: Iterable[str]) -> dict[str, str]:
  """{name: value} of `--name=value` arguments; a bare `--name` is 'true' and `--noname`
  'false' (how absl writes booleans)."""
  values = {}
  for line in lines:
    line = line.strip()
    if not line.startswith('--'):
      continue
    name, equals, value = line[2:].partition('=')
    if not equals:
      name, value = (name[2:], 'false') if name.startswith('no') else (name, 'true')
    values[name] = value
  return values


def read_flags(path: str | os.PathLike) -> dict[str, str]:
  """A flagfile (flags.txt or a config, includes expanded by absl) as {name: value}.

  Raises:
    ContractError: the file is missing or unreadable.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top (not needed on the Pi)
  try:
    expanded = flags.FlagValues().read_flags_from_files([f'--flagfile={path}'])
  except (flags.Error, OSError) as e:
    raise ContractError(f'cannot read the flagfile {path}: {e}') from None
  return parse_flag_lines(expanded)


def flags_text(values: dict[str, object]) -> str:
  """{name: value} as flags.txt text: `--name=value` lines sorted by name, None left out,
  booleans as true/false."""
  def text(value):
    return str(value).lower() if isinstance(value, bool) else str(value)
  return ''.join(f'--{name}={text(value)}\n' for name, value in sorted(values.items())
                 if value is not None)


# --- The export dir and its sidecar (export output, edge input) ----------------------
VARIANTS = ('float32', 'float16', 'dynamic', 'int8')  # <variant>.tflite
SIDECAR = 'model.json'
# The TFLite metadata entry that holds the labels (a JSON list) inside each .tflite.
LABELS_METADATA = 'fer_edge_labels'
LABELS = 'labels.txt'
REPORT_JSON, REPORT_MD = 'report.json', 'report.md'
# Present in every folder `python -m export` (or export.ship) wrote: only such a folder
# may be replaced by them.
EXPORT_MARKER = '.fer-edge-export'


def mark_as_export(folder: pathlib.Path) -> None:
  """Marks `folder` as written by the exporter, which may then replace it."""
  (folder / EXPORT_MARKER).write_text(
      'Written by python -m export; python -m export --overwrite may replace this '
      'folder.\n')


def is_export(folder: pathlib.Path) -> bool:
  """Whether the exporter wrote `folder` (and may replace it)."""
  return (folder / EXPORT_MARKER).is_file()


def sha256(path: str | os.PathLike) -> str:
  """The hex SHA-256 of a file: how a sidecar names the .tflite it belongs to."""
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def sidecar(labels: Iterable[str], model_input: dict, variants: dict[str, dict],
            source: dict) -> dict:
  """The model.json of an export dir.

  Args:
    labels: class names in output order.
    model_input: `input_spec()` as the run recorded it.
    variants: {file name: {'sha256': ..., and the input_/output_ dtype, scale and zero
      point}} of every .tflite it describes.
    source: where the model came from ({'run_dir': ..., 'dataset': ...}).
  """
  return {'labels': list(labels), 'input': model_input, 'variants': variants,
          'source': source}


def variant_entry(spec: dict, model_path: str | os.PathLike) -> dict:
  """The sidecar's entry for the .tflite at `model_path`.

  Raises:
    ContractError: the sidecar does not list the file, or lists another checksum.
  """
  name = pathlib.Path(model_path).name
  entry = spec.get('variants', {}).get(name)
  if entry is None:
    raise ContractError(f'{SIDECAR} beside {model_path} does not describe {name} '
                        f'(it lists {", ".join(spec.get("variants", {})) or "nothing"}).')
  if entry.get('sha256') != sha256(model_path):
    raise ContractError(
        f'{model_path} is not the file its {SIDECAR} was written for (SHA-256 differs): '
        'export it again, or copy the .tflite together with its model.json.')
  return entry
