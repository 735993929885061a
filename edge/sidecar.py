"""Reads `model.json`, the sidecar that the exporter writes next to each .tflite model:
labels in output order, the input spec and normalisation, per-variant quantisation."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from fer_common import contract


class SidecarError(ValueError):
  """model.json is missing, malformed or does not match the model."""


@dataclasses.dataclass(frozen=True)
class Sidecar:
  """What the edge runner needs to know about a model besides its weights."""

  labels: tuple[str, ...]
  input_shape: tuple[int, ...]  # batch first, e.g. (1, 48, 48, 1)
  scale: float  # model input = pixel * scale + offset
  offset: float
  variants: dict
  temperature: float = 1.0  # of the variant loaded (export.calibration)

  @property
  def image_size(self) -> tuple[int, int]:
    """(height, width) of the model input."""
    return self.input_shape[1], self.input_shape[2]

  def normalise(self, pixels: np.ndarray) -> np.ndarray:
    """uint8 grayscale pixels (H, W) -> the float32 model input (1, H, W, 1)."""
    image = contract.apply_normalisation(pixels.astype(np.float32),
                                         {'scale': self.scale, 'offset': self.offset})
    return image.reshape(self.input_shape)


def load(path: str | pathlib.Path) -> Sidecar:
  """Reads a model.json, or the model.json beside a .tflite file, checking that it was
  written for that very file (its SHA-256).

  Raises:
    SidecarError: naming the file and what is missing or does not match.
  """
  path = model_path = pathlib.Path(path)
  if path.suffix == '.tflite':
    path = path.with_name(contract.SIDECAR)
  try:
    spec = json.loads(path.read_text())
    entry = (contract.variant_entry(spec, model_path) if model_path.suffix == '.tflite'
             else {})
    normalisation = spec['input']['normalisation']
    return Sidecar(
        labels=tuple(spec['labels']),
        input_shape=tuple(int(d) for d in spec['input']['shape']),
        scale=float(normalisation['scale']),
        offset=float(normalisation['offset']),
        variants=dict(spec.get('variants', {})),
        temperature=float(entry.get('temperature', 1.0)),
    )
  except FileNotFoundError:
    raise SidecarError(f'{path} not found: every model needs the model.json that '
                       'python -m export writes beside it.') from None
  except contract.ContractError as e:
    raise SidecarError(str(e)) from None
  except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
    raise SidecarError(f'{path} is not a valid model.json ({type(e).__name__}: {e}).'
                       ) from None
