"""Where the model files the runner ships with are: the checkout's `models/` folder, or
the copy that `pip install` puts under `<prefix>/share/fer-edge/models`."""

from __future__ import annotations

import pathlib
import sys

MODEL_DIRS = (pathlib.Path(__file__).resolve().parents[1] / 'models',
              pathlib.Path(sys.prefix) / 'share' / 'fer-edge' / 'models')


def find(name: str, file: str | None = None) -> pathlib.Path:
  """The folder `models/<name>` of the first MODEL_DIRS entry that has it (holding
  `file`, if given), else the checkout's (so that an error names where it looked)."""
  for folder in MODEL_DIRS:
    if (folder / name / (file or '')).exists():
      return folder / name
  return MODEL_DIRS[0] / name
