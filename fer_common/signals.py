"""SIGTERM (systemd, Docker, `kill`) ends a command as Ctrl-C does: as a
KeyboardInterrupt, which each command turns into one line saying what is on disk and
how to go on, instead of dying wherever the signal lands.

Python ignores an exception raised inside `__del__` or a weakref callback, and a signal
can land there (TensorFlow's garbage collector of functions runs often): the interrupt
is then lost, and Python would print its traceback. So the signal is also remembered,
`raise_if_stopped` raises it again where a command is about to make its work visible,
and such a lost interrupt prints nothing.
"""

import signal
import sys

EXIT_CODE = 130  # as a shell reports a command ended by Ctrl-C

_requested = False


def _interrupt(signum, frame):
  del signum, frame
  global _requested
  _requested = True
  raise KeyboardInterrupt


def _unraisable(unraisable) -> None:
  if not isinstance(unraisable.exc_value, KeyboardInterrupt):
    sys.__unraisablehook__(unraisable)


def sigterm_as_interrupt() -> None:
  """From now on, SIGTERM and Ctrl-C raise KeyboardInterrupt in the main thread and are
  remembered for `raise_if_stopped`."""
  signal.signal(signal.SIGTERM, _interrupt)
  signal.signal(signal.SIGINT, _interrupt)
  sys.unraisablehook = _unraisable


def raise_if_stopped() -> None:
  """Raises KeyboardInterrupt if a signal arrived, even one whose interrupt was lost."""
  if _requested:
    raise KeyboardInterrupt


def stopped(message: str) -> None:
  """Ends the process after an interrupt: `message` (what is on disk, how to go on) as
  one line on stderr, exit code EXIT_CODE."""
  print(f'stopped: {message}', file=sys.stderr, flush=True)
  sys.exit(EXIT_CODE)
