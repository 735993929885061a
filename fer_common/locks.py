"""One command at a time on one output: an advisory lock (flock) on a file beside the
output, holding the owner's process id. The kernel releases it when the process ends,
however it ends, so a killed command never leaves a stale lock behind.

Every command that writes a run dir, an export, a shipped model or a dataset takes it;
the second of two commands on one output refuses at once, naming the output and the
process that holds it, or waits for it with --wait_for_lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib
import time
from collections.abc import Iterator

from absl import flags

POLL_S = 1.0


class LockedError(RuntimeError):
  """Another process holds the lock; the message names the output and the process."""


def define_wait_flag() -> None:
  """Defines --wait_for_lock, the same for every command that takes a lock."""
  flags.DEFINE_bool('wait_for_lock', False, 'When another command is writing the same '
                    'output, wait for it to end instead of stopping at once.')


def lock_path(output: pathlib.Path) -> pathlib.Path:
  """The lock file of `output`: beside it, so that replacing the output folder as a whole
  (export, ship) keeps it."""
  output = pathlib.Path(output).resolve()
  return output.parent / f'.{output.name}.lock'


def _holder(path: pathlib.Path) -> str:
  try:
    pid = int(path.read_text().split()[0])
  except (OSError, ValueError, IndexError):
    return 'another process'
  try:
    command = pathlib.Path(f'/proc/{pid}/cmdline').read_bytes().replace(b'\0', b' ')
    return f'process {pid} ({command.decode(errors="replace").strip()[:120]})'
  except OSError:
    return f'process {pid}'


@contextlib.contextmanager
def held(output: str | os.PathLike, what: str, wait: bool = False,
         log=print) -> Iterator[None]:
  """Holds the lock of `output` (a folder or file, which need not exist yet) while the
  block runs; the lock file is removed when the block ends.

  Args:
    what: how the error names the output ('the run dir', 'the export folder', ...).
    wait: wait for the holder to end instead of raising.

  Raises:
    LockedError: another process holds it and `wait` is False.
  """
  path = lock_path(pathlib.Path(output))
  path.parent.mkdir(parents=True, exist_ok=True)
  told = False
  while True:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      os.close(fd)
      holder = _holder(path)
      if not wait:
        raise LockedError(f'{what} {pathlib.Path(output)} is in use by {holder}: wait '
                          'for it to end (or pass --wait_for_lock to wait here)') from None
      if not told:
        log(f'Waiting for {holder}, which is writing {pathlib.Path(output)} ...')
        told = True
      time.sleep(POLL_S)
      continue
    # The holder before removed the file as it let go: this lock is on a file no one
    # else can find; take the one now at `path`.
    try:
      if os.fstat(fd).st_ino == os.stat(path).st_ino:
        break
    except FileNotFoundError:
      pass
    os.close(fd)
  try:
    os.ftruncate(fd, 0)
    os.write(fd, f'{os.getpid()}\n'.encode())
    yield
  finally:
    path.unlink(missing_ok=True)  # while still locked: no one else holds it
    os.close(fd)  # releases the lock
