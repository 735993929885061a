"""Entry point: python -m export --run_dir=runs/<name> --out_dir=exports/<name>."""

from absl import app
from absl import flags

from export import export
from fer_common import locks

if __name__ == '__main__':
  export.define_flags()
  locks.define_wait_flag()
  flags.adopt_module_key_flags(locks)  # --help lists --wait_for_lock
  app.run(export.main)
