"""Averages finished runs, and optionally views of the image (mirror, shifts), into one run dir:

  python -m trainer.ensemble --members=runs/fernet,runs/fernet_reg50 --flip_tta \\
      [--shift_tta=2] --run_dir=runs/ensemble

The result is an ordinary run dir (inference.keras, preprocessing.json, flags.txt,
reports/), so `python -m export` ships it like any trained run. Its inference model is a
plain Keras graph (the members as sub-models, flip/pad/slice ops, an Average layer):
test-time augmentation and ensembling then run inside the exported .tflite, on the device
too, instead of in an evaluation script only.
"""

import pathlib
import sys

from absl import app
from absl import flags
import keras

from fer_common import contract
from fer_common import files
from fer_common import locks
from fer_common import signals
from trainer import callbacks
from trainer import data
from trainer import reports
from trainer import views

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags of the ensemble tool."""
  flags.DEFINE_list('members', None, 'Finished trainer run dirs to average.')
  flags.DEFINE_bool('flip_tta', False, 'Also average each member over the horizontally '
                    'mirrored image.')
  flags.DEFINE_integer('shift_tta', 0, 'Also average each member over the image shifted '
                       'this many pixels up, down, left and right (edges mirrored); 0: '
                       'off.', lower_bound=0, upper_bound=contract.IMAGE_SHAPE[0] // 4)
  flags.DEFINE_string('run_dir', None, 'Output run dir.')
  flags.DEFINE_string('dataset', None, 'fer_emotions config; default: the members\' '
                      '(they must agree).')
  flags.DEFINE_string('data_dir', None, 'TFDS data dir; default: the first member\'s.')
  flags.DEFINE_integer('batch_size', 256, 'Evaluation batch size.')
  flags.mark_flags_as_required(['members', 'run_dir'])


class EnsembleError(ValueError):
  """The members cannot be combined; the message says which and why."""


def read_members(paths: list[str]) -> list[contract.RunDir]:
  """The members' run dirs, checked to be finished runs of one dataset and preprocessing.

  Raises:
    EnsembleError: naming the member that is unfinished or disagrees with the first.
  """
  members = [contract.RunDir(pathlib.Path(path)) for path in paths]
  for member in members:
    for needed in (member.flags, member.inference_model, member.preprocessing):
      if not needed.is_file():
        raise EnsembleError(f'{needed} is missing: {member.root} is not a finished '
                            'trainer run or ensemble.')
  first = members[0]
  reference = (member_dataset(first), contract.read_preprocessing(first.preprocessing))
  for member in members[1:]:
    if (member_dataset(member), contract.read_preprocessing(member.preprocessing)) != reference:
      raise EnsembleError(f'{member.root} was trained on another dataset or '
                          f'preprocessing than {first.root}; ensemble runs of one '
                          'dataset only.')
  return members


def member_dataset(member: contract.RunDir) -> str:
  """The fer_emotions config a run was trained on."""
  return contract.read_flags(member.flags)['dataset']


# Where each shifted view's window starts in the padded image, in units of the shift
# (rows, columns): the image moved down, up, right and left.
def ensemble(members: list[str], out_dir: str, flip_tta: bool = False,
             shift_tta: int = 0, dataset: str | None = None, data_dir: str | None = None,
             batch_size: int = 256) -> dict:
  """Builds, saves and evaluates an ensemble run dir; returns its metrics.

  Args:
    members: finished trainer run dirs.
    out_dir: the ensemble's run dir (must not hold a finished run).
    flip_tta: also average each member over the mirrored image.
    shift_tta: also average over the image shifted this many pixels each way.
    dataset: fer_emotions config (default and must-match: the members').
    data_dir: TFDS data dir (default: the first member's).
    batch_size: evaluation batch size.

  Raises:
    EnsembleError: a member is unfinished or disagrees, or `out_dir` is taken.
  """
  out = contract.RunDir(pathlib.Path(out_dir))
  if out.inference_model.exists():
    raise EnsembleError(f'{out.inference_model} exists: choose another --run_dir or '
                        'delete it.')
  runs = read_members(members)
  first_flags = contract.read_flags(runs[0].flags)
  dataset = dataset or first_flags['dataset']
  if dataset != first_flags['dataset']:
    raise EnsembleError(f'--dataset={dataset}, but the members were trained on '
                        f'{first_flags["dataset"]}.')
  data_dir = data_dir or first_flags.get('data_dir') or None
  builder = data.builder(dataset, data_dir)
  model = views.build_ensemble(
      [keras.models.load_model(run.inference_model, compile=False) for run in runs],
      flip_tta, shift_tta)
  resolved = {'members': ','.join(members), 'flip_tta': flip_tta, 'shift_tta': shift_tta,
              'run_dir': out_dir, 'dataset': dataset, 'data_dir': data_dir,
              'batch_size': batch_size}
  files.write_text(out.flags, contract.flags_text(resolved))
  files.write_text(out.preprocessing, runs[0].preprocessing.read_text())
  callbacks.save_model(model, out.inference_model)
  pipelines = data.evaluation_pipelines(builder, batch_size, None)
  return reports.write_all(model, pipelines, data.class_names(builder), out.history, None,
                           out.reports)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  signals.sigterm_as_interrupt()
  try:
    with locks.held(FLAGS.run_dir, 'the run dir', FLAGS.wait_for_lock):
      results = ensemble(FLAGS.members, FLAGS.run_dir, FLAGS.flip_tta, FLAGS.shift_tta,
                         FLAGS.dataset, FLAGS.data_dir, FLAGS.batch_size)
  except (EnsembleError, contract.DatasetNotBuiltError, contract.DatasetDamagedError,
          locks.LockedError) as e:
    sys.exit(f'error: {e}')
  except KeyboardInterrupt:
    signals.stopped(f'{FLAGS.run_dir} holds only whole files: run the same command '
                    'again.')
  print(f"Wrote {FLAGS.run_dir}: test accuracy {results['test']['accuracy']:.4f}, "
        f"validation {results['validation']['accuracy']:.4f}, "
        f"train {results['train']['accuracy']:.4f}.")


if __name__ == '__main__':
  define_flags()
  locks.define_wait_flag()
  flags.adopt_module_key_flags(locks)  # --help lists --wait_for_lock
  app.run(main)
