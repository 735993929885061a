"""Reading image files and expanding folders, with per-file errors."""

from __future__ import annotations

import pathlib

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.webp', '.tif', '.tiff')


class ImageError(ValueError):
  """A file is missing, not an image, or corrupt."""


def expand(paths: list[str]) -> list[pathlib.Path]:
  """Files as given, folders replaced by their image files (sorted, recursively)."""
  result = []
  for path in map(pathlib.Path, paths):
    if path.is_dir():
      result += sorted(p for p in path.rglob('*')
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    else:
      result.append(path)
  return result


def read_bgr(path: pathlib.Path) -> np.ndarray:
  """Decodes an image file (EXIF orientation applied) to an 8-bit BGR array.

  Raises:
    ImageError: naming the file and the problem.
  """
  try:
    with Image.open(path) as image:
      rgb = np.asarray(ImageOps.exif_transpose(image).convert('RGB'))
  except FileNotFoundError:
    raise ImageError(f'{path}: no such file') from None
  except UnidentifiedImageError:
    raise ImageError(f'{path}: not an image file') from None
  except (OSError, ValueError, SyntaxError) as e:
    raise ImageError(f'{path}: corrupt image ({e})') from None
  return np.ascontiguousarray(rgb[..., ::-1])
