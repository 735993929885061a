"""Re-writes a run's reports from its inference model:

  python -m trainer.evaluate --run_dir=runs/<name>

Everything else (dataset, batch size, augmentation for the samples grid) is read from
the run's own flags.txt.
"""

import pathlib
import sys

from absl import app
from absl import flags
import keras

from fer_common import contract
from trainer import augment
from trainer import data
from trainer import dead_relus
from trainer import reports
from trainer import config as config_lib
from trainer.config import TrainConfig

FLAGS = flags.FLAGS


def evaluate(config: TrainConfig) -> dict:
  """Evaluates the inference model of `config`'s run on every split and writes its
  reports."""
  run = config.run
  dataset = data.builder(config.dataset, config.data_dir)
  class_names = data.class_names(dataset)
  splits = data.evaluation_pipelines(dataset, config.batch_size, config.eval_limit)
  model = keras.models.load_model(run.inference_model, compile=False)
  augmenter = augment.build_augmenter(config, seed=config.seed)
  return reports.write_all(model, splits, class_names, run.history,
                           reports.augmented_batch(augmenter, splits['train']), run.reports)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  run = contract.RunDir(pathlib.Path(FLAGS.run_dir))
  reason = run.unfinished_reason()
  if reason:
    sys.exit(f'error: {reason}: {run.root} is no finished trainer run.')
  if 'members' in contract.read_flags(run.flags):
    sys.exit(f'error: {run.root} is an ensemble (python -m trainer.ensemble wrote it, with '
             'its reports); delete it and run that command again to re-evaluate.')
  FLAGS(['evaluate', f'--flagfile={run.flags}', f'--run_dir={run.root}'])
  try:
    results = evaluate(TrainConfig.from_flags(FLAGS))
  except contract.DatasetNotBuiltError as e:
    sys.exit(f'error: {e}')
  print(f"Wrote {run.reports}: test accuracy {results['test']['accuracy']:.4f}, "
        f"validation {results['validation']['accuracy']:.4f}, "
        f"train {results['train']['accuracy']:.4f}.")
  warning = dead_relus.collapse_warning(results['dead_relu_fraction'])
  if warning:
    print(warning)


if __name__ == '__main__':
  config_lib.define_flags()
  app.run(main)
