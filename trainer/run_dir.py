"""The run directory layout (the trainer's output and the exporter's input) and the
flags saved in it."""

import dataclasses
import pathlib

from absl import flags

# Flags that say where a run and its dataset are, not what is trained.
LOCATION_FLAGS = frozenset({'run_dir', 'data_dir'})
# Flags that say how a run executes on its machine, not what it learns.
EXECUTION_FLAGS = frozenset({'steps_per_execution'})
# Flags that may change when a run is resumed (more epochs; a run dir or dataset dir that
# was moved; another machine); any other difference refuses the resume.
RESUMABLE_CHANGES = LOCATION_FLAGS | EXECUTION_FLAGS | {'epochs'}


class RunDirMismatchError(ValueError):
  """The run dir holds a run started with different flags."""


@dataclasses.dataclass(frozen=True)
class RunDir:
  """Paths inside one run directory."""

  root: pathlib.Path

  @property
  def flags(self) -> pathlib.Path:
    return self.root / 'flags.txt'

  @property
  def machine(self) -> pathlib.Path:
    return self.root / 'machine.txt'

  @property
  def backup(self) -> pathlib.Path:
    return self.root / 'backup'

  @property
  def best(self) -> pathlib.Path:
    return self.root / 'checkpoints' / 'best.keras'

  @property
  def inference_model(self) -> pathlib.Path:
    return self.root / 'inference.keras'

  @property
  def preprocessing(self) -> pathlib.Path:
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

  def make(self) -> None:
    """Creates the folders."""
    for folder in (self.root, self.best.parent, self.reports):
      folder.mkdir(parents=True, exist_ok=True)


def start(run: RunDir, current_flags: str, defaults: dict[str, str],
          machine_line: str) -> bool:
  """Prepares `run` for training with `current_flags` (a flags.txt text).

  Returns False, touching nothing, if the run dir holds a finished run; else creates its
  folders, saves the flags, appends `machine_line` to machine.txt (one line per (re)start:
  epoch times depend on it) and returns True.

  Raises:
    RunDirMismatchError: the run dir holds a run started with other flags
      (`check_resumable` with `defaults`).
  """
  if run.flags.exists():
    check_resumable(run.flags.read_text(), current_flags, defaults)
  if run.inference_model.exists():
    return False
  run.make()
  run.flags.write_text(current_flags)
  with run.machine.open('a') as log:
    log.write(machine_line + '\n')
  return True


def serialize_flags(module) -> str:
  """The flags defined by `module`, one `--name=value` a line (a valid --flagfile)."""
  lines = [flag.serialize() for flag in flags.FLAGS.get_flags_for_module(module)]
  return '\n'.join(sorted(line for line in lines if line)) + '\n'


def parse_flags(text: str) -> dict[str, str]:
  """A flags.txt's `--name=value` lines as {name: value}."""
  pairs = (line.lstrip('-').partition('=') for line in text.splitlines() if line.strip())
  return {name: value for name, _, value in pairs}


def differing_flags(old: dict[str, str], new: dict[str, str],
                    defaults: dict[str, str] | None = None,
                    ignore: frozenset[str] = frozenset()) -> dict[str, tuple[str, str]]:
  """{name: (old value, new value)} of the flags that differ, in name order, except those
  in `ignore`. A flag missing from one side (added to the trainer after that run
  started) counts as its value in `defaults`, else as '(unset)'."""
  old, new = {**(defaults or {}), **old}, {**(defaults or {}), **new}
  return {name: (old.get(name, '(unset)'), new.get(name, '(unset)'))
          for name in sorted(old.keys() | new.keys())
          if name not in ignore and old.get(name) != new.get(name)}


def check_resumable(saved: str, current: str, defaults: dict[str, str] | None = None
                    ) -> None:
  """Raises RunDirMismatchError if `saved` and `current` flags differ beyond
  RESUMABLE_CHANGES, naming each differing flag (`differing_flags` with `defaults`)."""
  differing = differing_flags(parse_flags(saved), parse_flags(current), defaults,
                              RESUMABLE_CHANGES)
  if differing:
    details = ', '.join(f'--{name} was {was!r}, now {now!r}'
                        for name, (was, now) in differing.items())
    raise RunDirMismatchError(
        f'the run dir holds a run started with other flags ({details}). Resume it with '
        'its own flags (--flagfile=<run_dir>/flags.txt) or choose another --run_dir.')
