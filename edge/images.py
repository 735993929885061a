"""Reading image files and expanding folders, with per-file errors and bounded memory.

An image is decoded at most MAX_SIDE pixels on its longer side: JPEGs are decoded
downscaled by the decoder itself (PIL's draft mode, 1/2 to 1/8), other formats are
decoded whole and shrunk. A file that would still need more than MAX_DECODE_PIXELS pixels
is refused, with its own error, before it is decoded. So one image never needs more than
about 3 bytes x MAX_DECODE_PIXELS x 2 (decoded RGB and its rotated copy), about 250 MB,
whatever its size on disk: a 1 GB Raspberry Pi classifies any batch.
"""

from __future__ import annotations

import pathlib

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.webp', '.tif', '.tiff')
MAX_SIDE = 4096  # longer side of a decoded image; faces stay far above 48 px
MAX_DECODE_PIXELS = 40_000_000

# Our own limit (MAX_DECODE_PIXELS, checked before decoding) replaces PIL's
# decompression-bomb check, which would end a batch at a large but harmless image.
Image.MAX_IMAGE_PIXELS = None


class ImageError(ValueError):
  """A file is missing, not an image, corrupt or too large."""


def expand(paths: list[str]) -> list[pathlib.Path]:
  """Files as given, folders replaced by their image files (sorted, recursively). A
  folder without image files stays in the list, so that reading it reports that."""
  result = []
  for path in map(pathlib.Path, paths):
    if path.is_dir():
      found = sorted(p for p in path.rglob('*')
                     if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
      result += found or [path]
    else:
      result.append(path)
  return result


def _decode(image: Image.Image, path: pathlib.Path, mode: str) -> Image.Image:
  """`image` decoded in `mode` ('L' or 'RGB'), at most MAX_SIDE pixels on its longer
  side."""
  if image.format == 'JPEG':
    image.draft(mode, (MAX_SIDE, MAX_SIDE))  # the decoder skips what it need not make
  width, height = image.size
  if width * height > MAX_DECODE_PIXELS:
    raise ImageError(f'{path}: {width}x{height} pixels (after what the decoder can '
                     f'skip) is more than the {MAX_DECODE_PIXELS / 1e6:.0f} Mpixel this '
                     'runner decodes; downscale it first')
  decoded = image.convert(mode)
  ImageOps.exif_transpose(decoded, in_place=True)
  decoded.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
  return decoded


def read(path: pathlib.Path, color: bool = False) -> np.ndarray:
  """Decodes an image file (EXIF orientation applied, at most MAX_SIDE pixels on its
  longer side) to an 8-bit grayscale array, or with `color` to an 8-bit BGR one.

  Raises:
    ImageError: naming the file and the problem.
  """
  if path.is_dir():
    raise ImageError(f'{path}: a folder without image files '
                     f'({", ".join(IMAGE_SUFFIXES)})')
  try:
    with Image.open(path) as image:
      pixels = np.asarray(_decode(image, path, 'RGB' if color else 'L'))
  except FileNotFoundError:
    raise ImageError(f'{path}: no such file') from None
  except UnidentifiedImageError:
    raise ImageError(f'{path}: not an image file') from None
  except (OSError, ValueError, SyntaxError, MemoryError) as e:
    if isinstance(e, ImageError):
      raise
    raise ImageError(f'{path}: corrupt image ({e})') from None
  return np.ascontiguousarray(pixels[..., ::-1]) if color else pixels
