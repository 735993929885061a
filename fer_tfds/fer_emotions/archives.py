"""Reads the Kaggle FER-2013 and CK+48 archives, as a zip or as the extracted folder.

Both archives have the layout `<top>/<class>/<file>`: FER-2013 `train|test/<class>/*.jpg`,
CK+48 `CK+48/<class>/*.png`. This module only finds, lists and decodes those files; which
class and split an image belongs to is decided by the builder.
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from collections.abc import Iterator

import numpy as np
from etils import epath
from PIL import Image, UnidentifiedImageError

from fer_common import contract

_IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png')


class ArchiveError(FileNotFoundError):
  """An archive is missing or does not have the layout that the builder reads."""


class CorruptImageError(ValueError):
  """An image inside an archive could not be decoded as a 48x48 face."""


@dataclasses.dataclass(frozen=True)
class ArchiveSpec:
  """Where to find one Kaggle archive in the manual dir and what layout it has."""

  source: str  # name of the `source` feature value, e.g. 'fer2013'
  zip_name: str  # e.g. 'fer2013.zip'
  folder_name: str  # the same archive extracted, e.g. 'fer2013/'
  top_folders: tuple[str, ...]  # e.g. ('train', 'test')
  class_folders: tuple[str, ...]  # every class folder the archive may hold
  kaggle_url: str


@dataclasses.dataclass(frozen=True)
class ArchiveFile:
  """One image file of an archive, not yet decoded."""

  source: str
  path: str  # path inside the archive, e.g. 'train/angry/Training_10118481.jpg'
  class_folder: str
  data: bytes


def locate(manual_dir: epath.Path, spec: ArchiveSpec) -> epath.Path:
  """Returns the zip or extracted folder of `spec` in `manual_dir`.

  Raises:
    ArchiveError: neither form is present; the message names both paths searched.
  """
  for candidate in (manual_dir / spec.zip_name, manual_dir / spec.folder_name):
    if candidate.exists():
      return candidate
  raise ArchiveError(
      f'{spec.source}: found neither {manual_dir / spec.zip_name} nor the extracted '
      f'folder {manual_dir / spec.folder_name}/. Download it from {spec.kaggle_url} '
      f'and put the zip (renamed to {spec.zip_name}) into {manual_dir}.'
  )


def _walk(folder: epath.Path) -> Iterator[epath.Path]:
  """Yields every file below `folder`, sorted (epath has no rglob on every backend)."""
  for path in sorted(folder.iterdir()):
    if path.is_dir():
      yield from _walk(path)
    else:
      yield path


def _iter_entries(archive: epath.Path) -> Iterator[tuple[str, bytes]]:
  """Yields (relative path, bytes) of every image file in a zip or a folder."""
  if archive.is_dir():
    for path in _walk(archive):
      if path.suffix.lower() in _IMAGE_SUFFIXES:
        yield str(path.relative_to(archive)), path.read_bytes()
    return
  try:
    with archive.open('rb') as f, zipfile.ZipFile(f) as zf:
      for name in sorted(zf.namelist()):
        if name.lower().endswith(_IMAGE_SUFFIXES):
          yield name, zf.read(name)
  except zipfile.BadZipFile as e:
    raise ArchiveError(f'{archive} is not a valid zip file ({e}).') from e


def read_files(archive: epath.Path, spec: ArchiveSpec) -> list[ArchiveFile]:
  """Lists every image of `archive`, sorted by path, checking the layout.

  Raises:
    ArchiveError: the archive has files outside `<top>/<class>/`, or none at all; the
      message names the folders that were expected and those that were found.
  """
  files, unexpected = [], set()
  for path, data in _iter_entries(archive):
    parts = path.split('/')
    if (len(parts) != 3 or parts[0] not in spec.top_folders
        or parts[1] not in spec.class_folders):
      unexpected.add('/'.join(parts[:-1]) + '/')
      continue
    files.append(ArchiveFile(spec.source, path, parts[1], data))
  if unexpected or not files:
    found = ', '.join(sorted(unexpected)[:10]) or 'no image files'
    raise ArchiveError(
        f'{archive} has an unexpected layout. Expected images in '
        f'{{{",".join(spec.top_folders)}}}/<class>/ with <class> one of '
        f'{", ".join(spec.class_folders)}; found {found}.'
    )
  return files


def decode(file: ArchiveFile) -> np.ndarray:
  """Decodes `file` to a (48, 48, 1) uint8 grayscale array.

  Raises:
    CorruptImageError: the bytes are no image, or not 48x48; names the file.
  """
  try:
    with Image.open(io.BytesIO(file.data)) as image:
      gray = image.convert('L')
  except (UnidentifiedImageError, OSError, ValueError) as e:
    raise CorruptImageError(f'{file.source}:{file.path} cannot be decoded: {e}') from e
  if gray.size != (contract.IMAGE_SIZE, contract.IMAGE_SIZE):
    raise CorruptImageError(
        f'{file.source}:{file.path} is {gray.size[0]}x{gray.size[1]}, expected '
        f'{contract.IMAGE_SIZE}x{contract.IMAGE_SIZE}.'
    )
  return np.asarray(gray, dtype=np.uint8)[..., np.newaxis]
