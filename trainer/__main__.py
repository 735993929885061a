"""Entry point: python -m trainer --flagfile=configs/<name>.cfg [--flag=value ...]."""

from absl import app
from absl import flags

from fer_common import locks
from fer_common import tensorflow_logs
from trainer import config


def main(argv):
  tensorflow_logs.import_quietly()
  from trainer import train  # pylint: disable=g-import-not-at-top (imports TensorFlow)
  train.main(argv)


if __name__ == '__main__':
  config.define_flags()
  locks.define_wait_flag()
  flags.adopt_module_key_flags(locks)  # --help lists --wait_for_lock
  flags.adopt_module_key_flags(config)  # --help lists them, --helpfull first
  app.run(main)
