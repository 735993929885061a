"""Ships an export: the edge runner's files into models/<name>.

  python -m export.ship --export_dir=exports/<name> [--variants=int8] \\
      [--to=models/accurate]

It copies what the edge runner uses from an export dir into the shipped models folder: the
chosen .tflite files, a model.json that lists only them (each by its checksum),
labels.txt and the export report. Only those files are committed, so a re-ship adds one
int8 model to the repository, not every variant.
"""

import json
import pathlib
import shutil
import sys

from absl import app
from absl import flags

from fer_common import contract
from fer_common import files
from fer_common import locks
from fer_common import signals

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags of the shipping step."""
  flags.DEFINE_string('export_dir', None, 'A folder python -m export wrote.',
                      required=True)
  flags.DEFINE_multi_enum('variants', ['int8'], contract.VARIANTS, 'Variants to ship; '
                          'repeat the flag for several.')
  flags.DEFINE_string('to', 'models/accurate', 'The shipped model\'s folder, '
                      'models/<name> (replaced whole).')


class ShipError(ValueError):
  """The export dir or the shipped folder is not what the step expects."""


def ship(export_dir: pathlib.Path, to: pathlib.Path, variants: list[str]) -> None:
  """Writes the shipped folder `to` from `export_dir`, whole or not at all.

  Raises:
    ShipError: `export_dir` is no export, or `to` a folder the exporter did not
      write.
  """
  if not contract.is_export(export_dir):
    raise ShipError(f'{export_dir} is not a folder python -m export wrote.')
  if to.exists() and not contract.is_export(to):
    raise ShipError(f'{to} exists and was not written by python -m export.ship.')
  spec = json.loads((export_dir / contract.SIDECAR).read_text())
  staging = files.temp_folder(to)
  try:
    shipped = {}
    for variant in variants:
      name = f'{variant}.tflite'
      shutil.copyfile(export_dir / name, staging / name)
      shipped[name] = {**spec['variants'][name], 'sha256': contract.sha256(staging / name)}
    spec['variants'] = shipped
    (staging / contract.SIDECAR).write_text(json.dumps(spec, indent=2) + '\n')
    for name in (contract.LABELS, contract.REPORT_MD, contract.REPORT_JSON):
      shutil.copyfile(export_dir / name, staging / name)
    contract.mark_as_export(staging)
    files.replace_folder(staging, to)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  signals.sigterm_as_interrupt()
  try:
    with locks.held(FLAGS.to, 'the shipped model', FLAGS.wait_for_lock):
      ship(pathlib.Path(FLAGS.export_dir), pathlib.Path(FLAGS.to), FLAGS.variants)
  except (ShipError, locks.LockedError) as e:
    sys.exit(f'error: {e}')
  except OSError as e:
    if not files.is_disk_full(e):
      raise
    sys.exit(f'error: no space left on the disk of {pathlib.Path(FLAGS.to).parent}: '
             f'{FLAGS.to} is as it was before; free some space and run the same command '
             'again.')
  except KeyboardInterrupt:
    signals.stopped(f'{FLAGS.to} is as it was before: run the same command again.')
  print(f'Shipped {", ".join(FLAGS.variants)} from {FLAGS.export_dir} into {FLAGS.to}.')


if __name__ == '__main__':
  define_flags()
  locks.define_wait_flag()
  flags.adopt_module_key_flags(locks)  # --help lists --wait_for_lock
  app.run(main)
