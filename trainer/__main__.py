"""Entry point: python -m trainer --flagfile=configs/<name>.cfg [--flag=value ...]."""

from absl import app
from absl import flags

from fer_common import locks
from trainer import flags_def
from trainer import train

if __name__ == '__main__':
  flags_def.define_flags()
  locks.define_wait_flag()
  flags.adopt_module_key_flags(locks)  # --help lists --wait_for_lock
  flags.adopt_module_key_flags(flags_def)  # --help lists them, --helpfull first
  app.run(train.main)
