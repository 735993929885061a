"""benchmarks/results.py's pieces that decide what RESULTS.md says about a run."""

import sys

from conftest import REPO

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
              'precision': 'mixed_bfloat16'}
  assert results.flags_differing(ablation, reference) == (
      '`--epochs=40` `--precision=mixed_bfloat16`')
  assert results.flags_differing(reference, reference) == '(the reference)'
