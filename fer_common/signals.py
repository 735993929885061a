"""SIGTERM (systemd, Docker, `kill`) ends a command as Ctrl-C does: as a
KeyboardInterrupt, which each command turns into one line saying what is on disk and
how to go on, instead of dying wherever the signal lands."""

import signal
import sys

EXIT_CODE = 130  # as a shell reports a command ended by Ctrl-C


def sigterm_as_interrupt() -> None:
  """From now on, SIGTERM raises KeyboardInterrupt in the main thread."""
  signal.signal(signal.SIGTERM, signal.default_int_handler)


def stopped(message: str) -> None:
  """Ends the process after an interrupt: `message` (what is on disk, how to go on) as
  one line on stderr, exit code EXIT_CODE."""
  print(f'stopped: {message}', file=sys.stderr, flush=True)
  sys.exit(EXIT_CODE)
