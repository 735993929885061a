"""Entry point: python -m trainer --flagfile=configs/<name>.cfg [--flag=value ...]."""

from absl import app

from trainer import flags_def
from trainer import train

if __name__ == '__main__':
  flags_def.define_flags()
  app.run(train.main)
