"""What a package of fer-edge needs beyond the light install, said in one line.

`pip install .` installs every package but only the edge runner's dependencies, so that
it fits a Raspberry Pi; the trainer, the exporter and the dataset builder need the
`train` extra. Without it they stop with the command that installs it, not with a
traceback about a missing module.
"""

import importlib.util


def _installed(module: str) -> bool:
  try:
    return importlib.util.find_spec(module) is not None
  except (ImportError, ValueError):
    return False


def require(package: str, modules: tuple[str, ...]) -> None:
  """Exits naming the install command if any of `modules` is not installed (looked up,
  not imported: importing them is slow and noisy)."""
  missing = [module for module in modules if not _installed(module)]
  if missing:
    raise SystemExit(f'error: {package} needs {", ".join(missing)}, which the light '
                     'install leaves out; install the training extra: '
                     "pip install '.[train]'")
