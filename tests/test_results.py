"""benchmarks/results.py's pieces that decide what RESULTS.md says about a run."""

import json
import sys

from conftest import REPO
from trainer import config

sys.path.insert(0, str(REPO / 'benchmarks'))
import results  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_machines_are_listed_once_each_in_order_of_first_use(tmp_path):
  (tmp_path / 'machine.txt').write_text(
      '2026-11-26T13:00:00 AMD EPYC, 2 cores (avx2)\n'
      '2026-11-26T14:00:00 AMD EPYC, 2 cores (avx2)\n'
      '2026-11-27T09:00:00 Intel Xeon, 4 cores (avx2, avx512f)\n')
  assert results.run_machines(tmp_path) == (
      'AMD EPYC, 2 cores (avx2); Intel Xeon, 4 cores (avx2, avx512f)')
  assert results.run_machines(tmp_path / 'older_run') == '(not recorded)'


def test_ablation_names_only_what_was_trained_differently():
  reference = {'run_dir': 'runs/a', 'data_dir': '/x', 'epochs': '16', 'filters': '16,32'}
  ablation = {'run_dir': 'runs/b', 'data_dir': '/y', 'epochs': '40', 'filters': '16,32',
              'precision': 'mixed_bfloat16', 'steps_per_execution': '32'}
  assert results.flags_differing(ablation, reference) == (
      '`--epochs=40` `--precision=mixed_bfloat16`')
  assert results.flags_differing(reference, reference) == '(the reference)'
  # A run older than a flag trained with its default: not a difference.
  newer = {**reference, 'erasing': '0.0', 'mixup': '0.2'}
  assert results.flags_differing(newer, reference, config.default_values()) == (
      '`--mixup=0.2`')


def _write_run(run, flags, accuracy=0.7):
  (run / 'reports').mkdir(parents=True)
  (run / 'flags.txt').write_text(flags)
  split = {'accuracy': accuracy, 'macro_f1': 0.6}
  (run / 'reports' / 'metrics.json').write_text(json.dumps(
      {'train': split, 'validation': split, 'test': {'accuracy': 0.7123, 'macro_f1': 0.69}}))


def test_ensemble_row_counts_model_evaluations_per_image(tmp_path):
  members = [tmp_path / 'fernet', tmp_path / 'fernet_reg50']
  for member in members:
    _write_run(member, '--dataset=fer5_ck\n')
  run = tmp_path / 'ensemble'
  _write_run(run, f'--dataset=fer5_ck\n--flip_tta=true\n--members={members[0]},{members[1]}\n')
  assert results.ensemble_members(run) == members
  assert results.ensemble_row(run, 140.4) == (
      '| `ensemble` | `fernet`, `fernet_reg50` | 140 | image, mirrored | 4 | 70.00 | '
      '70.00 | 71.23 | 69.00 |')
  (run / 'flags.txt').write_text(f'--flip_tta=false\n--members={members[0]}\n')
  assert '| 63 | image | 1 |' in results.ensemble_row(run, 63)
  (run / 'flags.txt').write_text(f'--flip_tta=true\n--shift_tta=2\n--members={members[0]}\n')
  assert '| 63 | image, 4 shifts of 2 px, mirrored | 10 |' in results.ensemble_row(run, 63)
  # A member trained from --arrays has no TensorBoard logs to time it by.
  assert '| n/a | image, 4 shifts' in results.ensemble_row(run, None)


def test_validation_accuracy_of_a_run_trained_on_it_is_marked(tmp_path):
  held_out, refit = tmp_path / 'fernet', tmp_path / 'fernet_refit'
  _write_run(held_out, '--dataset=fer5_ck\n')
  _write_run(refit, '--dataset=fer5_ck\n--train_split=train+validation\n')
  assert results.validation_cell(held_out, 0.7) == '70.00'
  assert results.validation_cell(refit, 0.7) == '70.00' + results.NOT_HELD_OUT
  fine_tuned = tmp_path / 'fernet_anneal'
  _write_run(fine_tuned, f'--dataset=fer5_ck\n--init_from={held_out}\n')
  # Only runs trained from scratch on the train split share the accuracy-vs-time plot.
  assert [results.plotted_over_time(run) for run in (held_out, refit, fine_tuned)] == [
      True, False, False]
  ensemble = tmp_path / 'ensemble'
  _write_run(ensemble, f'--flip_tta=true\n--members={held_out},{refit}\n')
  assert f'| 70.00{results.NOT_HELD_OUT} | 71.23 |' in results.ensemble_row(ensemble, 1)
  (ensemble / 'flags.txt').write_text(f'--flip_tta=true\n--members={held_out}\n')
  assert '| 70.00 | 71.23 |' in results.ensemble_row(ensemble, 1)


def test_a_run_without_tensorboard_logs_has_no_training_time(tmp_path):
  assert results.validation_over_time(tmp_path) is None
  assert results.training_minutes([tmp_path]) is None
