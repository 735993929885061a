"""Starting and resuming a run in its run dir (the layout itself is
fer_common.contract.RunDir): which flag changes a resume accepts, what a kill left, and
where the members of a run of several live."""

import pathlib

from fer_common import contract
from fer_common import files

# Flags that say where a run and its dataset are, not what is trained.
LOCATION_FLAGS = frozenset({'run_dir', 'data_dir', 'arrays'})
# Flags that say how a run executes on its machine, not what it learns.
EXECUTION_FLAGS = frozenset({'steps_per_execution', 'time_budget_s'})
# Flags that may change when a run is resumed (more epochs; a run dir or dataset dir that
# was moved; another machine); any other difference refuses the resume.
RESUMABLE_CHANGES = LOCATION_FLAGS | EXECUTION_FLAGS | {'epochs'}


class RunDirMismatchError(ValueError):
  """The run dir holds a run started with different flags."""


def member_runs(run: contract.RunDir, members: int) -> list[contract.RunDir]:
  """The run dirs of the members of a run of `members` (--members_at_once) members:
  `member_<k>/` inside it, or the run itself for one."""
  if members == 1:
    return [run]
  return [contract.RunDir(pathlib.Path(run.root) / f'member_{k}') for k in range(members)]


def start(run: contract.RunDir, current_flags: dict[str, str], defaults: dict[str, str],
          machine_line: str, log=print, members: int = 1) -> bool:
  """Prepares `run` for training with `current_flags`.

  Returns False, touching nothing, if the run dir holds a finished run (every final file
  of each of its `members` present and readable); else removes what a killed run left half-written, creates the
  folders, saves the flags, appends `machine_line` to machine.txt (one line per
  (re)start: epoch times depend on it) and returns True.

  Raises:
    RunDirMismatchError: the run dir holds a run started with other flags
      (`check_resumable` with `defaults`).
  """
  if run.flags.exists():
    check_resumable(contract.read_flags(run.flags), current_flags, defaults)
    if all(m.unfinished_reason() is None for m in member_runs(run, members)):
      return False
  for folder in (run.root, run.best.parent, run.reports):
    for left in files.clean_leftovers(folder):
      log(f'Removed {left}, a file that a kill interrupted.')
    folder.mkdir(parents=True, exist_ok=True)
  files.write_text(run.flags, contract.flags_text(current_flags))
  with run.machine.open('a') as machine_log:
    machine_log.write(machine_line + '\n')
  return True


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


def check_resumable(saved: dict[str, str], current: dict[str, str],
                    defaults: dict[str, str] | None = None) -> None:
  """Raises RunDirMismatchError if `saved` and `current` flags differ beyond
  RESUMABLE_CHANGES, naming each differing flag (`differing_flags` with `defaults`)."""
  differing = differing_flags(saved, current, defaults, RESUMABLE_CHANGES)
  if differing:
    details = ', '.join(f'--{name} was {was!r}, now {now!r}'
                        for name, (was, now) in differing.items())
    raise RunDirMismatchError(
        f'the run dir holds a run started with other flags ({details}). Resume it with '
        'its own flags (--flagfile=<run_dir>/flags.txt) or choose another --run_dir.')
