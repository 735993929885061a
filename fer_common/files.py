"""Files that appear whole or not at all, and folders a stage may delete because it made
them.

A kill at any moment leaves either the old file or the new one, never a truncated one:
the bytes go to a temporary name in the same folder, are flushed to disk, and are renamed
over the target (a rename within one file system is atomic).
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import shutil
import sys
import tempfile
from collections.abc import Iterator

from fer_common import signals

# Prefix of every temporary name used here; `clean_leftovers` finds what a kill left.
TEMP_PREFIX = '.partial-'


def _fsync_dir(folder: pathlib.Path) -> None:
  fd = os.open(folder, os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


@contextlib.contextmanager
def replaced(path: str | os.PathLike, suffix: str = '') -> Iterator[pathlib.Path]:
  """Yields a temporary path beside `path`; when the block ends without an error, the
  file written there is flushed to disk and renamed to `path`, else it is removed.

  suffix: the temporary name's ending, for writers that choose a format by it
    (Keras: '.keras', '.weights.h5').
  """
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, temp = tempfile.mkstemp(prefix=f'{TEMP_PREFIX}{path.name}.', suffix=suffix,
                              dir=path.parent)
  os.close(fd)
  temp = pathlib.Path(temp)
  try:
    yield temp
    with open(temp, 'rb+') as f:
      os.fsync(f.fileno())
    os.chmod(temp, 0o644)
    os.replace(temp, path)
    _fsync_dir(path.parent)
  finally:
    temp.unlink(missing_ok=True)


def is_disk_full(error: BaseException | None) -> bool:
  """Whether `error`, or what it was raised from, is 'no space left on device' (as
  Python, TensorFlow, h5py or the TFLite converter say it)."""
  while error is not None:
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
      return True
    if 'No space left on device' in str(error):
      return True
    error = error.__cause__ or error.__context__
  return False


def quiet_when_disk_full() -> None:
  """From now on, errors that objects raise while they are freed (h5py prints those of
  a file it could not finish writing through both hooks below) are not printed when the
  disk is full: the command says so in one line instead."""
  unraisable_hook, except_hook = sys.unraisablehook, sys.excepthook

  def unraisable(report):
    if not is_disk_full(report.exc_value):
      unraisable_hook(report)

  def uncaught(kind, value, traceback):
    if not is_disk_full(value):
      except_hook(kind, value, traceback)
  sys.unraisablehook, sys.excepthook = unraisable, uncaught


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
  """Writes `data` to `path`, whole or not at all."""
  with replaced(path) as temp:
    temp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
  """Writes `text` to `path`, whole or not at all."""
  write_bytes(path, text.encode())


def temp_folder(beside: pathlib.Path) -> pathlib.Path:
  """A new, empty folder beside `beside` (same file system, so it can be renamed to it),
  named so that `clean_leftovers` finds it; readable by all, like any other folder."""
  beside.parent.mkdir(parents=True, exist_ok=True)
  folder = pathlib.Path(tempfile.mkdtemp(prefix=f'{TEMP_PREFIX}{beside.name}.',
                                         dir=beside.parent))
  folder.chmod(0o755)
  return folder


def clean_leftovers(folder: str | os.PathLike, name: str = '') -> list[pathlib.Path]:
  """Removes what a killed writer left in `folder` (temporary files and folders named
  with TEMP_PREFIX, and with `name` after it if given) and returns their paths."""
  folder = pathlib.Path(folder)
  if not folder.is_dir():
    return []
  removed = []
  for leftover in sorted(folder.glob(f'{TEMP_PREFIX}{name}*')):
    if leftover.is_dir():
      shutil.rmtree(leftover, ignore_errors=True)
    else:
      leftover.unlink(missing_ok=True)
    removed.append(leftover)
  return removed


def replace_folder(staging: pathlib.Path, out: pathlib.Path) -> None:
  """Puts the finished folder `staging` where `out` is; an earlier `out` is moved aside
  first and deleted only once `staging` has taken its place. A stop signal that arrived
  before (see fer_common.signals) keeps the earlier `out`."""
  signals.raise_if_stopped()
  old = None
  if out.exists():
    old = temp_folder(out)
    out.rename(old / out.name)
  staging.rename(out)
  if old:
    shutil.rmtree(old)
