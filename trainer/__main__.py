"""Entry point: python -m trainer --flagfile=configs/<name>.cfg [--flag=value ...]."""

from absl import app
from absl import flags

from fer_common import locks
from trainer import config
from trainer import train

if __name__ == '__main__':
  config.define_flags()
  locks.define_wait_flag()
  flags.adopt_module_key_flags(locks)  # --help lists --wait_for_lock
  flags.adopt_module_key_flags(config)  # --help lists them, --helpfull first
  app.run(train.main)
